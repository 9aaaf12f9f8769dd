"""Total accounting against the ledger: each kind of finding, and reading real InfluxDB."""

from __future__ import annotations

import random

import httpx

from harness.checks.accounting import account, percentile
from harness.checks.stored import StoredPoints, read_points
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.timefmt import iso_from_ns, ulid

T0 = 1_790_000_000_000_000_000


def _ledger(n: int, *, unsubscribed: int = 0) -> tuple[Ledger, list[StateChange]]:
    rng = random.Random(5)
    ledger = Ledger(None)
    changes = []
    for i in range(n):
        t = T0 + i * 1_000_000
        state = {"state": "on" if i % 2 else "21.5"}
        changes.append(StateChange(f"light.l{i % 7}", None, state, ulid(t, rng), t))
    ledger.record_fired([(c, ()) for c in changes[:unsubscribed]], emitted_ns=T0)
    ledger.record_fired([(c, ("c1",)) for c in changes[unsubscribed:]], emitted_ns=T0)
    return ledger, changes


def _store(changes: list[StateChange], db: str = "production") -> StoredPoints:
    points = StoredPoints(db)
    for c in changes:
        points.context_ids.append(c.context_id)
        points.entity_ids.append(c.entity_id)
        points.states.append(c.state or "")
        points.times_ns.append(c.time_fired_ns)
        points.stored_at_ns.append(c.time_fired_ns + 20_000_000)
        points.writers.append("new")
    return points


def _run(ledger, production, shadow=None):
    return account(ledger, production, shadow, phase_of=lambda t: "switch" if t >= T0 + 50_000_000
                   else "parallel", owner_of=lambda e, t: "new")


def test_everything_stored_once_is_clean():
    ledger, changes = _ledger(100, unsubscribed=3)
    result = _run(ledger, _store(changes))
    c = result.counts
    assert (c.emitted, c.expected, c.unsubscribed, c.recovered, c.stored_production) == \
        (100, 100, 3, 3, 100)
    assert (c.lost, c.duplicated, c.unexpected, c.inconsistent) == (0, 0, 0, 0)
    assert result.latency["new"].p95_ms == 20.0


def test_fired_while_nobody_was_subscribed_and_not_recovered_is_lost_by_its_owner():
    """Zero loss means every state change Home Assistant made (DESIGN.md): a change fired
    during a restart that no path read back from history is lost, by the path that owned it."""
    ledger, changes = _ledger(100, unsubscribed=3)
    result = account(ledger, _store(changes[3:]), None, phase_of=lambda t: "switch",
                     owner_of=lambda e, t: "legacy" if e == changes[0].entity_id else "new")
    c = result.counts
    assert (c.expected, c.unsubscribed, c.recovered, c.lost) == (100, 3, 0, 3)
    lost = {f.entity_id: f for f in result.findings.lost}
    assert {f.detail for f in lost.values()} == {"fired while nobody was subscribed, not recovered"}
    assert lost[changes[0].entity_id].path == "legacy" and lost[changes[1].entity_id].path == "new"


def test_lost_duplicated_unexpected_are_named_with_phase_and_path():
    ledger, changes = _ledger(100)
    stored = _store(changes[:90] + changes[:2])  # 10 lost, 2 stored twice
    stored.context_ids.append("0" * 26)  # never sent
    stored.entity_ids.append("light.x")
    stored.states.append("on")
    stored.times_ns.append(T0)
    stored.stored_at_ns.append(None)
    stored.writers.append("legacy")
    result = _run(ledger, stored)
    assert result.counts.lost == 10
    assert {f.context_id for f in result.findings.lost} == {c.context_id for c in changes[90:]}
    assert all(f.phase == "switch" and f.path == "new" for f in result.findings.lost)
    assert result.counts.duplicated == 2
    assert result.findings.duplicated[0].detail == "stored 2 times"
    assert [f.context_id for f in result.findings.unexpected] == ["0" * 26]
    assert result.findings.unexpected[0].path == "legacy"


def test_inconsistent_state_time_and_entity_are_each_caught():
    ledger, changes = _ledger(10)
    stored = _store(changes)
    stored.states[1] = "True"  # "on" normalised away (FAILURE_MODES #12)
    stored.times_ns[2] += 3_600_000_000_000  # processing time in another zone (#11)
    stored.entity_ids[3] = "light.other"
    result = _run(ledger, stored)
    details = {f.context_id: f.detail for f in result.findings.inconsistent}
    assert "state 'True', sent 'on'" in details[changes[1].context_id]
    assert "time " in details[changes[2].context_id]
    assert "entity 'light.other'" in details[changes[3].context_id]
    assert result.counts.inconsistent == 3


def _shared_ledger(groups: int, size: int) -> tuple[Ledger, list[StateChange]]:
    """Like one automation run each: ``size`` changes under one context, the first entity twice."""
    rng = random.Random(8)
    ledger = Ledger(None)
    changes = []
    for g in range(groups):
        t = T0 + g * 1_000_000_000
        context = ulid(t, rng)
        entities = ["automation.a"] + [f"light.l{k}" for k in range(size - 2)] + ["automation.a"]
        for k, entity in enumerate(entities):
            changes.append(StateChange(entity, None, {"state": str(k)}, context, t + k * 1_000))
    ledger.record_fired([(c, ("c1",)) for c in changes], emitted_ns=T0)
    return ledger, changes


def test_events_sharing_a_context_are_each_accounted():
    ledger, changes = _shared_ledger(groups=5, size=4)
    result = _run(ledger, _store(changes))
    assert (result.counts.emitted, result.counts.stored_production) == (20, 20)
    assert (result.counts.lost, result.counts.duplicated, result.counts.inconsistent) == (0, 0, 0)
    # A pipeline that keeps one event per context (deduplicating by context id) loses the rest:
    # each is named by entity and time, with the context that explains it.
    firsts = _run(ledger, _store(changes[::4]))
    assert firsts.counts.lost == 15
    lost = {(f.entity_id, f.time_fired) for f in firsts.findings.lost}
    assert ("automation.a", iso_from_ns(changes[3].time_fired_ns)) in lost
    assert {f.context_id for f in firsts.findings.lost} == {c.context_id for c in changes}


def test_points_at_processing_time_are_pinned_on_their_own_event_within_a_context():
    # The automation entity changed twice under one context; both written an hour late (#11):
    # each point is matched to the nearest of the two, not both to one.
    ledger, changes = _shared_ledger(groups=1, size=4)
    stored = _store(changes)
    stored.times_ns[0] += 3_600_000_000_000
    stored.times_ns[3] += 3_600_000_000_000
    result = _run(ledger, stored)
    assert (result.counts.lost, result.counts.unexpected, result.counts.inconsistent) == (0, 0, 2)
    fired = sorted(f.time_fired for f in result.findings.inconsistent)
    assert fired == [iso_from_ns(changes[0].time_fired_ns), iso_from_ns(changes[3].time_fired_ns)]


def test_shadow_disagreeing_with_production_is_inconsistent():
    ledger, changes = _ledger(10)
    production = _store(changes)
    shadow = _store(changes, "shadow")
    shadow.states[4] = "garbage"
    result = _run(ledger, production, shadow)
    assert result.counts.stored_shadow == 10
    assert [f.path for f in result.findings.inconsistent] == ["shadow"]


def test_findings_lists_are_capped_but_counts_are_not():
    ledger, changes = _ledger(500)
    result = account(ledger, _store([]), None, phase_of=lambda t: "p", owner_of=lambda e, t: "new",
                     cap=50)
    assert result.counts.lost == 500 and len(result.findings.lost) == 50 and result.truncated


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([], 95) == 0.0


async def test_read_points_from_the_real_influxd(influxd, influx_db):
    from pipeline.common.events import Event
    from pipeline.common.points import to_line

    ledger, changes = _ledger(30)
    lines = []
    for c in changes:
        event = Event(context_id=c.context_id, entity_id=c.entity_id, domain="light",
                      time_fired_ns=c.time_fired_ns, state=c.state, old_state=None,
                      received_at_ns=c.time_fired_ns)
        lines.append(to_line(event, writer="new", stored_at_ns=c.time_fired_ns + 5_000_000))
    assert influxd.write(influx_db, lines).status_code == 204
    async with httpx.AsyncClient() as client:
        points = await read_points(client, influxd.url, influx_db, chunk_size=7)
        missing = await read_points(client, influxd.url, "no_such_database")
    assert len(points) == 30 and len(missing) == 0
    result = _run(ledger, points)
    assert (result.counts.lost, result.counts.inconsistent) == (0, 0)
    assert result.latency["new"].p50_ms == 5.0
