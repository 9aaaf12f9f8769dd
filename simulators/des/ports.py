"""What one part of the model needs of another, as Protocols.

Every part is handed the Environment and the objects it uses (``model.py`` wires them). Where
a part talks to one that sits above it in the import graph, it names here only what it calls,
so the imports stay a DAG:

- a Home Assistant connection (``source.py``) and its client service (``service.py``) call each
  other: the connection sees a ``HaClientPort``, the client a ``HaLink``;
- a ``Forwarder`` POSTs to the next service, a ``Receiver``;
- the source plays a load profile (``simulators.home_assistant.load``'s), a ``LoadProfile``;
- the monitor stays awake while a trigger's ``for:`` runs (``PendingTriggers``, the plan's
  ``triggers.TriggerState``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import simpy

from .jobs import Job

__all__ = ["Gen", "HaClientPort", "HaLink", "LoadProfile", "MissedLog", "PendingTriggers",
           "Receiver"]

#: A SimPy process generator.
Gen = Generator[Any, Any, Any]


class HaClientPort(Protocol):
    """A client service (legacy, ingestion), as its websocket connection sees it."""

    name: str
    running: bool
    paused: bool
    resumed: simpy.Event | None
    gen: int
    started_at: float
    procs: list[simpy.Process]

    def on_events(self, n_total: int, jobs: list[Job]) -> None: ...


class MissedLog(Protocol):
    """A connection's record of what its client missed (read back from history)."""

    missed: list[tuple[int, list[Job], float]]


class HaLink(Protocol):
    """Home Assistant, as a client service sees it."""

    def connect(self, client: HaClientPort) -> None: ...

    def disconnect(self, client: HaClientPort, why: str) -> None: ...

    def down_for(self, client: HaClientPort, now: float) -> float: ...

    def conn(self, client: HaClientPort) -> MissedLog: ...


class Receiver(Protocol):
    """The service a ``Forwarder`` POSTs its batches to."""

    name: str
    gen: int
    paused: bool
    resumed: simpy.Event | None

    def listening(self) -> bool: ...

    def handling(self, n: int) -> float: ...

    def accept(self, batch: list[Job], now: float) -> None: ...


class LoadProfile(Protocol):
    """A load profile as the source plays it (``t``: seconds since it started)."""

    def expected(self, t: float) -> float: ...

    def rate_at(self, t: float) -> float: ...

    def finished(self, t: float) -> bool: ...


class PendingTriggers(Protocol):
    """Since when each trigger's condition has held (``triggers.TriggerState``)."""

    since_s: dict[int, float]
