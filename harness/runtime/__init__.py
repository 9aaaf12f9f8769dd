"""Where the pipeline runs: one interface (``base.Runtime``), a ``process`` implementation
(subprocesses on 127.0.0.1) and ``containers`` (testcontainers, images built offline)."""

from .base import Runtime, RuntimeFailed, ServiceName
from .process import ProcessRuntime

__all__ = ["ProcessRuntime", "Runtime", "RuntimeFailed", "ServiceName"]
