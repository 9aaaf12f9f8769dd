"""Delivery between services: a forwarder that drains a durable outbox into a neighbour.

Delivery contract (DESIGN.md "Between services"): batches of events go out as
`POST {path}` with `{"events": [...]}`. A batch leaves the sender's durable outbox only after a
2xx; anything else leaves it where it is. Hence:

- `ServiceClient.post_events` retries what may succeed later (connection errors, timeouts, 5xx,
  429) with exponential backoff and full jitter, and never retries what will not (other 4xx:
  `Rejected`). When its circuit breaker is open it raises `BreakerOpen` at once, without any
  network call. It never holds or drops events itself: that is the caller's outbox's job.
- `Forwarder` drains an outbox in order into `post_events`, acks only after a 2xx, and waits
  (never discards) while the neighbour is down or the breaker is open.
- A 2xx may still refuse some events one by one (the receiver's ``rejected`` list: this event
  is invalid, the rest of the batch is stored). Sending them again can never succeed and
  holding them would stop the outbox behind them, so they go to the refusal handler (the
  durable queue's dead-letter table, with the receiver's reason) before the batch is acked;
  without a handler they are counted and logged by event key. Never silently.

At-least-once, not exactly-once: if the process dies between the receiver's 2xx and the ack,
the batch is sent again after restart. The receiver deduplicates by the event's key
(entity_id, time_fired), which is also InfluxDB's point key, so a resent event overwrites its own
point rather than adding one; the forwarder does not try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import orjson

from pipeline.common.aio import wait_set, within
from pipeline.common.breaker import BreakerState
from pipeline.common.events import describe_raw
from pipeline.common.httpclient import (
    BreakerOpen,
    Rejected,
    ServiceClient,
    Unavailable,
    backoff_delay,
)
from pipeline.common.outbox import DEFAULT_MAX_BATCH_BYTES, Outbox, PoisonHandler, oldest_within

__all__ = ["Forwarder", "ForwarderStats", "StepOutcome"]

log = logging.getLogger(__name__)

StepOutcome = Literal["sent", "idle", "breaker", "failed"]


def _refusals(response: httpx.Response, batch_len: int) -> list[tuple[int, str]]:
    """(index, reason) of each event a 2xx answer lists under ``rejected``; an answer without
    that list (or not JSON) refused nothing."""
    try:
        listed = orjson.loads(response.content).get("rejected")
    except (orjson.JSONDecodeError, AttributeError):
        return []
    if not isinstance(listed, list):
        return []
    found: dict[int, str] = {}
    for entry in listed:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int) and 0 <= index < batch_len:
            found.setdefault(index, str(entry.get("reason") or "no reason given"))
    return sorted(found.items())


def _event_key(payload: bytes) -> str | None:
    try:
        return describe_raw(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return None


@dataclass
class ForwarderStats:
    forwarded: int = 0  # events acknowledged after a 2xx
    batches: int = 0
    failures: int = 0  # batches that could not be delivered (unavailable or rejected)
    rejected: int = 0  # of which refused by the receiver or undecodable (poison)
    refused_events: int = 0  # events a 2xx listed as rejected one by one (dead-lettered)
    breaker_waits: int = 0  # times the forwarder paused because the breaker was open
    last_success_ns: int | None = None  # wall clock of the last acked batch
    last_error: str | None = None


class Forwarder:
    """Background task: outbox -> post_events, in order, ack after 2xx, never drop."""

    def __init__(
        self,
        outbox: Outbox,
        client: ServiceClient,
        path: str = "/api/v1/events",
        *,
        batch_size: int = 500,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        idle_interval: float = 0.5,
        linger_s: float = 0.0,
        on_poison: PoisonHandler | None = None,
        on_refused: PoisonHandler | None = None,
        rng: random.Random | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if max_batch_bytes < 1:
            raise ValueError("max_batch_bytes must be >= 1")
        if linger_s < 0:
            raise ValueError("linger_s must be >= 0")
        self.outbox = outbox
        self.client = client
        self.path = path
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.idle_interval = idle_interval
        self.linger_s = linger_s
        self.stats = ForwarderStats()
        self._on_poison = on_poison
        self._on_refused = on_refused
        self._rng = rng if rng is not None else random.Random()
        self._wall_clock_ns = wall_clock_ns
        self._consecutive_failures = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def breaker_state(self) -> BreakerState:
        return self.client.breaker.state

    @property
    def depth(self) -> int:
        return self.outbox.depth

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self) -> None:
        """Something was put into the outbox: cut the idle wait short."""
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name=f"forwarder:{self.path}")
        return self._task

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Keep draining for up to `flush_timeout` s (or until the outbox is empty or the
        neighbour fails), then stop. What is left stays in the durable outbox for next start."""
        task = self._task
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        try:
            await within(asyncio.shield(task), timeout=flush_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._task = None

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before peeking: a notify() from here on is not missed
            outcome: StepOutcome
            try:
                outcome = await self.step()
            except Exception as exc:  # noqa: BLE001 - the outbox itself failed (disk, db)
                # Dying here would silently stop all forwarding while events pile up; keep
                # trying, loudly, and let health report the growing depth and failures.
                log.exception("forwarder step failed", extra={"path": self.path})
                self._note_failure(f"outbox error: {exc!r}")
                outcome = "failed"
            if self._stopping.is_set() and outcome != "sent":
                return  # shutting down: flush while it works, leave the rest durable
            if outcome == "sent" and self.linger_s and self.outbox.depth < self.batch_size:
                # A part batch went out: let the next one fill for a moment. Every batch costs
                # a request and a transaction on both sides whatever its size, so under load a
                # few ms here buys most of the throughput (Nagle's trade); idle costs nothing.
                await self._pause(self.linger_s)
            elif outcome == "idle":
                await self._wait_for_work()
            elif outcome == "breaker":
                await self._pause(max(self.client.breaker.retry_after(), 0.01))
            elif outcome == "failed":
                await self._pause(self._failure_delay())
            if self._stopping.is_set() and outcome != "sent":
                return

    async def step(self) -> StepOutcome:
        """Try one batch. Returns 'sent', 'idle', 'breaker' or 'failed'; never raises a
        delivery error (the loop's waiting policy hangs on the outcome)."""
        items = oldest_within(await self.outbox.peek(self.batch_size), self.max_batch_bytes)
        if not items:
            return "idle"
        try:
            events = [orjson.loads(payload) for _, payload in items]
        except orjson.JSONDecodeError as exc:
            return await self._poison(items, f"undecodable outbox item: {exc}")
        try:
            response = await self.client.post_events(self.path, events)
        except BreakerOpen as exc:
            self.stats.breaker_waits += 1
            self.stats.last_error = str(exc)
            return "breaker"
        except Unavailable as exc:
            self._note_failure(str(exc))
            return "failed"
        except Rejected as exc:
            return await self._poison(items, str(exc))
        await self._set_aside_refused(items, response)
        # Ack strictly after the 2xx. A crash right here means the batch is sent again on
        # restart: the receiver's idempotency by event key absorbs it (see module docstring).
        await self.outbox.ack(items[-1][0])
        self.stats.forwarded += len(items)
        self.stats.batches += 1
        self.stats.last_success_ns = self._wall_clock_ns()
        if self._consecutive_failures:
            log.info(
                "forwarding resumed",
                extra={"path": self.path, "after_failures": self._consecutive_failures},
            )
        self._consecutive_failures = 0
        return "sent"

    async def _set_aside_refused(self, items: list[tuple[int, bytes]],
                                 response: httpx.Response) -> None:
        """Hand the events the receiver refused one by one (its 2xx's ``rejected`` list) to
        the refusal handler, each with the receiver's reason."""
        refused = _refusals(response, len(items))
        if not refused:
            return
        self.stats.refused_events += len(refused)
        by_reason: dict[str, list[tuple[int, bytes]]] = {}
        for index, reason in refused:
            by_reason.setdefault(f"refused by {self.path}: {reason}", []).append(items[index])
        kept = False
        if self._on_refused is not None:
            kept = all([await self._on_refused(group, reason)
                        for reason, group in by_reason.items()])
        first_index, first_reason = refused[0]
        log.error(
            "events refused by the receiver" + (", dead-lettered" if kept else ", not kept"),
            extra={"path": self.path, "count": len(refused), "first_reason": first_reason,
                   "events": [_event_key(items[i][1]) for i, _ in refused[:20]]},
        )

    async def _poison(self, items: list[tuple[int, bytes]], reason: str) -> StepOutcome:
        self.stats.rejected += 1
        if self._on_poison is not None and await self._on_poison(items, reason):
            await self.outbox.ack(items[-1][0])
            log.error(
                "batch handed to dead-letter handler",
                extra={"path": self.path, "first_seq": items[0][0], "reason": reason},
            )
            return "sent"
        self._note_failure(reason)
        return "failed"

    def _note_failure(self, reason: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = reason
        if self._consecutive_failures == 0:  # log the transition, not every retry
            log.warning("forwarding failing; events held in outbox",
                        extra={"path": self.path, "reason": reason, "depth": self.depth})
        self._consecutive_failures += 1

    def _failure_delay(self) -> float:
        return backoff_delay(
            self._consecutive_failures,
            self.client.backoff_base,
            self.client.backoff_max,
            self._rng,
        )

    async def _wait_for_work(self) -> None:
        await wait_set(self._wake, self.idle_interval)  # then poll: a producer may not notify()

    async def _pause(self, seconds: float) -> None:
        # Interruptible by stop() only: new events do not make the neighbour healthier.
        await wait_set(self._stopping, seconds)
