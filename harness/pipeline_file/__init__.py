"""Pipeline files: which services the harness drives, and how (CONTRACT.md)."""

from .load import REFERENCE, load_pipeline, reference_pipeline
from .model import CONTRACT_VERSION, OPTIONAL_ROLES, PipelineSpec, RoleSpec

__all__ = ["CONTRACT_VERSION", "OPTIONAL_ROLES", "REFERENCE", "PipelineSpec", "RoleSpec",
           "load_pipeline", "reference_pipeline"]
