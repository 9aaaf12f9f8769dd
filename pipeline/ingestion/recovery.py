"""Gap recovery: what Home Assistant fired while ingestion was not subscribed, read back from
its recorder.

Home Assistant never replays an event; a restart of either side, a crash of ingestion (kill -9
included: what was received and not yet durable is gone) or a dropped connection leaves a gap.
Its recorder keeps the states, so after every subscription:

1. the gap starts at the newest event received before it (after a restart: the outbox's
   durable mark ``last_durable_ns``; nothing to recover on a first start with an empty outbox);
2. it ends at the first event the new subscription delivers: Home Assistant delivers in order,
   so from there on everything arrives live;
3. the recorder commits in the background: recovery waits until history holds that first live
   event (then it holds everything fired before it), polling every ``poll_s``; with no live
   event at all (a quiet home) it waits ``quiet_lag_s``, longer than the recorder's commit
   interval, and reads up to now;
4. it reads the gap in slices of ``slice_s`` (a busy home's hour does not fit one frame), turns
   each row into the event it was (`pipeline.common.ha_history`), and hands the intake only what
   the subscriptions since did not deliver. Those events then take the path every event takes:
   the outbox routes each by the routing table at its time_fired, so a recovered event is never
   written by both paths mid-switch. A redelivery (an event at the gap's edges the pipeline
   already had) is harmless, the point key being the same, and counted downstream.

A gap longer than ``max_window_s`` is recovered for its last ``max_window_s`` only: the rest is
named in one error log line and counted (``unrecovered_gaps``, the metric
``cutover_ingest_unrecovered_gaps``), never skipped in silence. ``max_window_s = 0`` turns
recovery off.

If the connection ends during recovery, the next subscription extends the same gap (one
`Watch` covers every subscription until the gap is read) and the pass starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.common.events import BadEvent, Event, describe_key
from pipeline.common.ha_history import HistoryRow, history_rows, iso_us, read_history, row_event
from pipeline.common.ha_protocol import CommandFailed, NotConnected
from pipeline.common.normalise import normalise
from pipeline.ingestion.intake import Intake, Watch

__all__ = ["RECOVERED_FLAG", "GapRecovery", "RecoveryStats"]

log = logging.getLogger(__name__)

#: The flag a recovered event carries through the pipeline (and into InfluxDB's flags).
RECOVERED_FLAG = "recovered_from_history"

Call = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class RecoveryStats:
    gaps: int = 0  # gaps read back (a gap with nothing missing counts too)
    recovered: int = 0  # events read back that the pipeline did not have
    already_had: int = 0  # rows in a gap's range the subscriptions delivered anyway
    unrecovered_gaps: int = 0  # gaps longer than max_window_s: their start is lost
    unrecovered_s: float = 0.0  # how much time those gaps lost, in all
    failures: int = 0  # passes that failed (and were retried)
    running: bool = False
    last_gap: dict[str, Any] | None = None  # start, end, recovered, seconds it took
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class GapRecovery:
    """Plug `before_subscribe` and `on_subscribed` into the Home Assistant client."""

    def __init__(self, intake: Intake, call: Call, *, poll_s: float = 1.0,
                 quiet_lag_s: float = 6.0, timeout_s: float = 60.0,
                 max_window_s: float = 3600.0, slice_s: float = 60.0,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.intake = intake
        self._call = call
        self.poll_s = poll_s
        self.quiet_lag_s = quiet_lag_s
        self.timeout_s = timeout_s
        self.max_window_s = max_window_s
        self.slice_s = slice_s
        self._wall_clock_ns = wall_clock_ns
        self.stats = RecoveryStats()
        self._watch: Watch | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_window_s > 0

    # -- the client's hooks: synchronous, called from its connection task ---------------------

    def before_subscribe(self) -> None:
        if not self.enabled:
            return
        if self._watch is None:
            self._watch = self.intake.watch()
        else:
            self._watch.resubscribed(self.intake.received)

    def on_subscribed(self) -> None:
        if self._watch is None or (self._task is not None and not self._task.done()):
            return  # a pass is running: it sees the new subscription through the watch
        self._task = asyncio.create_task(self._run(self._watch), name="ingestion-recovery")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- a gap ---------------------------------------------------------------------------------

    async def _run(self, watch: Watch) -> None:
        self.stats.running = True
        try:
            await self.intake.normalised_up_to(watch.at_seq)
            while True:
                generation = watch.generation
                try:
                    await self._pass(watch)
                except (NotConnected, CommandFailed, TimeoutError, OSError) as exc:
                    if isinstance(exc, CommandFailed) and exc.code == "unknown_command":
                        self.stats.last_error = f"Home Assistant has no history: {exc}"
                        log.error("Home Assistant answers no history/history_during_period "
                                  "(enable its recorder and history integrations): gaps cannot "
                                  "be recovered", extra={"error": str(exc)})
                        return
                    self.stats.failures += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("gap recovery failed; retrying on the next subscription",
                                extra={"error": self.stats.last_error})
                    await asyncio.sleep(self.poll_s)
                    continue
                except Exception as exc:  # a recovery that dies must say so, never go silent
                    self.stats.failures += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("gap recovery failed: the gap is not recovered",
                                  extra={"gap_start": _iso_or_none(watch.before_ns)})
                    return
                if watch.generation == generation:
                    break
        finally:
            if self._watch is watch:
                self._watch = None
            self.intake.unwatch(watch)
            self.stats.running = False

    async def _pass(self, watch: Watch) -> None:
        if watch.before_ns is None:
            log.info("first subscription of an empty outbox: no gap to recover")
            return  # a first start: nothing was ever received, so nothing was missed
        began = time.monotonic()
        end_ns = await self._wait_for_recorder(watch)
        start_ns = watch.before_ns
        now_ns = end_ns if end_ns is not None else self._wall_clock_ns()
        window_ns = int(self.max_window_s * 1e9)
        if now_ns - start_ns > window_ns:
            lost_from, start_ns = start_ns, now_ns - window_ns
            self.stats.unrecovered_gaps += 1
            self.stats.unrecovered_s += (start_ns - lost_from) / 1e9
            log.error("gap longer than the recovery window: events fired in its first part are "
                      "not recovered",
                      extra={"gap_start": iso_us(lost_from), "recovered_from": iso_us(start_ns),
                             "max_window_s": self.max_window_s,
                             "unrecovered_s": round((start_ns - lost_from) / 1e9, 3)})
        entity_ids = await self._entity_ids(watch)
        events, had = await self._read_gap(watch, entity_ids, start_ns, end_ns)
        for event in events:
            watch.keys.add(event.key)
        self.intake.add_recovered(events)
        stats = self.stats
        stats.gaps += 1
        stats.recovered += len(events)
        stats.already_had += had
        stats.last_gap = {"start": iso_us(start_ns),
                          "end": None if end_ns is None else iso_us(end_ns),
                          "recovered": len(events), "already_had": had,
                          "took_s": round(time.monotonic() - began, 3)}
        log.info("gap recovered from Home Assistant's history", extra=stats.last_gap | {
            "first": describe_key(events[0].key) if events else None})

    async def _wait_for_recorder(self, watch: Watch) -> int | None:
        """Until history holds the newest subscription's first event; its time (the gap's end),
        or None when no event came live within ``quiet_lag_s`` (read up to now)."""
        waited = 0.0
        while True:
            await asyncio.sleep(self.poll_s)
            waited += self.poll_s
            key = watch.latest_first_key
            if key is None:
                if waited >= self.quiet_lag_s:
                    return None
                continue
            # With attributes: without them Home Assistant answers nothing at all for an
            # entity whose state (not attributes) last changed before the start.
            answer = await read_history(self._call, [key.entity_id], key.time_fired_ns - 1000,
                                        key.time_fired_ns + 1000, with_start_state=False)
            if any(row.key == key for rows in history_rows(answer) for row in rows):
                return key.time_fired_ns
            if waited >= self.timeout_s:
                # An entity the recorder excludes never shows up: read what there is.
                log.warning("history does not hold the first live event; reading the gap anyway",
                            extra={"event": describe_key(key), "waited_s": waited})
                return key.time_fired_ns

    async def _entity_ids(self, watch: Watch) -> list[str]:
        states = await self._call("get_states")
        ids = {s.get("entity_id") for s in states or () if isinstance(s, dict)}
        ids.update(self.intake.entities)  # an entity removed during the gap is in no state
        ids.update(key.entity_id for key in watch.keys)
        if watch.before_key is not None:
            ids.add(watch.before_key.entity_id)
        return sorted(i for i in ids if isinstance(i, str))

    async def _read_gap(self, watch: Watch, entity_ids: list[str], start_ns: int,
                        end_ns: int | None) -> tuple[list[Event], int]:
        """The gap's events the subscriptions did not deliver, and how many they did."""
        if not entity_ids:
            return [], 0
        step = int(self.slice_s * 1e9)
        until = end_ns if end_ns is not None else self._wall_clock_ns()
        before: dict[str, HistoryRow] = {}
        found: list[Event] = []
        had = 0
        received_at = self._wall_clock_ns()
        lo = start_ns - 1000  # rows are last_updated > start: the gap's first instant too
        first = True
        while True:
            last = until - lo <= step
            hi = end_ns if last else lo + step  # the last slice of an open gap: up to now
            answer = await read_history(self._call, entity_ids, lo, hi, with_start_state=first)
            for rows in history_rows(answer):
                for row in rows:
                    prev = before.get(row.entity_id)
                    before[row.entity_id] = row
                    if row.last_updated_ns < start_ns or (
                            end_ns is not None and row.last_updated_ns >= end_ns):
                        continue  # a start state, or the live subscription's
                    if row.key in watch.keys or _before(watch, row):
                        had += 1
                        continue
                    event = _event(row, prev, received_at)
                    if event is not None:
                        found.append(event)
            if last or hi is None:
                break
            lo, first = hi - 1000, False  # slices are last_updated < hi, then >= hi
        found.sort(key=lambda e: e.time_fired_ns)
        return found, had


def _iso_or_none(ns: int | None) -> str | None:
    return None if ns is None else iso_us(ns)


def _before(watch: Watch, row: HistoryRow) -> bool:
    """The newest event received before the gap. After a restart only its time is known (the
    durable mark): a row at that very microsecond is the event already made durable."""
    if watch.before_key is not None:
        return row.key == watch.before_key
    return row.last_updated_ns == watch.before_ns


def _event(row: HistoryRow, before: HistoryRow | None, received_at_ns: int) -> Event | None:
    try:
        event = normalise(row_event(row, before), received_at_ns)
    except BadEvent as exc:
        log.warning("a recorded state cannot be ingested", extra={
            "event": describe_key(row.key), "reason": str(exc)})
        return None
    event.flags.append(RECOVERED_FLAG)
    return event
