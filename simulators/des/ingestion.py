"""The new pipeline's entry, websocket-ingestion: what Home Assistant sends goes through a group
commit into the durable outbox (what is not committed yet is lost on a crash, and read back
from history after the restart), and a ``Forwarder`` drains the outbox to enrichment."""

from __future__ import annotations

import random
from collections.abc import Callable

import simpy

from .forwarder import Forwarder
from .jobs import Job
from .network import Network
from .params import ModelParams
from .ports import Gen, HaLink, Receiver
from .queues import Queue
from .service import HaClient

__all__ = ["Ingestion"]


class Ingestion(HaClient):
    def __init__(self, env: simpy.Environment, params: ModelParams, rng: random.Random,
                 poke: Callable[[], None], *, ha: HaLink, enrichment: Receiver, net: Network,
                 name: str = "ingestion") -> None:
        super().__init__(env, name, params, rng, poke, ha)
        self.pending = Queue()  # in memory until the group commit
        self.committing: list[Job] = []
        self.wake: simpy.Event | None = None
        self.forwarder = Forwarder(self, enrichment, "ingestion-enrichment", net)

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0, "events_skipped_total": 0.0,
                  "outbox_commit_errors_total": 0.0}
        if hasattr(self, "forwarder"):
            self.forwarder.reset()

    def on_ready(self) -> None:
        self.spawn(self._intake())
        self.spawn(self.forwarder.run())
        super().on_ready()

    def on_killed(self) -> None:
        super().on_killed()
        # Not yet durable, so after the durable mark: the restart reads them back from history.
        lost = self.pending.clear() + self.committing
        if lost:
            self.ha.conn(self).missed.append((sum(j.n for j in lost), lost, self.env.now))
        self.committing = []

    def on_stopping(self) -> Gen:
        self.ha.disconnect(self, "client stopping")
        # Graceful: what is pending is committed, the forwarder keeps going a little.
        for job in self.pending.clear():
            self.forwarder.put(job)
        deadline = self.env.now + 5.0
        while self.forwarder.outbox.depth and self.env.now < deadline and self.running \
                and self.forwarder.breaker.state == "closed":
            yield self.env.timeout(0.05)

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        self.c["events_received_total"] += n_total
        kept = 0
        for job in jobs:
            kept += job.n
            self.pending.put(job)
        self.c["events_skipped_total"] += n_total - kept
        if kept and self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def _intake(self) -> Gen:
        env = self.env
        limit = self.params.commit_max_group
        try:
            while True:
                yield from self.frozen()
                if not self.pending.depth:
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    continue
                start = env.now
                group, n = self.pending.take(limit)
                self.committing = group
                yield env.timeout(self.sample("ingestion", n))
                yield from self.frozen()
                self.committing = []
                for job in group:
                    job.wait += max(0.0, start - job.enq)
                    job.enq = env.now
                    self.forwarder.put(job)
        except simpy.Interrupt:
            return

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        if self.ha_down_for(now) > self.params.client.down_after_s:
            return False
        fwd = self.forwarder
        return not (fwd.outbox.depth and now - fwd.last_progress
                    > self.params.client.stalled_after_s)

    def queue_depth(self) -> int:
        inflight = sum(j.n for j in self.forwarder.inflight or ())
        return self.forwarder.outbox.depth + inflight + self.pending.depth + sum(
            j.n for j in self.committing)

    def breaker_open(self) -> bool:
        return self.forwarder.breaker.is_open

    def error_total(self) -> float:
        return self.forwarder.failures + self.c["outbox_commit_errors_total"]

    def received_total(self) -> float:
        return self.c["events_received_total"]

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "cutover_forward_failures_total": self.forwarder.failures,
                "cutover_events_processed_total": self.forwarder.forwarded,
                "cutover_breaker_open": 1.0 if self.breaker_open() else 0.0,
                "cutover_queue_depth": float(self.queue_depth())}
