"""What every service of the topology shares: its lifecycle as a SimPy part.

A service is handed the Environment, the model's parameters, the run's random stream and the
monitor's ``poke``; the services that need more (Home Assistant, the database, the next hop)
get it from their constructor too (``model.py`` wires them).

Every process is a generator on the one Environment; a crash interrupts the service's
processes (what they held in memory is lost, what was durable stays), a pause freezes them (a
step in flight completes but its effect waits for the resume). Counters reset when a service
starts again, as a new process's Prometheus counters do.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import simpy

from .jobs import Job
from .params import ModelParams
from .ports import Gen, HaLink

__all__ = ["Admin", "HaClient", "Service", "Weather"]

INF = math.inf


class Service:
    """Lifecycle shared by every part: start (listening after its start-up time), graceful
    stop, crash, pause and resume; its processes are (re)spawned on each start."""

    def __init__(self, env: simpy.Environment, name: str, params: ModelParams,
                 rng: random.Random, poke: Callable[[], None]) -> None:
        self.env = env
        self.name = name
        self.params = params
        self.rng = rng
        self.poke = poke
        self.running = False
        self.ready_at = INF
        self.paused = False
        self.resumed: simpy.Event | None = None
        self.gen = 0
        self.procs: list[simpy.Process] = []
        self.started_at = 0.0
        self.starts = 0
        self.reset_counters()

    # -- lifecycle ----------------------------------------------------------------------------

    def listening(self) -> bool:
        return self.running and self.env.now >= self.ready_at

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self.paused = False
        self.gen += 1
        self.started_at = self.env.now
        p = self.params
        took = (p.restart_s if self.starts else p.startup_s).get(self.name, 1.0)
        self.starts += 1
        self.ready_at = self.env.now + took
        self.reset_counters()
        self.env.process(self._boot(self.gen))
        self.poke()

    def _boot(self, gen: int) -> Gen:
        yield self.env.timeout(max(0.0, self.ready_at - self.env.now))
        if gen == self.gen and self.running:
            self.on_ready()
            self.poke()

    def kill(self) -> None:
        """A crash (SIGKILL): processes stop where they are; memory is lost."""
        if not self.running:
            return
        self.running = False
        self.ready_at = INF
        self.gen += 1
        if self.paused:
            self.paused = False
            ev, self.resumed = self.resumed, None
            if ev is not None and not ev.triggered:
                ev.succeed()
        for proc in self.procs:
            if proc.is_alive:
                proc.interrupt("kill")
        self.procs = []
        self.on_killed()
        self.poke()

    def stop(self) -> Gen:
        """Graceful stop (a process generator): flush what the service may flush, then end."""
        if self.running:
            yield from self.on_stopping()
            self.kill()

    def pause(self) -> None:
        if self.running and not self.paused:
            self.paused = True
            self.resumed = self.env.event()
            self.poke()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            ev, self.resumed = self.resumed, None
            if ev is not None:
                ev.succeed()
            self.poke()

    def frozen(self) -> Gen:
        """Wait while paused (call after a step whose effect must wait for SIGCONT)."""
        while self.paused and self.resumed is not None:
            yield self.resumed

    def spawn(self, gen: Gen) -> None:
        self.procs.append(self.env.process(gen))

    # -- what a subclass provides ---------------------------------------------------------------

    def reset_counters(self) -> None:
        self.c: dict[str, float] = {}

    def on_ready(self) -> None:
        pass

    def on_killed(self) -> None:
        pass

    def on_stopping(self) -> Gen:
        return
        yield  # pragma: no cover - a generator that does nothing

    def healthy(self, now: float) -> bool:
        """Its /health at ``now`` (the Environment's now): listening and not frozen."""
        return self.running and now >= self.ready_at and not self.paused

    def queue_depth(self) -> int:
        return 0

    def breaker_open(self) -> bool:
        return False

    def error_total(self) -> float:
        return 0.0

    def received_total(self) -> float:
        return 0.0

    def metrics(self) -> dict[str, float]:
        return {f"cutover_{k}": v for k, v in self.c.items()}

    # -- helpers -------------------------------------------------------------------------------

    def sample(self, key: str, n: int) -> float:
        return self.params.service_times[key].sample(n, self.rng.gauss(0.0, 1.0))


class HaClient(Service):
    """A Home Assistant client service (legacy, ingestion): its connection is in source.py."""

    def __init__(self, env: simpy.Environment, name: str, params: ModelParams,
                 rng: random.Random, poke: Callable[[], None], ha: HaLink) -> None:
        super().__init__(env, name, params, rng, poke)
        self.ha = ha

    def on_ready(self) -> None:
        self.ha.connect(self)

    def on_killed(self) -> None:
        self.ha.disconnect(self, "client stopped")

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        raise NotImplementedError

    def ha_down_for(self, now: float) -> float:
        return self.ha.down_for(self, now)


class Admin(Service):
    pass


class Weather(Service):
    pass
