"""The enrichment pipeline: POSTs from ingestion are accepted into its durable outbox, and a
``Forwarder`` drains the outbox to storage."""

from __future__ import annotations

import random
from collections.abc import Callable

import simpy

from .forwarder import Forwarder
from .jobs import Job
from .network import Network
from .params import ModelParams
from .ports import Gen, Receiver
from .service import Service

__all__ = ["Enrichment"]


class Enrichment(Service):
    def __init__(self, env: simpy.Environment, params: ModelParams, rng: random.Random,
                 poke: Callable[[], None], *, storage: Receiver, net: Network,
                 name: str = "enrichment") -> None:
        super().__init__(env, name, params, rng, poke)
        self.forwarder = Forwarder(self, storage, "enrichment-storage", net)

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0}
        if hasattr(self, "forwarder"):
            self.forwarder.reset()

    def on_ready(self) -> None:
        self.spawn(self.forwarder.run())

    def on_stopping(self) -> Gen:
        deadline = self.env.now + 5.0
        while self.forwarder.outbox.depth and self.env.now < deadline and self.running \
                and self.forwarder.breaker.state == "closed":
            yield self.env.timeout(0.05)

    def handling(self, n: int) -> float:
        return self.sample("enrichment", n)

    def accept(self, batch: list[Job], now: float) -> None:
        self.c["events_received_total"] += sum(j.n for j in batch)
        for job in batch:
            job.enq = now
            self.forwarder.put(job)

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        fwd = self.forwarder
        return not (fwd.outbox.depth and now - fwd.last_ok
                    > self.params.storage.enrichment_stall_s)

    def queue_depth(self) -> int:
        return self.forwarder.outbox.depth + sum(j.n for j in self.forwarder.inflight or ())

    def breaker_open(self) -> bool:
        return self.forwarder.breaker.is_open

    def error_total(self) -> float:
        return float(self.forwarder.failures)

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "cutover_forward_failures_total": self.forwarder.failures,
                "cutover_events_processed_total": self.forwarder.forwarded,
                "cutover_breaker_open": 1.0 if self.breaker_open() else 0.0,
                "cutover_queue_depth": float(self.queue_depth())}
