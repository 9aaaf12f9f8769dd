"""admin-api's settings, from CUTOVER_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from pipeline.common.config import EnvSettings

__all__ = ["URL_SCHEMES", "AdminSettings"]

#: the schemes a watched service's base URL may have
URL_SCHEMES = ("http", "https")


def _clip(text: object, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _url_problem(name: object, url: object) -> str | None:
    """What is wrong with one ``name: url`` entry of CUTOVER_SERVICES, or None."""
    accepted = (f"accepted schemes: {', '.join(URL_SCHEMES)} "
                f"(e.g. {{\"storage\": \"http://127.0.0.1:8004\"}})")
    if not isinstance(name, str) or not name:
        return "a service name must be a non-empty string"
    if not isinstance(url, str):
        return f"base URL must be a string, got {type(url).__name__} {_clip(url)}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"base URL {_clip(url)} has no scheme; {accepted}"
    if scheme.lower() not in URL_SCHEMES:
        return f"base URL {_clip(url)} has scheme {scheme!r}; {accepted}"
    if not rest.split("/", 1)[0]:
        return f"base URL {_clip(url)} has no host, e.g. http://127.0.0.1:8004"
    return None


class AdminSettings(EnvSettings):
    host: str = "127.0.0.1"
    port: int = Field(8003, ge=1, le=65535)
    data_dir: Path = Path("data/admin")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Health aggregation: name -> base URL of every service to watch.
    services: dict[str, str] = Field(default_factory=dict)
    health_poll_s: float = Field(1.0, gt=0)  # one poll of every service this often
    health_timeout_s: float = Field(2.0, gt=0)  # per request to a watched service
    progress_window_s: float = Field(10.0, gt=0)  # received grows, processed flat this long

    # Recent events come from storage: CUTOVER_STORAGE_URL, else services["storage"].
    storage_url: str | None = None

    # Migration control plane.
    admin_token: SecretStr | None = None  # unset: reads only, every mutation refused
    migration_lead_ms: int = Field(2000, ge=1)
    # How far past now + lead the persisted horizon is reserved ahead (see control.py): the
    # state file is rewritten about every lease/2, and a restart delays the first change by
    # at most this much.
    migration_lease_ms: int = Field(5000, ge=1)
    state_file: Path | None = None  # default: <data_dir>/migration-state.json

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("services", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        # Before the type check, so a wrong entry is named instead of the whole value being
        # "expected a JSON object"; a value that is no object at all is left to that message.
        if not isinstance(value, dict):
            return value
        for name, url in value.items():
            problem = _url_problem(name, url)
            if problem is not None:
                raise ValueError(f"service {_clip(name)}: {problem}")
        return {name: url.rstrip("/") for name, url in value.items()}

    @property
    def state_path(self) -> Path:
        return self.state_file if self.state_file is not None else (
            self.data_dir / "migration-state.json"
        )

    @property
    def recent_events_source(self) -> str:
        url = self.storage_url or self.services.get("storage") or "http://127.0.0.1:8004"
        return url.rstrip("/")
