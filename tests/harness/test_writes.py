"""Who wrote each point, and how often: ownership, the shadow's completeness and place, and
double writes InfluxDB merges away. Each test builds the defect its check exists for."""

from __future__ import annotations

from harness.checks.accounting import account
from harness.checks.stored import StoredPoints
from harness.checks.writes import Rewrites
from pipeline.common.routing import RoutingEntry, RoutingTable
from simulators.home_assistant.ledger import Ledger
from tests.harness.test_accounting import T0, _ledger

SWITCH = T0 + 50_000_000  # 50 ms into the ledger's 100 events, 1 ms apart
#: shadow on from the start; 50% of the buckets to the new path from SWITCH on
TABLE = RoutingTable(entries=(RoutingEntry(effective_from_ns=T0 - 1, new_percent=0, shadow=True),
                              RoutingEntry(effective_from_ns=SWITCH, new_percent=50,
                                           shadow=True)))


def _owner(entity: str, t: int) -> str:
    return TABLE.owner(entity, t)


def _split(ledger: Ledger) -> tuple[StoredPoints, StoredPoints]:
    """What a healthy pipeline stores: each event in production by its owner, legacy's in
    shadow too, each point stamped by its writer."""
    production, shadow = StoredPoints("production"), StoredPoints("shadow")
    for entry in ledger:
        owner = _owner(entry.entity_id, entry.time_fired_ns)
        for points, writer in ((production, owner),
                               *([(shadow, "new")] if owner == "legacy" else [])):
            points.context_ids.append(entry.context_id)
            points.entity_ids.append(entry.entity_id)
            points.states.append(entry.state or "")
            points.times_ns.append(entry.time_fired_ns)
            points.stored_at_ns.append(entry.time_fired_ns + 1_000_000)
            points.writers.append(writer)
            points.legacy_stamps.append(entry.time_fired_ns + 1 if writer == "legacy" else None)
            points.new_stamps.append(entry.time_fired_ns + 1 if writer == "new" else None)
    return production, shadow


def _account(ledger, production, shadow, rewrites=None):
    return account(ledger, production, shadow, phase_of=lambda t: "switch", owner_of=_owner,
                   table=TABLE, rewrites=rewrites)


def _healthy() -> tuple[Ledger, StoredPoints, StoredPoints]:
    ledger, _ = _ledger(100)
    production, shadow = _split(ledger)
    # the fleet's 7 lights straddle the 50% line, so both paths own some after the switch
    owners = {_owner(e.entity_id, e.time_fired_ns) for e in ledger if e.time_fired_ns >= SWITCH}
    assert owners == {"legacy", "new"}, owners
    return ledger, production, shadow


def test_a_healthy_split_is_clean() -> None:
    c = _account(*_healthy()).counts
    assert (c.lost, c.duplicated, c.unexpected, c.inconsistent) == (0, 0, 0, 0)


def test_a_point_written_by_the_path_that_did_not_own_it_is_named() -> None:
    ledger, production, shadow = _healthy()
    i = next(i for i in range(len(production)) if production.times_ns[i] >= SWITCH
             and production.writers[i] == "legacy")
    production.writers[i] = "new"
    result = _account(ledger, production, shadow)
    assert result.counts.inconsistent == 1
    finding = result.findings.inconsistent[0]
    assert finding.detail == "production: written by new, owned by legacy at 50%"
    assert finding.path == "new" and finding.entity_id == production.entity_ids[i]


def test_a_point_both_paths_wrote_is_a_double_write_though_influxdb_kept_one() -> None:
    ledger, production, shadow = _healthy()
    news = [i for i in range(len(production)) if production.writers[i] == "new"]
    for i in news[:3]:
        production.legacy_stamps[i] = production.times_ns[i] + 5  # legacy wrote it too
    result = _account(ledger, production, shadow)
    assert result.counts.duplicated == 3
    assert {f.detail for f in result.findings.duplicated} == {
        "written by legacy and by new (InfluxDB merged the two writes; new's was last)"}


def test_a_writers_own_count_of_rewrites_is_a_double_write_with_the_first_named() -> None:
    ledger, production, shadow = _healthy()
    first = [production.key(0), production.key(1)]
    result = _account(ledger, production, shadow,
                      rewrites={"new": Rewrites(count=40, first=tuple(first))})
    assert result.counts.duplicated == 40  # all of them counted, the first two named
    assert [(f.entity_id, f.path) for f in result.findings.duplicated] == [
        (k.entity_id, "new") for k in first]
    assert result.findings.duplicated[0].detail.startswith("written again by new")


def test_an_event_legacy_owned_while_shadow_was_on_must_be_in_shadow() -> None:
    ledger, production, shadow = _healthy()
    gone = shadow.key(4)
    for column in ("context_ids", "entity_ids", "states", "times_ns", "stored_at_ns", "writers",
                   "legacy_stamps", "new_stamps"):
        del getattr(shadow, column)[4]
    result = _account(ledger, production, shadow)
    assert result.counts.inconsistent == 1
    finding = result.findings.inconsistent[0]
    assert (finding.entity_id, finding.path) == (gone.entity_id, "shadow")
    assert finding.detail == "shadow: missing (owned by legacy at 0%, shadow on)"


def test_shadow_points_in_the_wrong_place_are_named() -> None:
    ledger, production, _ = _healthy()
    # the new path mirrors everything, its own events too, and keeps shadowing after "off"
    shadow, _ = _split(ledger)  # production's points, every one of them
    shadow.writers[:] = ["new"] * len(shadow)
    off = RoutingTable(entries=(*TABLE.entries, RoutingEntry(
        effective_from_ns=T0 + 90_000_000, new_percent=50, shadow=False)))
    result = account(ledger, production, shadow, phase_of=lambda t: "x", owner_of=_owner,
                     table=off)
    details = {f.detail for f in result.findings.inconsistent}
    assert "shadow: owned by new at 50%, so it belongs in production" in details
    assert "shadow: written while shadow was off" in details


def test_a_shadow_point_of_an_event_the_new_path_was_never_sent_is_named() -> None:
    ledger, production, shadow = _healthy()
    # c1 is legacy's connection; ingestion's (c2) never got the events
    ledger.record_connection("c1", "opened", T0, agent="ha-cutover legacy")
    ledger.record_connection("c2", "opened", T0, agent="ha-cutover ingestion")
    result = _account(ledger, production, shadow)
    assert result.counts.inconsistent == len(shadow)
    assert result.findings.inconsistent[0].detail == \
        "shadow: never sent to the new path (sent to c1 only)"


def test_without_a_table_the_routing_checks_stay_silent() -> None:
    ledger, production, shadow = _healthy()
    production.writers[:] = ["new"] * len(production)
    result = account(ledger, production, StoredPoints("shadow"), phase_of=lambda t: "x",
                     owner_of=_owner)
    assert result.counts.inconsistent == 0
