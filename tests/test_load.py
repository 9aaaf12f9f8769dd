"""Load profiles, the pacer and replay: simulators/home_assistant/load.py."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from simulators.home_assistant.events import event_object
from simulators.home_assistant.load import (
    BurstProfile,
    ConstantProfile,
    Pacer,
    RampProfile,
    ReplayProfile,
    ReplaySource,
    Schedule,
    SoakProfile,
    SpikeProfile,
    Step,
    StepProfile,
    parse_profile,
    parse_rate,
    run_pacer,
)
from simulators.home_assistant.timefmt import iso_from_ns, ns_from_iso, ulid

RATE_HINT = "expected a number of events per second like '20/s', '1200/min' or '36000/h'"

# ----------------------------------------------------------------------------------- parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("20/s", 20.0),
        ("20", 20.0),
        (20, 20.0),
        (2.5, 2.5),
        ("1200/min", 20.0),
        ("1200/m", 20.0),
        ("17/min", 17 / 60),
        ("36000/h", 10.0),
        (" 5 / s ", 5.0),
        ("0", 0.0),
        ("0.5/s", 0.5),
    ],
)
def test_parse_rate_accepts(text: str | float, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize("text", ["abc", "", "20/x", "20/s/s", "/s", "nan", "inf", None, True])
def test_parse_rate_rejects_with_what_is_expected(text: Any) -> None:
    with pytest.raises(ValueError) as info:
        parse_rate(text)
    assert str(info.value) == f"rate {text!r}: {RATE_HINT}"


@pytest.mark.parametrize("text", ["-5/s", -1, "-0.1"])
def test_parse_rate_rejects_negative(text: Any) -> None:
    with pytest.raises(ValueError, match="must not be negative") as info:
        parse_rate(text)
    assert RATE_HINT in str(info.value)


def test_rate_field_takes_strings_and_numbers() -> None:
    assert ConstantProfile(rate="1200/min").rate == 20.0
    assert ConstantProfile(rate=7).rate == 7.0
    with pytest.raises(ValidationError, match="expected a number of events per second"):
        ConstantProfile(rate="fast")


# ------------------------------------------------------------------------------------ integrals


def test_constant_integral() -> None:
    p = ConstantProfile(rate="20/s", duration=10)
    assert [p.expected(t) for t in (-1, 0, 2.5, 10, 15)] == [0, 0, 50, 200, 200]
    assert (p.rate_at(5), p.rate_at(10)) == (20, 0)
    assert (p.finished(9.99), p.finished(10)) == (False, True)
    forever = ConstantProfile(rate=20)
    assert forever.expected(1000) == 20_000
    assert not forever.finished(1e9)


def test_ramp_integral() -> None:
    p = RampProfile(start_rate="10/s", end_rate="200/s", duration=60)
    # 10*30 + (190/60)*30^2/2 = 300 + 1425
    assert p.expected(30) == pytest.approx(1725)
    assert p.expected(60) == pytest.approx(6300)  # (10+200)/2 * 60
    assert p.expected(70) == pytest.approx(8300)  # then 200/s held
    assert (p.rate_at(0), p.rate_at(30), p.rate_at(90)) == (10, 105, 200)
    assert not p.finished(1e6)


def test_step_integral() -> None:
    p = StepProfile(steps=[Step(rate=10, duration=30), Step(rate=100, duration=30)])
    expected = {0: 0, 15: 150, 30: 300, 45: 1800, 60: 3300, 70: 4300}
    assert {t: p.expected(t) for t in expected} == pytest.approx(expected)
    assert (p.rate_at(29.9), p.rate_at(30), p.rate_at(100)) == (10, 100, 100)


def test_spike_integral() -> None:
    p = SpikeProfile(base_rate=20, peak_rate=500, at=30, duration=10)
    expected = {10: 200, 30: 600, 35: 600 + 2500, 40: 800 + 4800, 50: 1000 + 4800}
    assert {t: p.expected(t) for t in expected} == pytest.approx(expected)
    assert (p.rate_at(29.99), p.rate_at(30), p.rate_at(39.99), p.rate_at(40)) == (20, 500, 500, 20)


def test_burst_integral() -> None:
    p = BurstProfile(count=5000, then_rate="20/s")
    assert [p.expected(t) for t in (-0.1, 0, 2)] == [0, 5000, 5040]
    assert not p.finished(100)
    alone = BurstProfile(count=5000)
    assert (alone.expected(100), alone.finished(-1), alone.finished(0)) == (5000, False, True)


def test_soak_integral() -> None:
    p = SoakProfile(rate=50, duration=3600, wobble=0.2, period=600)
    # rate*(t + wobble*(1 - cos(2 pi t/period)) * period/(2 pi)): a quarter period in, cos = 0
    assert p.expected(150) == pytest.approx(50 * (150 + 0.2 * 600 / (2 * math.pi)))
    assert p.expected(300) == pytest.approx(50 * (300 + 0.2 * 2 * 600 / (2 * math.pi)))
    assert p.expected(600) == pytest.approx(30_000)  # a whole swing adds nothing
    assert p.expected(3600) == pytest.approx(180_000)
    assert p.expected(4000) == pytest.approx(180_000)
    assert p.rate_at(150) == pytest.approx(60)
    assert p.rate_at(450) == pytest.approx(40)
    assert (p.finished(3599), p.finished(3600)) == (False, True)
    with pytest.raises(ValidationError, match="wobble"):
        SoakProfile(rate=50, duration=10, wobble=0.6)


PROFILES = [
    ConstantProfile(rate=20, duration=10),
    RampProfile(start_rate=200, end_rate=10, duration=7),
    StepProfile(
        steps=[Step(rate=5, duration=2), Step(rate=50, duration=3), Step(rate=0, duration=1)]
    ),
    SpikeProfile(base_rate=20, peak_rate=500, at=3, duration=2),
    BurstProfile(count=300, then_rate=15),
    SoakProfile(rate=30, duration=11, wobble=0.5, period=4),
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.kind)
def test_expected_is_the_integral_of_rate_at(profile: Schedule) -> None:
    # Midpoint rule over 12 s in 1 ms steps; the burst's impulse lives in expected(0) only.
    dt, total = 0.001, 0.0
    for i in range(12_000):
        total += profile.rate_at((i + 0.5) * dt) * dt
        t = (i + 1) * dt
        if (i + 1) % 500 == 0:
            assert profile.expected(t) - profile.expected(0) == pytest.approx(total, abs=0.05)
    assert isinstance(profile, Schedule)


# -------------------------------------------------------------------------------- parse_profile


def test_parse_profile_strings(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    rec.write_text("")
    assert parse_profile("20/s") == ConstantProfile(rate=20)
    assert parse_profile("20") == ConstantProfile(rate=20)
    assert parse_profile("constant:5/min:10") == ConstantProfile(rate=5 / 60, duration=10)
    assert parse_profile("ramp:10/s..200/s:60") == RampProfile(
        start_rate=10, end_rate=200, duration=60
    )
    assert parse_profile("ramp:0.5/s..2.5/s:6") == RampProfile(
        start_rate=0.5, end_rate=2.5, duration=6
    )
    assert parse_profile("step:10/s*30,100/s*30") == StepProfile(
        steps=[Step(rate=10, duration=30), Step(rate=100, duration=30)]
    )
    assert parse_profile("spike:20/s,500/s@30+10") == SpikeProfile(
        base_rate=20, peak_rate=500, at=30, duration=10
    )
    assert parse_profile("burst:5000,then=20/s") == BurstProfile(count=5000, then_rate=20)
    assert parse_profile("burst:5000") == BurstProfile(count=5000)
    assert parse_profile("soak:50/s:3600") == SoakProfile(rate=50, duration=3600)
    assert parse_profile("soak:50/s:3600,wobble=0.2,period=60") == SoakProfile(
        rate=50, duration=3600, wobble=0.2, period=60
    )
    assert parse_profile(f"replay:{rec}") == ReplayProfile(path=rec)
    assert parse_profile(f"replay:{rec}@2x") == ReplayProfile(path=rec, speed=2)
    assert parse_profile(f"replay:{rec}@0.5x,loop") == ReplayProfile(path=rec, speed=0.5, loop=True)


def test_parse_profile_mappings() -> None:
    assert parse_profile({"kind": "ramp", "start_rate": "1/s", "end_rate": 3, "duration": 2}) == (
        RampProfile(start_rate=1, end_rate=3, duration=2)
    )
    assert parse_profile({"rate": "17/min"}) == ConstantProfile(rate=17 / 60)
    with pytest.raises(ValidationError, match="duration"):
        parse_profile({"kind": "ramp", "start_rate": 1, "end_rate": 3, "duration": 0})
    with pytest.raises(ValidationError, match="duraton"):
        parse_profile({"kind": "constant", "rate": 1, "duraton": 5})  # typos are not ignored
    with pytest.raises(ValidationError, match="kind"):
        parse_profile({"kind": "wave", "rate": 1})


@pytest.mark.parametrize(
    ("text", "reason", "form"),
    [
        ("abc", "rate 'abc': expected a number", "'ramp:10/s..200/s:1m'"),
        ("wave:1", "unknown kind 'wave'", "'spike:20/s,500/s@30+10'"),
        ("ramp:10/s:60", "not in the expected shape", "'ramp:START..END:DURATION'"),
        ("ramp:10/s..200/s:0", "duration: Input should be greater than 0", "'ramp:10/s..200/s:1m'"),
        ("ramp:10/s..-2/s:60", "must not be negative", "'ramp:10/s..200/s:1m'"),
        ("step:10/s", "not in the expected shape", "'step:10/s*30,100/s*30'"),
        ("spike:20/s,500/s", "not in the expected shape", "'spike:20/s,500/s@30+10'"),
        ("burst:many", "count: Input should be a valid integer", "'burst:5000,then=20/s'"),
        ("burst:10,than=1/s", "unknown option 'than=1/s'", "'burst:5000,then=20/s'"),
        ("soak:50/s", "not in the expected shape", "'soak:50/s:1h'"),
        ("replay:/no/such.jsonl@2x", "'/no/such.jsonl' does not exist", "'replay:path.jsonl@2x'"),
    ],
)
def test_parse_profile_rejects_naming_the_forms(text: str, reason: str, form: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_profile(text)
    message = str(info.value)
    assert message.startswith(f"profile {text!r}: ")
    assert reason in message
    assert "accepted forms: " in message and form in message


def test_replay_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="replay file '.*missing.jsonl' does not exist"):
        ReplayProfile(path=tmp_path / "missing.jsonl")
    with pytest.raises(ValidationError, match="is not a file"):
        ReplayProfile(path=tmp_path)


# ---------------------------------------------------------------------------- Pacer, fake clock


def test_pacer_due_and_fired() -> None:
    pacer = Pacer(ConstantProfile(rate=10), now=100.0)
    assert pacer.due(100.0) == 0
    assert pacer.due(100.09) == 0
    assert pacer.due(100.1) == 1
    pacer.fired(1)
    assert pacer.due(100.1) == 0
    assert pacer.due(100.35) == 2  # floor(3.5) - 1
    pacer.fired(2)
    assert pacer.due(101.0) == 7
    assert pacer.total_fired == 3
    with pytest.raises(ValueError):
        pacer.fired(-1)


def test_pacer_exact_for_awkward_rates() -> None:
    # 17/min: event k is due at k*60/17 s; float error must not make one a tick late.
    pacer = Pacer(ConstantProfile(rate="17/min"), now=0.0)
    assert pacer.due(60 / 17 * 3) == 3
    assert Pacer(ConstantProfile(rate=0.1), now=0.0).due(30) == 3


def test_pacer_catches_up_after_lateness() -> None:
    pacer = Pacer(ConstantProfile(rate=100), now=0.0)
    assert pacer.due(5.0) == 500  # nothing looked for 5 s: all of it is due at once
    pacer.fired(500)
    # Irregular looks, some very late: the cumulative count tracks the profile exactly.
    rng = random.Random(7)
    now = 5.0
    while now < 60:
        now += rng.choice([0.0005, 0.003, 0.01, 0.4, 2.5])
        pacer.fired(pacer.due(now))
        assert pacer.total_fired == math.floor(100 * now + 1e-6)


def test_pacer_burst_is_due_at_once() -> None:
    pacer = Pacer(BurstProfile(count=5000, then_rate=10), now=3.0)
    assert pacer.due(2.0) == 0
    assert pacer.due(3.0) == 5000
    assert pacer.due(3.5) == 5005


def test_set_profile_neither_loses_nor_doubles() -> None:
    pacer = Pacer(ConstantProfile(rate=10), now=0.0)
    assert pacer.due(2.55) == 25
    pacer.fired(20)  # 5 still owed
    pacer.set_profile(ConstantProfile(rate=100), now=2.55)
    assert pacer.due(2.55) == 5  # the debt carries over: not lost, not re-counted from 0
    pacer.set_profile(ConstantProfile(rate=100), now=2.55)
    assert pacer.due(2.55) == 5  # setting it twice at once changes nothing
    # 25.5 under the old profile (the half event too) + 100/s * 0.5 s, minus the 20 fired.
    assert pacer.due(3.05) == 55
    pacer.fired(55)
    pacer.set_profile(BurstProfile(count=1000), now=3.05)
    assert pacer.due(3.05) == 1000
    assert pacer.profile == BurstProfile(count=1000)
    pacer.fired(1000)
    assert pacer.finished(3.05)


def test_pause_is_not_caught_up() -> None:
    pacer = Pacer(ConstantProfile(rate=10, duration=10), now=0.0)
    pacer.fired(pacer.due(2.0))
    assert pacer.total_fired == 20
    pacer.pause(2.0)
    assert pacer.paused
    assert pacer.due(4.9) == 0
    pacer.pause(3.0)  # pausing again does not move the pause
    pacer.resume(5.0)
    assert pacer.due(5.0) == 0  # the 30 that would have fired meanwhile are not owed
    assert pacer.due(6.0) == 10
    pacer.fired(pacer.due(10.0))
    assert pacer.total_fired == 70  # 100 - 30 paused; the profile ended on time
    assert pacer.finished(10.0)


def test_pause_keeps_what_was_owed_before_it() -> None:
    pacer = Pacer(ConstantProfile(rate=10), now=0.0)
    pacer.pause(1.0)  # 10 due, none fired
    pacer.set_profile(BurstProfile(count=7, then_rate=10), now=2.0)
    assert pacer.due(2.0) == 0
    pacer.resume(4.0)
    assert pacer.due(4.0) == 17  # owed before the pause + the burst set during it
    assert pacer.due(4.5) == 22


def test_next_due() -> None:
    pacer = Pacer(ConstantProfile(rate=10), now=0.0)
    at = pacer.next_due(0.0, 1.0)
    assert at is not None and 0.1 <= at < 0.1002
    assert pacer.due(at) == 1  # never early
    assert Pacer(ConstantProfile(rate="17/min"), now=0.0).next_due(0.0, 1.0) is None
    pacer.pause(0.0)
    assert pacer.next_due(0.0, 1.0) is None


def test_finished_waits_for_what_is_owed() -> None:
    pacer = Pacer(ConstantProfile(rate=10, duration=1), now=0.0)
    assert not pacer.finished(0.5)
    assert not pacer.finished(2.0)  # over, but 10 still to fire
    pacer.fired(10)
    assert pacer.finished(2.0)
    assert not Pacer(ConstantProfile(rate=10), now=0.0).finished(1e9)


# ------------------------------------------------------------------------ run_pacer, real time


class Counter:
    """A fire callback that records when and how many."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []

    def __call__(self, n: int) -> None:
        self.calls.append((time.monotonic(), n))

    @property
    def total(self) -> int:
        return sum(n for _, n in self.calls)


async def test_run_pacer_constant_rate_real_time() -> None:
    fire, stop = Counter(), asyncio.Event()
    pacer = Pacer(ConstantProfile(rate="2000/s"), now=time.monotonic())
    asyncio.get_running_loop().call_later(3.0, stop.set)
    await asyncio.wait_for(run_pacer(pacer, fire, stop=stop), 10)
    assert fire.total == pytest.approx(6000, rel=0.01)
    assert pacer.total_fired == fire.total


async def test_run_pacer_returns_when_the_profile_is_over() -> None:
    fire = Counter()
    start = time.monotonic()
    pacer = Pacer(ConstantProfile(rate="2000/s", duration=1.5), now=start)
    await asyncio.wait_for(run_pacer(pacer, fire), 10)
    assert fire.total == 3000
    assert 1.45 < time.monotonic() - start < 1.8


async def test_run_pacer_does_not_spin_at_low_rates() -> None:
    fire, stop = Counter(), asyncio.Event()
    pacer = Pacer(ConstantProfile(rate="17/min"), now=time.monotonic())
    asyncio.get_running_loop().call_later(2.0, stop.set)
    cpu = time.process_time()
    await asyncio.wait_for(run_pacer(pacer, fire, stop=stop), 10)
    assert time.process_time() - cpu < 0.1
    assert fire.total == 0  # the first of 17/min is due at 3.5 s


async def test_run_pacer_chunks_and_yields_between_chunks() -> None:
    order: list[str] = []

    async def fire(n: int) -> None:
        order.append(f"fire {n}")

    async def other_task() -> None:
        for _ in range(10):
            order.append("other")
            await asyncio.sleep(0)

    pacer = Pacer(BurstProfile(count=2500), now=time.monotonic())
    await asyncio.wait_for(asyncio.gather(run_pacer(pacer, fire, max_chunk=1000), other_task()), 5)
    fires = [o for o in order if o.startswith("fire")]
    assert fires == ["fire 1000", "fire 1000", "fire 500"]
    first, last = order.index("fire 1000"), order.index("fire 500")
    assert "other" in order[first:last]  # the loop got to run during the storm
    assert pacer.total_fired == 2500


async def test_run_pacer_wakes_for_stop_and_changes() -> None:
    fire, stop = Counter(), asyncio.Event()
    pacer = Pacer(ConstantProfile(rate=0), now=time.monotonic())
    task = asyncio.create_task(run_pacer(pacer, fire, stop=stop, max_sleep=5.0))
    await asyncio.sleep(0.2)
    changed = time.monotonic()
    pacer.set_profile(BurstProfile(count=10, then_rate=0.01), now=changed)
    await asyncio.sleep(0.05)
    assert fire.total == 10 and fire.calls[0][0] - changed < 0.03  # not after max_sleep
    pacer.pause(time.monotonic())
    pacer.set_profile(BurstProfile(count=5, then_rate=0.01), now=time.monotonic())
    await asyncio.sleep(0.05)
    assert fire.total == 10
    pacer.resume(time.monotonic())
    await asyncio.sleep(0.05)
    assert fire.total == 15
    stopped = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - stopped < 0.05


@pytest.mark.slow
async def test_rate_accuracy_over_sliding_windows() -> None:
    fire, stop = Counter(), asyncio.Event()
    start = time.monotonic()
    pacer = Pacer(ConstantProfile(rate="1000/s"), now=start)
    asyncio.get_running_loop().call_later(12.2, stop.set)
    await asyncio.wait_for(run_pacer(pacer, fire, stop=stop), 20)
    for i in range(5):  # windows [0, 10) .. [2, 12) s
        lo = start + i * 0.5
        count = sum(n for t, n in fire.calls if lo <= t < lo + 10)
        assert count == pytest.approx(10_000, rel=0.02), f"window from {i * 0.5} s"


# ---------------------------------------------------------------------------------------- replay

T0 = ns_from_iso("2025-01-01T00:00:00.000000+00:00")


def _state(
    entity_id: str, state: str, changed_ns: int, updated_ns: int, ctx: str, **attrs: Any
) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": attrs,
        "last_changed": iso_from_ns(changed_ns),
        "last_reported": iso_from_ns(updated_ns),
        "last_updated": iso_from_ns(updated_ns),
        "context": {"id": ctx, "parent_id": None, "user_id": None},
    }


def _event(old: dict[str, Any] | None, new: dict[str, Any], fired_ns: int) -> dict[str, Any]:
    return {
        "event_type": "state_changed",
        "data": {"entity_id": new["entity_id"], "old_state": old, "new_state": new},
        "origin": "LOCAL",
        "time_fired": iso_from_ns(fired_ns),
        "context": dict(new["context"]),
    }


S = 1_000_000_000
A1 = _state("sensor.a", "20.5", T0, T0, "01JGFJJZ000000000000000001", unit_of_measurement="°C")
B1 = _state("light.b", "on", T0 + S, T0 + S, "01JGFJJZ000000000000000002", brightness=255)
A2 = _state("sensor.a", "21.0", T0 + 2500 * S // 1000, T0 + 2500 * S // 1000,
            "01JGFJJZ000000000000000003", unit_of_measurement="°C")  # fmt: skip
C1 = _state("switch.c", "off", T0 - 3600 * S, T0 + 2500 * S // 1000, "01JGFJJZ000000000000000004")
# An attribute-only change: last_changed stays A2's, last_updated moves on.
A3 = _state("sensor.a", "21.0", T0 + 2500 * S // 1000, T0 + 4 * S, "01JGFJJZ000000000000000005",
            unit_of_measurement="°C", friendly_name="A")  # fmt: skip
RECORDED = [
    (None, A1, T0),
    (None, B1, T0 + S),
    (A1, A2, T0 + 2500 * S // 1000),
    (None, C1, T0 + 2500 * S // 1000),
    (A2, A3, T0 + 4 * S),
]


def _write_recording(path: Path) -> Path:
    events = [_event(old, new, ns) for old, new, ns in RECORDED]
    service = {"event_type": "call_service", "data": {"domain": "light"}, "time_fired": "x"}
    lines = [
        json.dumps(events[0]),  # a plain event object
        json.dumps({"id": 3, "type": "event", "event": events[1]}),  # a frame
        json.dumps({"id": 4, "type": "event", "event": service}),  # skipped
        json.dumps([{"id": 3, "type": "event", "event": events[2]}, events[3]]),  # coalesced
        "",
        json.dumps(events[4], ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_timeline(tmp_path: Path) -> None:
    profile = ReplayProfile(path=_write_recording(tmp_path / "rec.jsonl"), speed=10)
    # Recorded at 0, 1, 2.5, 2.5 and 4 s; at speed 10: 0, 0.1, 0.25, 0.25, 0.4 s.
    expected = {-0.01: 0, 0: 1, 0.05: 1, 0.1: 2, 0.2: 2, 0.3: 4, 0.39: 4, 0.4: 5, 100: 5}
    assert {t: profile.expected(t) for t in expected} == expected
    assert (profile.finished(0.39), profile.finished(0.4)) == (False, True)
    source = ReplaySource(profile, random.Random(1))
    assert {t: source.expected(t) for t in expected} == expected
    assert isinstance(source, Schedule)
    pacer = Pacer(profile, now=50.0)
    assert (pacer.due(50.0), pacer.due(50.3)) == (1, 4)
    # Looped: a loop lasts the span plus the mean gap (4 s + 1 s), so 0.5 s at speed 10.
    looped = ReplayProfile(path=profile.path, speed=10, loop=True)
    assert [looped.expected(t) for t in (0.45, 0.5, 0.6, 1.0)] == [5, 6, 7, 11]
    assert not looped.finished(1e6)
    # A scanned profile still equals the same profile fresh from a scenario file.
    assert profile == ReplayProfile(path=profile.path, speed=10)
    assert hash(profile) == hash(ReplayProfile(path=profile.path, speed=10))
    assert profile != looped


def test_replay_restamps_and_keeps_content(tmp_path: Path) -> None:
    profile = ReplayProfile(path=_write_recording(tmp_path / "rec.jsonl"), speed=10)
    source = ReplaySource(profile, random.Random(1))
    now = 1_800_000_000 * S
    changes = [source.next_change(now + i * 1_000_000) for i in range(5)]

    assert [c.entity_id for c in changes] == [new["entity_id"] for _, new, _ in RECORDED]
    for i, (change, (_, new, _)) in enumerate(zip(changes, RECORDED, strict=True)):
        now_i = now + i * 1_000_000
        assert change.time_fired_ns == now_i
        assert change.new_state is not None
        assert change.new_state["state"] == new["state"]
        assert change.new_state["attributes"] == new["attributes"]
        assert change.new_state["last_updated"] == iso_from_ns(now_i)
        assert change.new_state["last_reported"] == iso_from_ns(now_i)
        assert change.new_state["context"]["id"] == change.context_id
        assert event_object(change)["time_fired"] == iso_from_ns(now_i)
    ids = [c.context_id for c in changes]
    assert len(set(ids)) == 5
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert not set(ids) & {new["context"]["id"] for _, new, _ in RECORDED}
    assert ids[0][:10] == ulid(now, random.Random(0))[:10]  # a ULID of the new time, not of 2025
    # last_changed: re-stamped where it was the event's time, kept where it was not.
    assert changes[0].new_state["last_changed"] == iso_from_ns(now)
    assert changes[3].new_state["last_changed"] == iso_from_ns(T0 - 3600 * S)
    # The old -> new chain of sensor.a survives: its old_state is what was fired before,
    # and the attribute-only change keeps last_changed equal to its old_state's.
    assert changes[2].old_state == changes[0].new_state
    assert changes[4].old_state == changes[2].new_state
    assert changes[4].new_state["last_changed"] == changes[2].new_state["last_changed"]
    assert changes[4].new_state["last_updated"] != changes[4].new_state["last_changed"]

    with pytest.raises(EOFError):
        source.next_change(now)


def test_replay_loops_with_fresh_ids(tmp_path: Path) -> None:
    profile = ReplayProfile(path=_write_recording(tmp_path / "rec.jsonl"), loop=True)
    source = ReplaySource(profile, random.Random(2))
    changes = [source.next_change(T0 + i) for i in range(12)]
    assert [c.entity_id for c in changes[5:10]] == [c.entity_id for c in changes[:5]]
    assert len({c.context_id for c in changes}) == 12


def test_replay_skips_the_other_messages_of_a_raw_capture(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    good = json.dumps(_event(None, A1, T0))
    path.write_text('{"type": "auth_ok", "ha_version": "2026.11.0"}\n'
                    '{"type": "result", "id": 1, "success": true, "result": null}\n'
                    f'{good}\n[{{"id": 2, "type": "pong"}}, {good}]\n')
    source = ReplaySource(ReplayProfile(path=path), random.Random(0))
    assert [source.next_change(T0 + i).entity_id for i in range(2)] == ["sensor.a"] * 2
    assert source.expected(10.0) == 2


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"foo": 1}', "expected a Home Assistant event object"),
        ("[1, 2]", "expected a Home Assistant event object"),
        ("{not json", "not JSON"),
        ('{"event_type": "state_changed", "data": {}, "time_fired": "x"}', "data.entity_id"),
        (
            '{"event_type": "state_changed", "data": {"entity_id": "a.b", "old_state": null,'
            ' "new_state": null}, "time_fired": "2025-01-01T00:00:00"}',
            "has no UTC offset",
        ),
    ],
)
def test_replay_malformed_line_names_file_and_line(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_event(None, A1, T0))
    path.write_text(f"{good}\n\n{bad_line}\n{good}\n")
    profile = ReplayProfile(path=path)
    with pytest.raises(ValueError, match=message) as info:
        ReplaySource(profile, random.Random(0))
    assert str(info.value).startswith(f"{path}:3: ")


def test_replay_of_nothing_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({"event_type": "call_service", "data": {}}) + "\n")
    with pytest.raises(ValueError, match="no state_changed events"):
        ReplayProfile(path=path).expected(1)


def test_replay_keeps_the_recordings_own_contexts(tmp_path: Path) -> None:
    # One automation run recorded: its entity twice and a light, under one context whose parent
    # is the motion that triggered it. Replayed, they share one fresh context again, and the
    # parent is the trigger's fresh id; a second pass is new causes with new ids.
    run, trigger = "01JGFJJZ0000000000000000RN", "01JGFJJZ0000000000000000TR"
    motion = _state("binary_sensor.m", "on", T0, T0, trigger)
    a1 = _state("automation.x", "on", T0 - S, T0 + 1000, run, current=1)
    lamp = _state("light.l", "on", T0 + 2000, T0 + 2000, run)
    a2 = _state("automation.x", "on", T0 - S, T0 + 3000, run, current=0)
    for state in (a1, lamp, a2):
        state["context"]["parent_id"] = trigger
    recorded = [(None, motion, T0), (None, a1, T0 + 1000), (None, lamp, T0 + 2000),
                (a1, a2, T0 + 3000)]
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(_event(old, new, ns)) + "\n" for old, new, ns in recorded))
    source = ReplaySource(ReplayProfile(path=path, loop=True), random.Random(5))
    changes = [source.next_change(T0 + i * 1000) for i in range(8)]
    first, second = changes[:4], changes[4:]
    for one in (first, second):
        trigger_id = one[0].context_id
        assert trigger_id not in (run, trigger)
        assert len({c.context_id for c in one[1:]}) == 1 and one[1].context_id != trigger_id
        for change in one[1:]:
            assert change.new_state is not None
            assert change.new_state["context"]["parent_id"] == trigger_id
            assert event_object(change)["context"] == change.new_state["context"]
    assert not {c.context_id for c in first} & {c.context_id for c in second}


@pytest.mark.parametrize(("text", "field", "seconds"), [
    ("ramp:10/s..200/s:1m", "duration", 60.0),
    ("constant:20/s:90s", "duration", 90.0),
    ("step:10/s*30s,100/s*2m", None, None),
    ("spike:20/s,500/s@1m+500ms", "at", 60.0),
    ("soak:50/s:1h,period=10m", "period", 600.0),
    ("soak:50/s:1h,period=5m", "period", 300.0),
])
def test_profile_times_are_written_as_every_other_duration(text: str, field: str | None,
                                                           seconds: float | None) -> None:
    profile = parse_profile(text)
    if field is None:
        assert [s.duration for s in profile.steps] == [30.0, 120.0]  # type: ignore[union-attr]
    else:
        assert getattr(profile, field) == seconds
