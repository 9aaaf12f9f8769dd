"""pipeline/common/httpclient.py's Forwarder + ServiceClient, as one process: drains a durable
outbox in order, ``batch`` events per POST, retries with backoff and jitter behind a
``Breaker``; never drops (the ack comes after the 2xx)."""

from __future__ import annotations

import simpy

from .breaker import Breaker, backoff_delay
from .jobs import Job
from .network import OK, PAUSED, REFUSED, Network
from .ports import Gen, Receiver
from .queues import Queue
from .service import Service

__all__ = ["BREAKER", "FAILED", "SENT", "Forwarder"]

SENT, BREAKER, FAILED = 0, 1, 2


class Forwarder:
    """The outbox of ``service`` and the process that POSTs it to ``receiver`` over ``hop``."""

    def __init__(self, service: Service, receiver: Receiver, hop: str, net: Network) -> None:
        self.svc = service
        self.receiver = receiver
        self.hop = hop
        self.net = net
        self.outbox = Queue()  # durable: survives the service's crashes
        self.wake: simpy.Event | None = None
        self.inflight: list[Job] | None = None
        self.reset()

    def reset(self) -> None:
        http = self.svc.params.http
        self.breaker = Breaker(http.breaker_failures, http.breaker_reset_s,
                               clock=lambda: self.svc.env.now, on_change=self._changed)
        self.failures = 0  # batches that could not be delivered (cutover_forward_failures_total)
        self.breaker_waits = 0
        self.forwarded = 0
        self.last_ok = self.svc.env.now
        self.last_progress = self.svc.env.now
        self.consecutive = 0

    def _changed(self, _state: str) -> None:
        self.svc.poke()

    def put(self, job: Job) -> None:
        self.outbox.put(job)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def run(self) -> Gen:
        svc, env = self.svc, self.svc.env
        http = svc.params.http
        receiver = self.receiver
        uniform = svc.rng.uniform
        try:
            while True:
                yield from svc.frozen()
                if not self.outbox.depth:
                    self.last_progress = env.now
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    continue
                batch, n = self.outbox.take(http.batch)
                self.inflight = batch
                outcome, began = yield from self._post(receiver, n)
                yield from svc.frozen()
                self.inflight = None
                if outcome == SENT:
                    for job in batch:
                        job.wait += max(0.0, began - job.enq)
                    receiver.accept(batch, env.now)
                    self.forwarded += n
                    self.last_ok = self.last_progress = env.now
                    self.consecutive = 0
                    continue
                self.outbox.put_back(batch)
                if outcome == BREAKER:
                    self.breaker_waits += 1
                    yield env.timeout(max(self.breaker.retry_after(), 0.01))
                else:
                    self.failures += 1
                    self.consecutive += 1
                    svc.poke()
                    yield env.timeout(backoff_delay(self.consecutive, http.backoff_base,
                                                    http.backoff_max, uniform))
        except simpy.Interrupt:
            if self.inflight:
                self.outbox.put_back(self.inflight)
                self.inflight = None
            return

    def _post(self, receiver: Receiver, n: int) -> Gen:
        """ServiceClient.post_json: returns (SENT | BREAKER | FAILED, start of the attempt)."""
        svc, env, net = self.svc, self.svc.env, self.net
        http = svc.params.http
        rng = svc.rng
        breaker = self.breaker
        for attempt in range(http.retries + 1):
            if not breaker.allow():
                return BREAKER, env.now
            began = env.now
            outcome = net.outcome(self.hop, receiver)
            ok = False
            if outcome == OK:
                rgen = receiver.gen
                yield env.timeout(http.rtt + net.extra_latency(self.hop, rng.uniform)
                                  + receiver.handling(n))
                ok = receiver.gen == rgen and receiver.listening() and not receiver.paused
                if not ok and receiver.paused and receiver.gen == rgen:
                    ok = yield from self._wait_resume(receiver, began, n)
            elif outcome == REFUSED:
                yield env.timeout(http.refused_s)
            elif outcome == PAUSED:
                ok = yield from self._wait_resume(receiver, began, n)
            else:  # HANG
                yield env.timeout(http.read_timeout)
            if ok:
                breaker.record_success()
                return SENT, began
            breaker.record_failure()
            if attempt == http.retries:
                break
            yield env.timeout(backoff_delay(attempt, http.backoff_base, http.backoff_max,
                                            rng.uniform))
        return FAILED, env.now

    def _wait_resume(self, receiver: Receiver, began: float, n: int) -> Gen:
        env = self.svc.env
        timeout = self.svc.params.http.read_timeout
        rgen = receiver.gen
        left = timeout - (env.now - began)
        if receiver.resumed is not None and left > 0:
            yield receiver.resumed | env.timeout(left)
        if receiver.paused or receiver.gen != rgen or not receiver.listening():
            if env.now - began < timeout:
                yield env.timeout(max(0.0, timeout - (env.now - began)))
            return False
        yield env.timeout(receiver.handling(n))
        return receiver.gen == rgen and receiver.listening()
