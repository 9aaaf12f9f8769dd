"""What admin-api must never forget: the routing table, its change history, and the horizon it
may already have promised. Kept in one JSON file, replaced atomically.

The write is temp file + fsync + rename + fsync of the directory: after a crash the file is
either the old state or the new one, never a torn mix, and a change acknowledged to a client
survives a power cut. A file that exists but cannot be read is an error, not an empty state:
starting over from an empty table would rewrite history that services already decided with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.common.routing import RoutingTable

__all__ = ["ChangeRecord", "MigrationState", "StateFileError", "StateStore"]

ChangeKind = Literal["change", "rollback"]


class ChangeRecord(BaseModel):
    """One line of the migration's history."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at_ns: int  # admin-api's wall clock when the change was accepted
    at: str  # the same, ISO 8601 UTC, for humans
    kind: ChangeKind
    new_percent: int
    shadow: bool
    effective_from_ns: int
    effective_from: str
    reason: str
    actor: str


class MigrationState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    table: RoutingTable = Field(default_factory=RoutingTable)
    history: tuple[ChangeRecord, ...] = ()
    # Upper bound of every valid_until_ns this admin-api has served or may serve before the
    # next write: a restarted process starts its horizon here (see control.py).
    lease_ns: int = 0


class StateFileError(Exception):
    """The state file exists but cannot be read or parsed."""


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> MigrationState | None:
        """The persisted state, or None when there is no file yet (a first start)."""
        return await asyncio.to_thread(self._load)

    async def save(self, state: MigrationState) -> None:
        await asyncio.to_thread(self._save, state.model_dump_json(indent=1).encode())

    def _load(self) -> MigrationState | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"cannot read state file {self.path}: {exc}") from exc
        try:
            return MigrationState.model_validate_json(data)
        except ValidationError as exc:
            raise StateFileError(
                f"state file {self.path} is not a valid migration state "
                f"({exc.error_count()} errors, first: {exc.errors()[0]['msg']}); refusing to "
                "start with an empty history: fix or restore it"
            ) from exc

    def _save(self, payload: bytes) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # The rename itself must reach the disk before we answer the client.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
