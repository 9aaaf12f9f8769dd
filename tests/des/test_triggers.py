"""The model's triggers and gates decide as the real runner's do on the same evidence: the
same ticks and the same stored latencies go to ``harness.runner.triggers`` (on a real
``Monitor``'s windows) and to ``simulators.des.triggers`` (on the model's monitor), and both
must fire the same trigger with the same words, or both stay quiet."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.runner import triggers as real
from harness.runner.monitor import Monitor as RealMonitor
from harness.runner.monitor import StoredPoint
from harness.runner.monitor import Tick as RealTick
from harness.scenario.model import Threshold, Trigger
from pipeline.common.events import EventKey
from simulators.des import triggers as sim
from simulators.des.jobs import PRODUCTION, SHADOW, Job
from simulators.des.latency import ShiftedLogNormal
from simulators.des.monitor import Tick as SimTick

from .helpers import model, scenario

TINY = ShiftedLogNormal(0.0, math.log(1e-7), 1e-6)  # L ~ 0: a point's latency is its wait
HEALTHY = {s: True for s in ("influxdb", "legacy", "ingestion", "enrichment", "storage",
                             "admin")}


class Evidence:
    """One set of facts, loaded into a real Monitor and into the model's."""

    def __init__(self, tmp_path: Path) -> None:
        sc = scenario(tmp_path, """
            name: t
            phases: [{name: a, steps: [{hold: 1s}]}]
            """)
        self.m = model(sc, seed=1, latency={"legacy": TINY, "new": TINY, "shadow": TINY})
        self.sim_mon = self.m.monitor
        self.real_mon = RealMonitor(None, None, "p", "s", tmp_path, 0,  # type: ignore[arg-type]
                                    phase=lambda: "a", routing=lambda: (0, False))
        self.ledger: list[SimpleNamespace] = []
        self.now = 0.0

    def tick(self, t: float, *, errors: float = 0, received: float = 0,
             new_errors: float = 0, new_received: float = 0, fired: int = 0, stored: int = 0,
             healthy: dict[str, bool] | None = None) -> None:
        health = dict(HEALTHY if healthy is None else healthy)
        self.real_mon.ticks.append(RealTick(t, fired, stored, errors, received, new_errors,
                                            new_received, health, 0))
        prev = self.sim_mon.ticks[-1] if self.sim_mon.ticks else None
        stalled = prev.stalled_cum if prev else 0.0
        if prev is not None and stored == prev.stored and prev.fired_subscribed > prev.stored:
            stalled += t - prev.t_s  # as the model's monitor accumulates it
        tick = SimTick(t, fired, stored, errors, received, new_errors, new_received, health, 0,
                       stalled)
        if self.sim_mon.first is None:
            self.sim_mon.first = tick
        self.sim_mon.ticks.append(tick)
        self.at(t)

    def at(self, t: float) -> None:
        self.now = t
        self.real_mon.now_s = lambda: t  # type: ignore[method-assign]
        self.sim_mon.now_s = lambda: t  # type: ignore[method-assign]

    def point(self, stored_at: float, latency_ms: float, path: str) -> None:
        key = EventKey(f"sensor.e{len(self.real_mon.points)}", int(stored_at * 1e9))
        self.real_mon.points.append(StoredPoint(int(stored_at * 1e9), latency_ms, path,
                                                key, "on", "1" * 26))
        target = SHADOW if path == "shadow" else PRODUCTION
        job = Job(1, stored_at, stored_at, target, None, latency_ms / 1000, stored_at)
        self.m.books.written(job, path, stored_at)

    def fired(self, t: float, n: int, stored: int) -> None:
        rec = self.m.books.fired(t, n, True)
        for i in range(n):
            key = EventKey(f"sensor.f{i}", int(t * 1e9))
            self.ledger.append(SimpleNamespace(key=key, time_fired_ns=key.time_fired_ns,
                                               connections=("c",), state="on"))
            if i < stored:
                self.real_mon.production_keys.add(key)
        if stored:
            self.m.books.written(Job(stored, t, t, PRODUCTION, rec, 0.0, t), "legacy", t)

    def both(self, triggers: list[Trigger], real_state: object = None, sim_state: object = None
             ) -> tuple[object, object]:
        a = real.evaluate(triggers, self.real_mon, self.ledger,  # type: ignore[arg-type]
                          real_state or real.TriggerState())
        b = sim.evaluate(triggers, self.sim_mon, sim_state or sim.TriggerState())
        return a, b


def _same(a: object, b: object) -> None:
    assert (a is None) == (b is None), (a, b)
    if a is not None:
        # The runner also names the first offending event ("; first: ..."); the model has
        # counts, not events, so the rest of the evidence must be the same words.
        real_evidence = a.evidence.split("; first: ")[0]  # type: ignore[attr-defined]
        assert (a.trigger, real_evidence) == (b.trigger, b.evidence)  # type: ignore[attr-defined]


def trig(text: str, **kw: object) -> Trigger:
    name = text.split()[0]
    if name == "service_unavailable":
        return Trigger(name=name, **kw)  # type: ignore[arg-type]
    return Trigger(name=name, threshold=Threshold.parse(text), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("new_errors, fires", [(0, False), (4, False), (6, True), (400, True)])
def test_error_rate(tmp_path: Path, new_errors: int, fires: bool) -> None:
    ev = Evidence(tmp_path)
    for i in range(15):
        ev.tick(float(i), received=100 * i, new_received=50 * i,
                new_errors=new_errors * max(0, i - 10) / 4, errors=new_errors * max(0, i - 10) / 4)
    a, b = ev.both([trig("error_rate > 1%")])
    _same(a, b)
    assert (a is not None) == fires


def test_service_unavailable_reads_a_missing_service_as_down(tmp_path: Path) -> None:
    ev = Evidence(tmp_path)
    ev.tick(1.0)
    ev.tick(2.0, healthy={k: v for k, v in HEALTHY.items() if k != "storage"})
    a, b = ev.both([trig("service_unavailable", services=["ingestion", "storage"])])
    _same(a, b)
    assert b is not None and b.evidence == "unavailable: storage"
    ev.tick(3.0)
    _same(*ev.both([trig("service_unavailable")]))


def test_for_holds_the_condition_before_firing(tmp_path: Path) -> None:
    ev = Evidence(tmp_path)
    t = [trig("service_unavailable", services=["storage"], **{"for": 3.0})]
    rs, ss = real.TriggerState(), sim.TriggerState()
    down = {k: v for k, v in HEALTHY.items() if k != "storage"}
    results = []
    for i in range(1, 7):
        ev.tick(float(i), healthy=down if i >= 2 else None)
        a, b = ev.both(t, rs, ss)
        _same(a, b)
        results.append(b is not None)
    assert results == [False, False, False, False, True, True]


@pytest.mark.parametrize("new_ms, fires", [(21.0, False), (23.0, False), (30.0, True),
                                           (900.0, True)])
def test_perf_drop(tmp_path: Path, new_ms: float, fires: bool) -> None:
    ev = Evidence(tmp_path)
    for i in range(12):
        ev.tick(float(i))
    for k in range(40):
        ev.point(3.0 + k * 0.15, 20.0 + (k % 5) * 0.1, "legacy")
        ev.point(3.0 + k * 0.15, new_ms + (k % 7) * 0.05, "shadow" if k % 2 else "new")
    a, b = ev.both([trig("perf_drop > 20%")])
    assert (a is None) == (b is None) == (not fires)
    if fires:
        # Same trigger and wording; the figure itself is within the model's 2% bins.
        assert a.trigger == b.trigger == "perf_drop"  # type: ignore[union-attr]
        ra = float(a.evidence.split(" by ")[1].split("%")[0])  # type: ignore[union-attr]
        rb = float(b.evidence.split(" by ")[1].split("%")[0])  # type: ignore[union-attr]
        assert rb == pytest.approx(ra, rel=0.05)


def test_too_few_points_is_no_evidence(tmp_path: Path) -> None:
    ev = Evidence(tmp_path)
    ev.tick(1.0)
    for _ in range(10):
        ev.point(1.0, 20.0, "legacy")
        ev.point(1.0, 500.0, "new")
    _same(*ev.both([trig("perf_drop > 20%")]))


def test_loss_counts_events_not_stored_within_the_window(tmp_path: Path) -> None:
    ev = Evidence(tmp_path)
    ev.fired(1.0, 10, stored=7)
    ev.fired(9.0, 10, stored=0)  # not due yet at t=15 with a 10 s window
    ev.tick(15.0, fired=20, stored=7)
    a, b = ev.both([trig("loss > 0")])
    # A count of events, read as one: "3 events not stored within the 10 s window".
    assert a is not None and a.evidence.startswith(  # type: ignore[attr-defined]
        "3 events not stored within the 10 s window (trigger: loss > 0)")
    _same(a, b)
    # The runner's evidence names the oldest event still missing, by its key.
    assert a is not None and a.evidence.endswith(  # type: ignore[attr-defined]
        "; first: sensor.f7@1970-01-01T00:00:01.000000Z")


@pytest.mark.parametrize("gate", [["p(95) < 100ms", "error_rate < 1%"], ["p(95) < 25ms"],
                                  ["error_rate < 0.1%"], ["availability >= 99%"]])
def test_gates(tmp_path: Path, gate: list[str]) -> None:
    ev = Evidence(tmp_path)
    for i in range(30):
        ev.tick(float(i), received=50 * i, new_received=25 * i, new_errors=0.1 * i,
                fired=50 * i, stored=50 * i if i < 20 or i > 24 else 50 * 20)
    for k in range(200):
        ev.point(5.0 + k * 0.1, 10.0 + (k % 20), "legacy" if k % 3 else "new")
    thresholds = [Threshold.parse(g) for g in gate]
    a = real.check_gate(thresholds, ev.real_mon.window(0, since_s=5.0))
    b = sim.check_gate(thresholds, ev.sim_mon.window(0, since_s=5.0))
    assert (a is None) == (b is None), (a, b)
    if a is not None:
        assert a.trigger == b.trigger == "gate"  # type: ignore[union-attr]
        what = b.evidence.split(" failed")[0]  # type: ignore[union-attr]
        assert a.evidence.split(" failed")[0] == what
