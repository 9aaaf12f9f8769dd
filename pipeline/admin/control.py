"""The migration control plane: announces routing changes ahead of time, never rewrites history.

Built on pipeline.common.routing: RoutingTable.announce puts each change at a boundary after
everything already settled, and RoutingTable.extended settles the table up to now + lead each
time it is served. Services (RoutingFollower) decide an event only when its time_fired is
<= the valid_until_ns they were served, so two promises must hold for ever, restarts included:

1. Entries are never rewritten. Every change is persisted (atomically, see state.py) BEFORE the
   client hears about it and before any reader can be served a horizon at or past its boundary.
   While a change is being written, the served horizon is capped just below its boundary: a
   reader polling during the write gets either the old table, settled only up to the instant
   before the new entry, or the new table; never the old table settled past the new boundary.

2. A restarted admin-api never announces a change effective at or before a horizon it had
   already served. The horizon served grows with the wall clock (now + lead) on every read, and
   writing it to disk on every read (services poll several times a second) would be absurd.
   Recomputing it at start as "now + lead" would be right only if the wall clock never steps
   back across the restart, which NTP does not promise. So the horizon is leased: the state
   file holds `lease_ns`, and no read is ever served a valid_until_ns beyond the lease on disk.
   A background task moves the lease forward (now + lead + lease) whenever less than half of
   the lease remains, one small write every ~lease/2 seconds. At start the table's horizon is
   raised to the persisted lease, so whatever the dead process served, the new one is already
   past it: valid_until_ns never moves backwards across a restart, and the first change after
   a restart takes effect at most `lease` later than it would have otherwise (the price of the
   guarantee). If the lease cannot be renewed (disk full, read-only), the horizon stops at the
   lease: services hold events instead of guessing, and admin-api's /health says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pipeline.admin.state import ChangeKind, ChangeRecord, MigrationState, StateStore
from pipeline.admin.timefmt import iso_ns
from pipeline.common.routing import RoutingEntry, RoutingTable

__all__ = ["BoundaryTooEarly", "ControlPlane"]

log = logging.getLogger(__name__)

Clock = Callable[[], int]


class BoundaryTooEarly(Exception):
    """An explicit effective_from_ns before the earliest boundary the table allows."""

    def __init__(self, requested_ns: int, earliest_ns: int, now_ns: int, lead_ns: int) -> None:
        super().__init__(
            f"effective_from_ns={requested_ns} is too early: the earliest allowed boundary is "
            f"{earliest_ns} ({iso_ns(earliest_ns)}; now + lead of {lead_ns // 1_000_000} ms, "
            "and after every boundary or horizon already announced)"
        )
        self.requested_ns = requested_ns
        self.earliest_ns = earliest_ns
        self.now_ns = now_ns


class ControlPlane:
    def __init__(
        self,
        store: StateStore,
        *,
        lead_ns: int,
        lease_ns: int,
        clock: Clock = time.time_ns,
    ) -> None:
        self._store = store
        self.lead_ns = lead_ns
        self._lease_extra_ns = lease_ns
        self._clock = clock
        self._table = RoutingTable()  # its valid_until_ns: the highest horizon served so far
        self._history: tuple[ChangeRecord, ...] = ()
        self._lease_ns = 0  # persisted: no horizon beyond it is ever served
        self._cap_ns: int | None = None  # set while a change is being written
        self._lock = asyncio.Lock()  # one writer of the state file at a time
        self._task: asyncio.Task[None] | None = None
        self.last_write_error: str | None = None
        # /api/v1/stats: changes accepted for writing, and changes persisted.
        self.received = 0
        self.processed = 0
        self.last_received_ns: int | None = None
        self.last_processed_ns: int | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the persisted state (StateFileError if unreadable) and take a fresh lease
        (OSError if the state file cannot be written: better to refuse to start)."""
        state = await self._store.load()
        if state is None:
            log.warning("no migration state file: starting with an empty routing table",
                        extra={"state_file": str(self._store.path)})
            state = MigrationState()
        horizon = max(state.table.valid_until_ns or 0, state.lease_ns)
        self._table = state.table.model_copy(update={"valid_until_ns": horizon})
        self._history = state.history
        self._lease_ns = state.lease_ns
        log.info("migration state loaded", extra={
            "entries": len(state.table.entries), "history": len(state.history),
            "horizon_ns": horizon, "state_file": str(self._store.path)})
        await self.renew_lease(force=True)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew_forever(), name="migration-lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- reads ---------------------------------------------------------------------------------

    @property
    def history(self) -> tuple[ChangeRecord, ...]:
        return self._history

    @property
    def lease_ns(self) -> int:
        return self._lease_ns

    def served_table(self) -> RoutingTable:
        """The table settled up to now + lead, but never past the persisted lease nor past a
        boundary being written. The horizon served is remembered: it only ever grows."""
        limit = self._lease_ns if self._cap_ns is None else min(self._lease_ns, self._cap_ns)
        now = min(self._clock(), limit - self.lead_ns)
        self._table = self._table.extended(now_ns=now, lead_ns=self.lead_ns)
        return self._table

    def entry_now(self) -> RoutingEntry | None:
        return self._table.entry_at(self._clock())

    def pending(self) -> list[RoutingEntry]:
        now = self._clock()
        return [e for e in self._table.entries if e.effective_from_ns > now]

    def view(self) -> dict[str, Any]:
        """GET /api/v1/migration: the table as served, what is in force, what is coming."""
        table = self.served_table()
        now = self._clock()
        current = table.entry_at(now)
        target = table.entries[-1] if table.entries else None
        return {
            "table": table.model_dump(mode="json"),
            "now_ns": now,
            "current": _state_of(current),
            "target": _state_of(target),  # what holds once every pending entry is in force
            "pending": [
                {**e.model_dump(mode="json"), "effective_from": iso_ns(e.effective_from_ns),
                 "in_ms": (e.effective_from_ns - now) // 1_000_000}
                for e in table.entries if e.effective_from_ns > now
            ],
            "lead_ms": self.lead_ns // 1_000_000,
            "history": [r.model_dump(mode="json") for r in self._history],
        }

    # -- writes --------------------------------------------------------------------------------

    async def change(
        self,
        *,
        kind: ChangeKind,
        reason: str,
        actor: str,
        new_percent: int | None = None,
        shadow: bool | None = None,
        effective_from_ns: int | None = None,
    ) -> ChangeRecord:
        """Announce a change, persist it, then return its history record.

        A field left None keeps the value of the last entry announced (pending included: the
        table is a sequence of wishes, the newest one is what an operator edits). Raises
        BoundaryTooEarly, or OSError if the state could not be written (nothing changed then).
        """
        async with self._lock:
            now = self._clock()
            base = self._table
            last = base.entries[-1] if base.entries else None
            percent = new_percent if new_percent is not None else (
                last.new_percent if last else 0)
            shadow_on = shadow if shadow is not None else (last.shadow if last else False)
            earliest = base.earliest_boundary(now_ns=now, lead_ns=self.lead_ns)
            if effective_from_ns is not None and effective_from_ns < earliest:
                raise BoundaryTooEarly(effective_from_ns, earliest, now, self.lead_ns)
            table = base.announce(new_percent=percent, shadow=shadow_on, now_ns=now,
                                  lead_ns=self.lead_ns, effective_from_ns=effective_from_ns)
            boundary = table.entries[-1].effective_from_ns
            record = ChangeRecord(
                at_ns=now, at=iso_ns(now), kind=kind, new_percent=percent, shadow=shadow_on,
                effective_from_ns=boundary, effective_from=iso_ns(boundary), reason=reason,
                actor=actor,
            )
            assert table.valid_until_ns is not None
            lease = max(self._lease_ns, table.valid_until_ns,
                        now + self.lead_ns + self._lease_extra_ns)
            state = MigrationState(table=table, history=(*self._history, record), lease_ns=lease)
            # Promise 1 (module docstring): until the entry is on disk, readers are settled
            # only up to the instant before it.
            self._cap_ns = boundary - 1
            self.received += 1
            self.last_received_ns = now
            try:
                await self._write(state)
            finally:
                self._cap_ns = None
            self._table, self._history, self._lease_ns = table, state.history, lease
            self.processed += 1
            self.last_processed_ns = self._clock()
        log.info("migration change announced", extra={
            "kind": kind, "new_percent": percent, "shadow": shadow_on,
            "effective_from_ns": boundary, "reason": reason, "actor": actor})
        return record

    async def renew_lease(self, *, force: bool = False) -> None:
        """Move the persisted horizon ahead when less than half a lease remains."""
        async with self._lock:
            now = self._clock()
            served_max = now + self.lead_ns
            if not force and self._lease_ns - served_max >= self._lease_extra_ns // 2:
                return
            lease = max(self._lease_ns, served_max + self._lease_extra_ns)
            # The in-memory horizon only grows and never exceeds the lease: persisted as is.
            state = MigrationState(table=self._table, history=self._history, lease_ns=lease)
            await self._write(state)
            self._lease_ns = lease

    def health(self) -> tuple[bool, str | None, dict[str, Any]]:
        now = self._clock()
        frozen = now + self.lead_ns > self._lease_ns
        details = {"lease_ns": self._lease_ns, "valid_until_ns": self._table.valid_until_ns,
                   "last_write_error": self.last_write_error, "horizon_frozen": frozen}
        if self.last_write_error is not None:
            return False, f"cannot persist the migration state: {self.last_write_error}", details
        if frozen:
            return False, "routing horizon is not being extended (lease not renewed)", details
        return True, None, details

    # -- internals -------------------------------------------------------------------------------

    async def _write(self, state: MigrationState) -> None:
        try:
            await self._store.save(state)
        except OSError as exc:
            self.last_write_error = f"{type(exc).__name__}: {exc}"
            log.error("cannot write the migration state file",
                      extra={"state_file": str(self._store.path), "error": repr(exc)})
            raise
        self.last_write_error = None

    async def _renew_forever(self) -> None:
        # Check a few times per half lease, so the served horizon never runs into the lease.
        every = min(1.0, self._lease_extra_ns / 1e9 / 4)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(OSError):  # logged and reported by health(); try again
                await self.renew_lease()


def _state_of(entry: RoutingEntry | None) -> dict[str, Any]:
    if entry is None:  # before the first entry legacy owns everything, no shadow
        return {"new_percent": 0, "shadow": False, "effective_from_ns": None}
    return {"new_percent": entry.new_percent, "shadow": entry.shadow,
            "effective_from_ns": entry.effective_from_ns}
