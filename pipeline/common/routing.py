"""Ownership routing: which pipeline (legacy or new) writes an event to production.

Both pipelines see every event and must agree, for each one, on exactly one owner: no gap
(nobody writes it) and no double write. Agreement comes from three rules:

1. The decision is a pure function of the event: a stable hash of its `entity_id` (blake2b,
   not Python's per-process salted `hash`) into 10,000 buckets, against the routing entry in
   force at its `time_fired` (HA's timestamp, identical in both pipelines). Processing time, which
   differs between them, never enters it.
2. The table is append-only history: entries (effective_from_ns, new_percent, shadow) are never
   rewritten, so an event replayed from a durable queue days later is decided as it was then.
3. Changes are announced before they take effect. admin-api puts a change at a boundary at
   least `lead` ahead of its clock, and every table it serves carries `valid_until_ns` = now +
   lead: no entry will ever be added at or before that instant. A service that decides only
   events with time_fired <= valid_until_ns therefore decides with the complete history, and so
   does the other pipeline, whichever of them polled last. An event later than valid_until_ns
   waits (held, not dropped) until a fresher table covers it.

Consequences: the poll interval must be shorter than `lead`, or events routinely wait; and
`lead` must exceed the clock skew between Home Assistant (time_fired) and admin-api (now), or
events stamped in admin-api's future wait until its clock catches up. If admin-api is
unreachable, services keep the last table and extend nothing: safe, and visible (`stale`,
`waiting`). Raising new_percent only moves buckets legacy -> new (bucket < percent * 100), so
each step of 10 -> 25 -> ... -> 100 moves entities one way; a rollback is just another entry
(back to 0) taking effect at its own announced boundary.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.common.aio import wait_set

__all__ = [
    "BUCKETS",
    "Owner",
    "RoutingEntry",
    "RoutingFollower",
    "RoutingTable",
    "TableConflict",
    "bucket_of",
]

log = logging.getLogger(__name__)

Owner = Literal["legacy", "new"]
BUCKETS = 10_000


def bucket_of(entity_id: str) -> int:
    """The entity's bucket in [0, 10000): the same in every process, host and Python version."""
    digest = hashlib.blake2b(entity_id.encode("utf-8"), digest_size=8).digest()
    # 2**64 mod 10_000 leaves a bias of ~1e-15 per bucket: irrelevant.
    return int.from_bytes(digest, "big") % BUCKETS


def _new_below(entry: RoutingEntry | None) -> int:
    """The ownership rule: new owns the buckets below this; before any migration step (no
    entry), none."""
    return -1 if entry is None else entry.new_percent * (BUCKETS // 100)


def _shadow_on(entry: RoutingEntry | None) -> bool:
    return entry is not None and entry.shadow


class RoutingEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    effective_from_ns: int = Field(ge=0)
    new_percent: int = Field(ge=0, le=100)
    shadow: bool = False


class RoutingTable(BaseModel):
    """Append-only history of routing entries, ordered by effective_from_ns (strictly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: tuple[RoutingEntry, ...] = ()
    # Inclusive: the table is complete for every time_fired <= valid_until_ns. None for a table
    # built locally (tests, the simulator) that nobody will change under the reader's feet.
    valid_until_ns: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RoutingTable:
        starts = [e.effective_from_ns for e in self.entries]
        if any(a >= b for a, b in zip(starts, starts[1:], strict=False)):
            raise ValueError("entries must have strictly increasing effective_from_ns")
        return self

    # -- decisions ---------------------------------------------------------------------------

    def entry_at(self, time_fired_ns: int) -> RoutingEntry | None:
        """The last entry with effective_from_ns <= time_fired_ns; None before the first."""
        starts = [e.effective_from_ns for e in self.entries]
        i = bisect.bisect_right(starts, time_fired_ns)
        return self.entries[i - 1] if i else None

    def owner(self, entity_id: str, time_fired_ns: int) -> Owner:
        new = bucket_of(entity_id) < _new_below(self.entry_at(time_fired_ns))
        return "new" if new else "legacy"

    def entries_at(self, times_fired_ns: Iterable[int]) -> list[RoutingEntry | None]:
        """``entry_at`` of many times at once."""
        starts = [e.effective_from_ns for e in self.entries]
        entries = (None, *self.entries)  # bisect_right's 0: before the first entry
        return [entries[bisect.bisect_right(starts, t)] for t in times_fired_ns]

    def owners(self, entity_ids: Sequence[str], times_fired_ns: Sequence[int]) -> list[Owner]:
        """``owner`` of many events at once (a verdict over millions): the same rule, each
        entity hashed once."""
        bucket = {e: bucket_of(e) for e in set(entity_ids)}
        if times_fired_ns and (only := self.entry_at(min(times_fired_ns))) is self.entry_at(
                max(times_fired_ns)):  # one entry in force throughout: decided per entity
            owner: dict[str, Owner] = {e: "new" if b < _new_below(only) else "legacy"
                                       for e, b in bucket.items()}
            return list(map(owner.__getitem__, entity_ids))
        below = {id(e): _new_below(e) for e in (None, *self.entries)}
        return ["new" if bucket[e] < below[id(entry)] else "legacy"
                for e, entry in zip(entity_ids, self.entries_at(times_fired_ns), strict=True)]

    def shadow_enabled_at(self, time_fired_ns: int) -> bool:
        return _shadow_on(self.entry_at(time_fired_ns))

    def shadow_enabled(self, times_fired_ns: Iterable[int]) -> list[bool]:
        """``shadow_enabled_at`` of many times at once."""
        return [_shadow_on(entry) for entry in self.entries_at(times_fired_ns)]

    def covers(self, time_fired_ns: int) -> bool:
        return self.valid_until_ns is None or time_fired_ns <= self.valid_until_ns

    # -- the control plane's side (admin-api) --------------------------------------------------

    def earliest_boundary(self, *, now_ns: int, lead_ns: int) -> int:
        """The earliest effective_from_ns a change announced at `now_ns` may take: strictly
        after now + lead, after valid_until_ns and after the last entry."""
        horizon = max(now_ns + lead_ns, self.valid_until_ns or 0)
        if self.entries:
            horizon = max(horizon, self.entries[-1].effective_from_ns)
        return horizon + 1

    def announce(
        self,
        *,
        new_percent: int,
        shadow: bool,
        now_ns: int,
        lead_ns: int,
        effective_from_ns: int | None = None,
    ) -> RoutingTable:
        """Append a change taking effect strictly after anything any reader may have been told
        is settled: after max(now + lead, valid_until_ns). Returns the new table.

        `effective_from_ns` asks for a later boundary than the earliest (an operator's
        explicit instant); one before earliest_boundary() raises ValueError."""
        earliest = self.earliest_boundary(now_ns=now_ns, lead_ns=lead_ns)
        at = earliest if effective_from_ns is None else effective_from_ns
        if at < earliest:
            raise ValueError(
                f"effective_from_ns={at} is too early: the earliest allowed is {earliest}"
            )
        entry = RoutingEntry(effective_from_ns=at, new_percent=new_percent, shadow=shadow)
        # Settled up to the instant before the new entry: nothing can be added before it.
        return self.model_copy(
            update={"entries": (*self.entries, entry), "valid_until_ns": at - 1}
        )

    def extended(self, *, now_ns: int, lead_ns: int) -> RoutingTable:
        """The table as served at `now_ns`: settled up to now + lead. Never moves backwards
        (a wall clock stepped back must not un-settle what readers already relied on)."""
        until = max(now_ns + lead_ns, self.valid_until_ns or 0)
        return self.model_copy(update={"valid_until_ns": until})

    # -- the wire -------------------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> RoutingTable:
        return cls.model_validate_json(data)

    def agrees_with(self, other: RoutingTable, until_ns: int) -> bool:
        """Same entries in force for every time up to until_ns (inclusive)?"""
        mine = [e for e in self.entries if e.effective_from_ns <= until_ns]
        theirs = [e for e in other.entries if e.effective_from_ns <= until_ns]
        return mine == theirs


class TableConflict(Exception):
    """admin-api served a table that rewrites history this reader already decided with."""


class RoutingFollower:
    """Keeps the latest routing table from admin-api; lets callers wait until it covers them.

    `GET {admin_url}/api/v1/migration` must answer a RoutingTable as JSON (valid_until_ns set),
    bare or as the "table" member of admin-api's migration view.
    """

    PATH = "/api/v1/migration"

    def __init__(
        self,
        admin_url: str,
        *,
        interval: float = 1.0,
        client: httpx.AsyncClient | None = None,
        timeout: float = 2.0,
        initial: RoutingTable | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = admin_url.rstrip("/") + self.PATH
        self.interval = interval
        self.fetch_errors = 0
        self.conflicts = 0
        self.last_refresh_at: float | None = None  # monotonic time of the last good poll
        self._table = initial
        self._ok = False  # did the most recent poll succeed?
        self._monotonic = monotonic
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        # Set (then replaced) whenever a new table is adopted. An Event and a deadline rather
        # than Condition.wait under asyncio.timeout: on 3.11 that pair could hang a waiter.
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None

    # -- what services and metrics read ---------------------------------------------------------

    @property
    def table(self) -> RoutingTable | None:
        return self._table

    @property
    def stale(self) -> bool:
        """True until a first poll succeeds, and whenever the latest poll failed."""
        return not self._ok

    @property
    def waiting(self) -> int:
        """Callers currently held in wait_covering."""
        return self._waiting

    def covers(self, time_fired_ns: int) -> bool:
        return self._table is not None and self._covers(self._table, time_fired_ns)

    async def wait_covering(self, time_fired_ns: int, timeout: float | None) -> RoutingTable:
        """Return a table complete up to time_fired_ns, waiting for one if need be.

        Raises TimeoutError after `timeout` s: the caller keeps the event and asks again.
        """
        table = self._table
        if table is not None and self._covers(table, time_fired_ns):
            return table
        self._waiting += 1
        self._kick.set()  # do not wait out a whole interval for the next poll
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while not self.covers(time_fired_ns):
                changed = self._changed
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no routing table covers {time_fired_ns} yet")
                await wait_set(changed, remaining)  # then re-check coverage and the deadline
        finally:
            self._waiting -= 1
        assert self._table is not None
        return self._table

    async def owner(self, entity_id: str, time_fired_ns: int, timeout: float | None) -> Owner:
        table = await self.wait_covering(time_fired_ns, timeout)
        return table.owner(entity_id, time_fired_ns)

    # -- polling ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="routing-follower")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._owns_client:
            await self._client.aclose()

    async def refresh(self) -> RoutingTable:
        """One poll. Adopts the fetched table if it is consistent with what we hold.

        Raises httpx.HTTPError / ValidationError / TableConflict on failure (the old table stays).
        """
        try:
            response = await self._client.get(self.url)
            response.raise_for_status()
            fetched = self._parse(response.content)
            if fetched.valid_until_ns is None:
                raise ValueError("admin-api served a table without valid_until_ns")
            await self._adopt(fetched)
        except Exception:
            self._ok = False
            self.fetch_errors += 1
            raise
        self._ok = True
        self.last_refresh_at = self._monotonic()
        assert self._table is not None
        return self._table

    async def _adopt(self, fetched: RoutingTable) -> None:
        current = self._table
        if current is not None and current.valid_until_ns is not None:
            if not fetched.agrees_with(current, current.valid_until_ns):
                # admin-api lost or rewrote its history (restarted without its state?). Events
                # were already decided with ours: switching would make the two pipelines
                # disagree. Keep ours and stop extending; loud, safe, fixable by an operator.
                self.conflicts += 1
                raise TableConflict(
                    f"table from {self.url} disagrees with the one in force up to "
                    f"{current.valid_until_ns}"
                )
            assert fetched.valid_until_ns is not None  # checked by refresh()
            if fetched.valid_until_ns < current.valid_until_ns:
                return  # an older view (a slow response overtaken by a newer one): keep ours
        self._table = fetched
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        while True:
            self._kick.clear()  # before polling: a waiter arriving mid-poll still kicks
            try:
                await self.refresh()
            except (httpx.HTTPError, ValidationError, ValueError, TableConflict) as exc:
                log.warning(
                    "routing table refresh failed; keeping the last one",
                    extra={"url": self.url, "error": repr(exc), "waiting": self._waiting},
                )
                await asyncio.sleep(self.interval)  # failures: no early kick, no hammering
                continue
            await wait_set(self._kick, self.interval)

    @staticmethod
    def _parse(content: bytes) -> RoutingTable:
        """A bare RoutingTable, or admin-api's migration view: {"table": {...}, "history": ...}."""
        doc = orjson.loads(content)  # JSONDecodeError is a ValueError: a failed poll, as usual
        if isinstance(doc, dict) and "table" in doc:
            doc = doc["table"]
        return RoutingTable.model_validate(doc)

    @staticmethod
    def _covers(table: RoutingTable, time_fired_ns: int) -> bool:
        # A fetched table always has valid_until_ns; an `initial` one without it is final.
        return table.covers(time_fired_ns)
