"""What a pipeline file says: for each role of the contract (CONTRACT.md), how to run it and
how it spells the contract's settings.

    contract: 1
    name: our-services
    roles:
      ingestion:
        command: ["{python}", "-m", "acme.ingest"]   # the process runtime runs this
        image: acme/ingest:1.4                        # the containers runtime runs this
        env: {ACME_LOG_FORMAT: json}                  # passed as is
        settings: {CUTOVER_HA_URL: HASS_URL}          # the contract's name -> the service's

A role left out is a stage the plan does not have: only ``enrichment`` may be (events then go
from ingestion straight to storage). The shipped services are the default file
(``reference.yaml`` beside this module), so the default run takes this same path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.scenario.topology import NEW_PATH, PIPELINE_SERVICES, PipelineService

__all__ = ["CONTRACT_VERSION", "OPTIONAL_ROLES", "PipelineSpec", "RoleSpec"]

CONTRACT_VERSION: Final = 1
#: roles a plan may do without; the rest are the migration itself (a monolith, a new path
#: from Home Assistant to InfluxDB, a control plane to move traffic)
OPTIONAL_ROLES: Final[frozenset[PipelineService]] = frozenset({"enrichment"})
PYTHON: Final = "{python}"  # in a command: the interpreter the harness runs on

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RoleSpec(BaseModel):
    """How one role is run, and what it is called in its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] | None = Field(
        default=None, min_length=1,
        description='argv the process runtime starts ("{python}" = the harness\'s Python)')
    image: str | None = Field(
        default=None, min_length=1,
        description="image the containers runtime starts; unset: the image the harness builds "
                    "from this repository (the reference services only)")
    cwd: Path | None = Field(default=None, description="working directory, relative to the file")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment, as is")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="a contract setting (CUTOVER_*) -> the name this service reads it by")

    @field_validator("env", "settings")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @field_validator("settings")
    @classmethod
    def _renamed_to_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [v for v in value.values() if not _ENV_NAME.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an environment variable name")
        clash = {v for v in value.values() if list(value.values()).count(v) > 1}
        if clash:
            raise ValueError(f"two settings renamed to {sorted(clash)[0]}: each needs its own")
        return value

    @model_validator(mode="after")
    def _runnable(self) -> RoleSpec:
        if self.command is None and self.image is None:
            raise ValueError("give a command (process runtime), an image (containers runtime), "
                             "or both")
        return self

    def rename(self, env: dict[str, str]) -> dict[str, str]:
        """The contract's environment as this service spells it, plus its own ``env``."""
        return {**{self.settings.get(k, k): v for k, v in env.items()}, **self.env}

    def argv(self, python: str) -> list[str]:
        assert self.command is not None
        return [python if part == PYTHON else part for part in self.command]


class PipelineSpec(BaseModel):
    """A pipeline file: the services the harness drives through a migration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: Literal[1] = Field(description="the CONTRACT.md version the services implement")
    name: str = Field(min_length=1, description="shown in reports and logs")
    roles: dict[PipelineService, RoleSpec]
    #: where the file was read from (relative cwds resolve against it); not in the file
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _roles_present(self) -> PipelineSpec:
        missing = [r for r in PIPELINE_SERVICES if r not in self.roles and r not in OPTIONAL_ROLES]
        if missing:
            raise ValueError(
                f"roles {missing} missing: a migration needs legacy, ingestion, storage and "
                f"admin; only {sorted(OPTIONAL_ROLES)} may be left out")
        return self

    def has(self, role: str) -> bool:
        return role in self.roles

    def reaches(self, target: str) -> bool:
        """Whether a fault on ``target`` (a role, or what the harness runs: Home Assistant,
        InfluxDB, the weather API) acts on this plan: the weather API's only client is
        enrichment, so without enrichment a weather fault would test nothing."""
        if target == "weather":
            return self.has("enrichment")
        return target in ("ha", "influxdb") or self.has(target)

    @property
    def new_path(self) -> tuple[PipelineService, ...]:
        """The new path's stages this plan has, in the order events flow."""
        return tuple(r for r in NEW_PATH if r in self.roles)

    def downstream(self, role: PipelineService) -> PipelineService:
        """Where ``role`` of the new path sends its events: the next stage the plan has."""
        path = self.new_path
        return path[path.index(role) + 1]

    def with_commands(self, modules: dict[str, str]) -> PipelineSpec:
        """This pipeline with ``python -m MODULE`` in some roles' places (the mutants of
        tests/): the same path as any other command."""
        roles = dict(self.roles)
        for role, module in modules.items():
            if role not in roles:
                raise ValueError(f"no role {role!r} in pipeline {self.name!r} to replace")
            roles[role] = roles[role].model_copy(
                update={"command": (PYTHON, "-m", module), "image": None})
        return self.model_copy(update={"roles": roles, "name": f"{self.name} (with "
                                       f"{', '.join(f'{r}={m}' for r, m in modules.items())})"})

    def workdir(self, role: PipelineService) -> Path | None:
        cwd = self.roles[role].cwd
        if cwd is None or cwd.is_absolute() or self.source is None:
            return cwd
        return self.source.parent / cwd
