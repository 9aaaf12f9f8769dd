"""The runtime interface every scenario step talks to.

A runtime owns the pipeline's processes (or containers) and InfluxDB; the harness owns the
fake Home Assistant. Both implementations take the same scenario files, so nothing here
mentions how a service is run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import RuntimeFailed, Unsupported
from harness.pipeline_file import PipelineSpec, reference_pipeline
from harness.scenario.topology import PIPELINE_SERVICES, Service

if TYPE_CHECKING:
    from .toxiproxy import ToxiproxyClient

__all__ = ["PIPELINE_SERVICES", "HarnessHost", "Runtime", "RuntimeFailed", "ServiceName",
           "Unsupported", "Wiring"]

#: what a scenario step names and every runtime runs (harness/scenario/topology.py)
ServiceName = Service


@dataclass(frozen=True, slots=True)
class HarnessHost:
    """Where a server of the harness's own (the fake Home Assistant) must listen for the
    services to reach it, and the host name they reach it by. Decided before the runtime
    exists: the fake's URL is part of the Wiring the runtime is built with."""

    bind: str = "127.0.0.1"
    reach: str = "127.0.0.1"

    def ha_url(self, port: int) -> str:
        return f"ws://{self.reach}:{port}/api/websocket"


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the runtime needs from the harness to wire the services together."""

    run_dir: Path
    ha_url: str  # the fake Home Assistant, as the services must reach it
    ha_token: str
    admin_token: str
    weather_api_key: str
    seed: int = 1
    lead_ms: int = 1000  # admin-api announces routing changes this far ahead
    control_plane: bool = True  # False: no admin-api; legacy and new each own everything
    # the services driven through the migration, and how each is run (a pipeline file)
    pipeline: PipelineSpec = field(default_factory=reference_pipeline)
    # route every hop through the fault proxy (network faults; a partition on processes)
    fault_proxy: bool = False
    # services started with a clock the harness can move (libfaketime): clock_skew's targets
    skewable: frozenset[str] = frozenset()
    # service -> bytes of the small disk (tmpfs) its data directory is on: disk_full's targets
    small_disks: Mapping[str, int] = field(default_factory=dict)


class Runtime(ABC):
    name: str
    wiring: Wiring
    # the fault proxy's API when the run routes its hops through it (Wiring.fault_proxy)
    fault_proxy: ToxiproxyClient | None = None

    def has(self, service: str) -> bool:
        """Whether this run has ``service`` at all: a pipeline file may leave a stage out
        (no enrichment), whose steps the runner then skips, saying so."""
        return service not in PIPELINE_SERVICES or self.wiring.pipeline.has(service)

    @abstractmethod
    async def start(self, service: ServiceName) -> None: ...

    @abstractmethod
    async def stop(self, service: ServiceName) -> None:
        """Graceful: the service flushes what it holds."""

    @abstractmethod
    async def kill(self, service: ServiceName) -> None:
        """A crash: SIGKILL (or docker kill)."""

    @abstractmethod
    async def pause(self, service: ServiceName) -> None: ...

    @abstractmethod
    async def resume(self, service: ServiceName) -> None: ...

    async def restart(self, service: ServiceName) -> None:
        await self.stop(service)
        await self.start(service)

    @abstractmethod
    async def disconnect(self, service: ServiceName) -> None:
        """Cut the service off the network: it keeps running but reaches nothing and nothing
        reaches it (the harness included)."""

    @abstractmethod
    async def reconnect(self, service: ServiceName) -> None:
        """Undo ``disconnect``: the service is reachable again under its own name."""

    async def set_clock_offset(self, service: ServiceName, offset_s: float) -> None:  # noqa: ARG002 - a refusing default
        """Move the service's wall clock ``offset_s`` off true time (0: heal). Only for a
        service in ``Wiring.skewable``, which was started ready for it."""
        raise Unsupported(f"the {self.name} runtime cannot skew a clock")

    async def fill_disk(self, service: ServiceName) -> int:  # noqa: ARG002 - a refusing default
        """Take every free byte of the service's small disk (``Wiring.small_disks``); returns
        how many bytes the filler took."""
        raise Unsupported(f"the {self.name} runtime cannot fill a disk")

    async def free_disk(self, service: ServiceName) -> None:  # noqa: ARG002 - a refusing default
        """Undo ``fill_disk``: the filler is gone, the service's own files stay."""
        raise Unsupported(f"the {self.name} runtime cannot fill a disk")

    @abstractmethod
    async def wait_healthy(self, service: ServiceName, timeout: float) -> None:
        """Until the service says it can do its job (raises RuntimeFailed with its log)."""

    @abstractmethod
    def url(self, service: ServiceName) -> str:
        """Base URL of the service as the harness reaches it."""

    @abstractmethod
    def running(self, service: ServiceName) -> bool: ...

    @abstractmethod
    def log_tail(self, service: ServiceName, lines: int = 40) -> list[str]: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop and remove everything; safe to call twice and after a failure."""

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
