"""clock_skew and disk_full as scenario files write them, what the runner prepares for them,
and where the chaos vocabulary draws them."""

from __future__ import annotations

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from harness.chaos.schedule import (
    DEFAULT_VOCABULARY,
    EXTRA_VOCABULARY,
    draw_schedule,
    problems,
    scenario_for,
)
from harness.runner.preparation import host_preparation
from harness.scenario.faults import ClockSkew, DiskFull, YamlFault
from harness.scenario.host_faults import format_offset, parse_offset
from harness.scenario.model import Scenario

FAULT = TypeAdapter(YamlFault)


def scenario(faults: str, steps: str = "      - hold: 1m") -> Scenario:
    return Scenario.model_validate(yaml.safe_load(
        f"name: t\nfaults: {faults}\nphases:\n  - name: a\n    steps:\n{steps}"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("+30s", 30.0), ("-2m", -120.0), ("+1h", 3600.0), ("-250ms", -0.25), ("+1.5s", 1.5)])
def test_offsets_are_signed_durations(text: str, seconds: float) -> None:
    assert parse_offset(text) == seconds
    assert parse_offset(format_offset(seconds)) == seconds


@pytest.mark.parametrize(("raw", "says"), [
    ({"kind": "clock_skew", "service": "storage"},
     "a clock_skew fault needs offset: a signed duration like '+30s'"),
    ({"kind": "clock_skew", "service": "storage", "offset": "30s"},
     "offset '30s' has no sign: write '+30s' (clock ahead) or '-30s' (clock behind)"),
    ({"kind": "clock_skew", "service": "storage", "offset": 30},
     "offset 30 has no sign"),
    ({"kind": "clock_skew", "service": "storage", "offset": "+0s"}, "is zero"),
    ({"kind": "clock_skew", "service": "storage", "offset": "+soon"},
     "offset '+soon': expected a signed duration"),
    ({"kind": "clock_skew", "service": "storage", "offset": "+40d"}, "at most 30 days"),
    ({"kind": "clock_skew", "service": "influxdb", "offset": "+1s"}, "'admin'"),
    ({"kind": "disk_full", "service": "storage", "size": "1MB"}, "at least 16MiB"),
    ({"kind": "disk_full", "service": "legacy"}, "'ingestion', 'enrichment' or 'storage'"),
    ({"kind": "disk_full", "service": "storage", "latency": "1s"}, "Extra inputs"),
])
def test_bad_host_faults_say_what_to_write(raw: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        FAULT.validate_python(raw)
    assert says in str(err.value)


def test_a_dump_validates_again_with_its_sign() -> None:
    skew = FAULT.validate_python({"kind": "clock_skew", "service": ["storage", "enrichment"],
                                  "offset": "+2m", "for": "30s"})
    assert isinstance(skew, ClockSkew) and skew.offset == 120.0 and skew.for_ == 30.0
    dumped = skew.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["offset"] == "+2m"
    assert FAULT.validate_python(dumped) == skew
    assert skew.describe() == "clock_skew storage, enrichment (+2m)"
    disk = FAULT.validate_python({"kind": "disk_full", "service": "storage"})
    assert isinstance(disk, DiskFull) and disk.size == 64 * 2**20
    assert disk.describe() == "disk_full storage (64.0MiB disk)"


def test_only_the_targets_start_prepared() -> None:
    s = scenario("[{kind: clock_skew, service: ingestion, offset: -1m}, "
                 "{kind: disk_full, service: storage, size: 32MiB}]",
                 "      - fault: {kind: disk_full, service: [storage, enrichment], size: 48MiB}\n"
                 "      - fault: {kind: clock_skew, service: admin, offset: +3s}")
    prepared = host_preparation(s)
    assert prepared.skewable == {"ingestion", "admin"}
    assert prepared.small_disks == {"storage": 48 * 2**20, "enrichment": 48 * 2**20}
    plain = host_preparation(scenario("[{kind: kill, service: storage}]"))
    assert plain.skewable == frozenset() and plain.small_disks == {}


def test_the_chaos_vocabulary_draws_them_only_by_name() -> None:
    assert {"clock_skew", "disk_full"} <= set(EXTRA_VOCABULARY)
    assert not {"clock_skew", "disk_full"} & set(DEFAULT_VOCABULARY)
    schedule = draw_schedule(5, 60, vocabulary="clock_skew,disk_full", faults=6)
    kinds = {f.fault.kind for f in schedule.faults}
    assert kinds == {"clock_skew", "disk_full"}
    assert {f.fault.service[0] for f in schedule.faults} <= {"storage", "enrichment"}
    assert problems(schedule) == []
    # The chaos scenario re-validates every fault, a positive offset included.
    prepared = host_preparation(scenario_for(schedule))
    assert prepared.skewable | set(prepared.small_disks) == \
        {f.fault.service[0] for f in schedule.faults}
