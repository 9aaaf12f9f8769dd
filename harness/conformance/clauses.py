"""The clauses of CONTRACT.md a conformance run checks, one function each, in the order they
run: the ones that only look first, then the ones that move traffic, kill and cut off.

Each returns a `Verdict` whose evidence says what was seen, so that a failing line is enough
to start fixing: the status that came back, the event that is missing, the seconds it took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from harness.errors import InvalidInput

from .stand import Stand

__all__ = ["CLAUSES", "Verdict", "select_clauses"]

#: how long past its own threshold a role may take to say 503 (polling, a busy machine)
SLACK_S = 10.0


@dataclass(frozen=True, slots=True)
class Verdict:
    clause: str  # CONTRACT.md's id, e.g. "C4 health-503-on-outage"
    passed: bool
    evidence: str


Clause = Callable[[Stand], Awaitable[Verdict]]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def health_shape(stand: Stand) -> Verdict:
    seen, bad = [], []
    for role in stand.roles:
        r = await stand.get(role, "/health")
        body = _json(r.content)
        seen.append(f"{role} {r.status_code}")
        if r.status_code != 200 or not isinstance(body, dict) or body.get("healthy") is not True \
                or body.get("status") != "ok":
            bad.append(f"{role} answered {r.status_code} {r.text[:120]!r}")
    return Verdict("C3 health-shape", not bad,
                   "; ".join(bad) or f"every role healthy: {', '.join(seen)}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def stats_fields(stand: Stand) -> Verdict:
    bad = []
    for role in stand.roles:
        r = await stand.get(role, "/api/v1/stats")
        body = _json(r.content)
        if r.status_code != 200 or not isinstance(body, dict):
            bad.append(f"{role}: {r.status_code} {r.text[:80]!r}")
            continue
        wrong = [f for f in ("received", "processed", "queue_depth") if not _count(body.get(f))]
        skipped = body.get("skipped")
        if skipped is not None and not (_count(skipped) or (isinstance(skipped, dict) and all(
                _count(v) for v in skipped.values()))):
            wrong.append("skipped")
        if wrong:
            bad.append(f"{role}: {', '.join(wrong)} not a count "
                       f"({ {f: body.get(f) for f in wrong} })")
    return Verdict("C6 stats-fields", not bad, "; ".join(bad) or
                   f"received, processed, queue_depth counts on {', '.join(stand.roles)}")


async def batch_shape(stand: Stand) -> Verdict:
    bad = []
    for role in stand.receivers:
        for body, want in ((b"{not json", 400), (b'{"evnets": []}', 422)):
            r = await stand.post(role, "/api/v1/events", body)
            answer = _json(r.content)
            if r.status_code != want or not (isinstance(answer, dict)
                                             and {"error", "detail"} <= set(answer)):
                bad.append(f"{role} answered {body.decode()!r} with {r.status_code} "
                           f"{r.text[:100]!r}, expected {want} with error and detail")
    return Verdict("C10 delivery-batch-shape", not bad, "; ".join(bad) or
                   f"{', '.join(stand.receivers)}: 400 for not JSON, 422 for no events list")


async def reject_per_event(stand: Stand) -> Verdict:
    good, broken = stand.probe_event(1), stand.probe_event(2)
    del broken["entity_id"]
    r = await stand.post("storage", "/api/v1/events", stand.batch(good, broken))
    answer = _json(r.content) or {}
    indexes = [e.get("index") for e in answer.get("rejected") or [] if isinstance(e, dict)]
    stored = await stand.until_points(good["entity_id"], 1, 15)
    ok = 200 <= r.status_code < 300 and indexes == [1] and stored == 1
    return Verdict("C12 delivery-reject-per-event", ok,
                   f"storage answered {r.status_code}, rejected indexes {indexes} (expected "
                   f"[1]); the valid event stored {stored} time(s) (expected 1)")


async def idempotent(stand: Stand) -> Verdict:
    event = stand.probe_event(3)
    first = await stand.post("storage", "/api/v1/events", stand.batch(event))
    await stand.until_points(event["entity_id"], 1, 15)
    again = await stand.post("storage", "/api/v1/events", stand.batch(event))
    duplicates = (_json(again.content) or {}).get("duplicates")
    await asyncio.sleep(1.0)
    points = await stand.points_of(event["entity_id"])
    ok = first.is_success and again.is_success and points == 1 \
        and isinstance(duplicates, int) and duplicates >= 1
    return Verdict("C14 delivery-idempotent", ok,
                   f"sent twice: {first.status_code} then {again.status_code}, duplicates "
                   f"{duplicates!r} (expected >= 1), {points} point(s) (expected 1)")


async def durable_2xx(stand: Stand) -> Verdict:
    event = stand.probe_event(4)
    r = await stand.post("storage", "/api/v1/events", stand.batch(event))
    await stand.rt.kill("storage")  # at once: only what the 2xx made durable survives
    await stand.rt.start("storage")
    await stand.rt.wait_healthy("storage", 60)
    stored = await stand.until_points(event["entity_id"], 1, 20)
    return Verdict("C11 delivery-durable-2xx", r.is_success and stored == 1,
                   f"storage answered {r.status_code}, was SIGKILLed at once and restarted; the "
                   f"event then stored {stored} time(s) (expected 1)")


async def ownership_at_a_step(stand: Stand) -> Verdict:
    """Legacy and the new path split the events at a 50% boundary by the same rule."""
    await stand.control.set(new_percent=50, reason="conformance: ownership at a step")
    await stand.fire("40/s", 3.0)  # across the boundary, announced 0.5 s ahead
    acc = await stand.settle()
    production, _ = await stand.stored()
    fired = stand.ledger.keys()
    writers = [production.writers[i] for i in range(len(production)) if production.key(i) in fired]
    wrong = acc.findings.inconsistent[:3]
    lost = acc.findings.lost[:3]
    # both paths must have written some: a step nobody crossed proves nothing
    ok = acc.counts.lost == 0 and acc.counts.inconsistent == 0 and acc.counts.duplicated == 0 \
        and "legacy" in writers and "new" in writers
    return Verdict("C15 routing-agreement", ok,
                   f"{acc.counts.expected} events across a step to 50% (legacy wrote "
                   f"{writers.count('legacy')}, new {writers.count('new')}): "
                   f"{acc.counts.lost} lost, "
                   f"{acc.counts.inconsistent} stored by the wrong path or wrongly, "
                   f"{acc.counts.duplicated} twice"
                   + "".join(f"; {f.entity_id}@{f.time_fired}: {f.detail}" for f in wrong + lost))


async def shared_contexts(stand: Stand) -> Verdict:
    """Every change of one Home Assistant action is stored, under its context id."""
    production, _ = await stand.stored()
    held = {production.key(i): production.context_ids[i] for i in range(len(production))}
    by_context: dict[str, list[Any]] = {}
    for i in range(len(stand.ledger)):
        by_context.setdefault(stand.ledger.context_id(i), []).append(stand.ledger.key(i))
    shared = [keys for keys in by_context.values() if len(keys) > 1]
    events = sum(len(keys) for keys in shared)
    missing = [k for keys in shared for k in keys if k not in held]
    if not shared:
        return Verdict("C27 event-key", False, "no shared context was fired: nothing checked")
    return Verdict("C27 event-key", not missing,
                   f"{events} events under {len(shared)} shared context ids: "
                   f"{len(missing)} missing" + (f", e.g. {missing[0]}" if missing else ""))


async def graceful_stop(stand: Stand) -> Verdict:
    await stand.control.set(new_percent=100, reason="conformance: graceful stop")
    stand.ha.set_profile(None)
    load = asyncio.create_task(stand.fire("40/s", 6.0))
    stopped = []
    for role in stand.pipeline.new_path:
        await asyncio.sleep(1.0)
        await stand.rt.stop(role)
        await stand.rt.start(role)
        stopped.append(role)
    await load
    for role in stopped:
        await stand.rt.wait_healthy(role, 60)
    acc = await stand.settle()
    return Verdict("C32 sigterm-no-loss", acc.counts.lost == 0,
                   f"SIGTERM and restart of {', '.join(stopped)} under load: "
                   f"{acc.counts.lost} of {acc.counts.expected} events lost"
                   + (f", e.g. {acc.findings.lost[0].entity_id}@{acc.findings.lost[0].time_fired}"
                      if acc.findings.lost else ""))


async def influx_outage(stand: Stand) -> Verdict:
    """Storage says 503 while InfluxDB is gone, 200 once it is back, and loses nothing."""
    threshold = 5.0  # CUTOVER_UNREACHABLE_AFTER_S's default, CONTRACT.md section 3.1
    load = asyncio.create_task(stand.fire("40/s", 8.0))
    await stand.rt.stop("influxdb")
    down = await stand.until_health("storage", 503, threshold + SLACK_S)
    await load
    await stand.rt.start("influxdb")
    await stand.rt.wait_healthy("influxdb", 60)
    up = await stand.until_health("storage", 200, 30 + SLACK_S)
    acc = await stand.settle(60)
    ok = down is not None and up is not None and acc.counts.lost == 0
    said = f"503 after {down:.1f} s" if down is not None else \
        f"no 503 within {threshold + SLACK_S:g} s"
    back = f"200 {up:.1f} s after InfluxDB returned" if up is not None else "never 200 again"
    return Verdict("C4 health-503-on-outage", ok,
                   f"InfluxDB stopped under load: storage {said}, {back}; "
                   f"{acc.counts.lost} of {acc.counts.expected} events lost")


#: Each clause by its CONTRACT.md id (a verdict's first word), in the order they run.
CLAUSES: dict[str, Clause] = {
    "C3": health_shape, "C6": stats_fields, "C10": batch_shape, "C12": reject_per_event,
    "C14": idempotent, "C11": durable_2xx, "C15": ownership_at_a_step, "C27": shared_contexts,
    "C32": graceful_stop, "C4": influx_outage}


def select_clauses(ids: Sequence[str]) -> dict[str, Clause]:
    """The clauses named by id (any case), in run order; every clause when none is named.
    An unknown id is refused before anything starts, with the ids there are."""
    if not ids:
        return dict(CLAUSES)
    wanted = {i.strip().upper() for i in ids}
    unknown = sorted(wanted - CLAUSES.keys())
    if unknown:
        raise InvalidInput(
            f"no conformance clause {', '.join(unknown)}: the clauses checked are "
            f"{', '.join(CLAUSES)} (CONTRACT.md's ids; e.g. --clause C4 for the InfluxDB outage)")
    return {i: c for i, c in CLAUSES.items() if i in wanted}
