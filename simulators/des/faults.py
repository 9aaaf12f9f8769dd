"""The scenario's faults in the model, and random failures from MTBF / MTTR.

Timing follows ``harness/runner/faults.py``: ``at`` and ``for`` are plan time, scaled like
holds; a fault never blocks the steps after it; ``during: traffic N`` injects the fault while
that traffic step holds; what is still broken when the load stops is healed before the drain;
every injection and heal is a ``fault`` marker.

Modelled: service faults (kill, stop, pause, restart, disconnect), ``influxdb_outage``, the
hop toxics ``down``, ``reset_peer``, ``timeout`` and ``latency`` (see network.py), Home
Assistant's ``ha_drop``, ``ha_restart``, ``ha_stall`` and ``ha_refuse``, ``rogue_writer``
(its points count as inconsistent). The weather faults are modelled as what they are to the
event path: nothing (enrichment serves cached weather and never waits for the API per event).
Not modelled, and said so on the timeline and in the report: ``bandwidth``, ``slow_close``,
``slicer``, ``limit_data``, ``ha_revoke_token``, ``ha_malformed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import simpy

from harness.scenario.faults import Fault
from harness.scenario.rules import (
    FaultTimes,
    MarkerKind,
    armed_at_start,
    fault_times,
    tied_to_step,
)

from .books import Books
from .network import Network
from .ports import Gen
from .services import Services
from .source import HaServer
from .timeline import Signals

__all__ = ["FaultInjector", "NOT_MODELLED", "random_failures"]

Heal = Callable[[], Gen]
NOT_MODELLED = {
    "bandwidth": "bandwidth limits are not modelled",
    "slow_close": "slow_close is not modelled",
    "slicer": "slicer is not modelled",
    "limit_data": "limit_data is not modelled",
    "ha_revoke_token": "a revoked token is not modelled (clients keep their connections)",
    "ha_malformed": "malformed frames are not modelled",
    "clock_skew": "a service's wall clock is not modelled (the model has one clock)",
    "disk_full": "a full disk is not modelled (durable queues never run out of room)",
}
NO_EFFECT = {
    "weather_slow": "no effect on the event path in the model: enrichment serves cached "
                    "weather and never waits for the API per event",
    "weather_errors": "no effect on the event path in the model: weather is cached",
    "weather_down": "no effect on the event path in the model: weather is cached",
}


def _nothing() -> Gen:
    return
    yield  # pragma: no cover


class FaultInjector:
    """Injects and heals the scenario's faults on the services, the network, Home Assistant
    and the books; every injection and heal is a marker."""

    def __init__(self, env: simpy.Environment, time_scale: float, *, services: Services,
                 ha: HaServer, net: Network, books: Books, signals: Signals) -> None:
        self.env = env
        self.time_scale = time_scale
        self.services = services
        self.ha = ha
        self.net = net
        self.books = books
        self.signals = signals
        self._n = 0
        self._active: dict[int, tuple[Any, Heal, str]] = {}
        self._procs: set[simpy.Process] = set()
        self._during: dict[int, list[simpy.Process]] = {}
        self.noted: list[str] = []

    def _scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, fault: Fault) -> simpy.Process:
        """From now: wait ``at``, inject, and heal after ``for`` (if given)."""
        proc = self.env.process(self._lifecycle(fault, fault_times(fault, self.time_scale)))
        self._procs.add(proc)
        proc.callbacks.append(lambda _e: self._procs.discard(proc))
        return proc

    def arm(self, faults: list[Fault]) -> None:
        """The scenario's own ``faults:`` list; those tied to a traffic step wait for it."""
        for fault in armed_at_start(faults):
            self.schedule(fault)

    def traffic_started(self, percent: int, faults: list[Fault]) -> None:
        self._during[percent] = [self.schedule(f) for f in tied_to_step(faults, percent)]

    def traffic_ended(self, percent: int) -> Gen:
        for proc in self._during.pop(percent, []):
            if proc.is_alive:
                proc.interrupt("traffic step ended")
        for key in [k for k, (f, _, _) in self._active.items() if f is not None
                    and getattr(f, "during", None) is not None]:
            yield from self._heal(key)

    def heal_all(self) -> Gen:
        for proc in list(self._procs):
            if proc.is_alive:
                proc.interrupt("heal all")
        for key in list(self._active):
            yield from self._heal(key)

    # -- internals --------------------------------------------------------------------------------

    def _lifecycle(self, fault: Fault, times: FaultTimes) -> Gen:
        try:
            if times.at_s > 0:
                yield self.env.timeout(times.at_s)
            key = yield from self._inject(fault, times)
            if times.lasts_s is not None and key is not None:
                yield self.env.timeout(times.lasts_s)
                yield from self._heal(key)
        except simpy.Interrupt:
            return

    def _inject(self, fault: Fault, times: FaultTimes) -> Gen:
        self._n += 1
        key = self._n
        label = fault.describe()
        suffix = times.suffix()
        kind = fault.kind
        if kind in NOT_MODELLED:
            self.signals.mark("fault", f"{label}{suffix} (not modelled: {NOT_MODELLED[kind]})")
            self.noted.append(f"{label}: {NOT_MODELLED[kind]}")
            return None
        self.signals.mark("fault", f"{label}{suffix}")
        heal = yield from self._apply(fault, key)
        if heal is not None:
            self._active[key] = (fault, heal, label)
            return key
        return None

    def _heal(self, key: int) -> Gen:
        active = self._active.pop(key, None)
        if active is None:
            return
        _, heal, label = active
        yield from heal()
        self.signals.mark("fault", f"healed: {label}")

    def _apply(self, fault: Any, key: int) -> Gen:
        ha, books = self.ha, self.books
        kind = fault.kind
        if kind in ("latency", "down", "timeout", "reset_peer"):
            return self._toxic(fault, key)
        if kind in ("kill", "stop", "pause", "restart", "disconnect"):
            return (yield from self._service(fault))
        if kind == "influxdb_outage":
            yield from self.services.action("stop", "influxdb")
            return self._restarter(["influxdb"])
        if kind == "ha_drop":
            ha.drop_all("Home Assistant dropped every connection")
            return None
        if kind == "ha_restart":
            ha.restart(self._scaled(getattr(fault, "downtime", 0.0) or 0.0))
            return None
        if kind == "ha_stall":
            ha.stall(self._scaled(fault.for_) if fault.for_ is not None else self._scaled(10))
            return None
        if kind == "ha_refuse":
            ha.refuse(self._scaled(fault.for_) if fault.for_ is not None else self._scaled(10))
            return None
        if kind in NO_EFFECT:
            self.noted.append(f"{fault.describe()}: {NO_EFFECT[kind]}")
            return _nothing
        if kind == "rogue_writer":
            points = min(int(getattr(fault, "points", 5)), books.stored_production)
            if points:
                books.inconsistent += points
                books.inconsistent_at.append((self.env.now, points))
                self.signals.mark("fault", f"rogue_writer overwrote {points} point(s)")
            return None
        raise AssertionError(kind)

    def _toxic(self, fault: Any, key: int) -> Heal:
        ha, poke = self.ha, self.signals.poke
        hop = self.net.hop(fault.hop)
        kind = fault.kind
        if kind == "latency":
            hop.latencies[key] = (fault.latency or 0.0, fault.jitter or 0.0, fault.toxicity)

            def heal() -> Gen:
                hop.latencies.pop(key, None)
                yield from _nothing()
            return heal
        attr = {"down": "down", "timeout": "timeout", "reset_peer": "reset"}[kind]
        setattr(hop, attr, getattr(hop, attr) + 1)
        if kind != "timeout" and fault.hop.startswith("ha-"):
            client = fault.hop.split("-", 1)[1]
            if client in ha.conns:
                ha.conns[client].close(f"{fault.hop} {kind}")

        def heal_toxic() -> Gen:
            setattr(hop, attr, max(0, getattr(hop, attr) - 1))
            poke()
            yield from _nothing()
        poke()
        return heal_toxic

    def _service(self, fault: Any) -> Gen:
        net, ha, poke, action = self.net, self.ha, self.signals.poke, self.services.action
        services = list(fault.service)
        kind = fault.kind
        if kind == "disconnect":
            for s in services:
                net.disconnected[s] = net.disconnected.get(s, 0) + 1
                if s in ha.conns:
                    ha.conns[s].close("network disconnected")
            poke()

            def reconnect() -> Gen:
                for s in services:
                    net.disconnected[s] = max(0, net.disconnected.get(s, 0) - 1)
                poke()
                yield from _nothing()
            return reconnect
        for s in services:
            yield from action(kind, s)
        if kind in ("kill", "stop"):
            return self._restarter(services)
        if kind == "pause":
            def resume() -> Gen:
                for s in services:
                    yield from action("resume", s)
            return resume
        return None

    def _restarter(self, services: list[str]) -> Heal:
        control = self.services

        def restart() -> Gen:
            for s in services:
                yield from control.action("start", s)
            deadline = self.env.now + 60.0
            while self.env.now < deadline and not all(
                    control.component(s).healthy(self.env.now) for s in services):
                yield self.env.timeout(0.05)
        return restart



def random_failures(env: simpy.Environment, rng: random.Random, services: Services,
                    mark: Callable[[MarkerKind, str], None], service: str, mtbf_s: float,
                    mttr_s: float) -> Gen:
    """Crash ``service`` after exponential(MTBF) of running, bring it back after
    exponential(MTTR); only while the plan wants it running."""
    svc = services.component(service)
    wanted = services.wanted
    while True:
        yield env.timeout(rng.expovariate(1.0 / mtbf_s))
        if not svc.running or not wanted.get(service, False):
            continue
        down = rng.expovariate(1.0 / mttr_s)
        mark("fault", f"random failure: {service} crashed (MTBF {_human(mtbf_s)}), "
                      f"back in {_human(down)}")
        svc.kill()
        yield env.timeout(down)
        if not svc.running and wanted.get(service, False):
            svc.start()
            mark("fault", f"healed: {service} restarted after a random failure")


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"
