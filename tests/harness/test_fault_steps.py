"""The fault vocabulary of scenario files: every kind parses, bad input says what to do."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from harness.runner.run import needs_fault_proxy
from harness.scenario.faults import FAULT_KINDS, ToxicFault
from harness.scenario.model import FaultStep, Scenario


def scenario(steps: str, extra: str = "") -> Scenario:
    return Scenario.model_validate(yaml.safe_load(
        f"name: t\n{extra}\nphases:\n  - name: a\n    steps:\n{steps}"))


EXAMPLES = {
    "latency": "{kind: latency, hop: enrichment-storage, latency: 200ms, jitter: 20ms}",
    "bandwidth": "{kind: bandwidth, hop: storage-influxdb, rate: 10}",
    "slow_close": "{kind: slow_close, hop: ha-ingestion, delay: 1s}",
    "timeout": "{kind: timeout, hop: ingestion-enrichment, timeout: 2s}",
    "reset_peer": "{kind: reset_peer, hop: ingestion-enrichment}",
    "slicer": "{kind: slicer, hop: ha-legacy, average_size: 16, size_variation: 4}",
    "limit_data": "{kind: limit_data, hop: legacy-influxdb, bytes: 1000}",
    "down": "{kind: down, hop: enrichment-weather, for: 10s}",
    "kill": "{kind: kill, service: storage, for: 10s}",
    "stop": "{kind: stop, service: [storage, enrichment]}",
    "pause": "{kind: pause, service: enrichment, at: 5s, for: 3s}",
    "restart": "{kind: restart, service: ingestion}",
    "disconnect": "{kind: disconnect, service: storage, for: 30s}",
    "ha_drop": "{kind: ha_drop, abort: true}",
    "ha_restart": "{kind: ha_restart, downtime: 2s}",
    "ha_stall": "{kind: ha_stall, for: 3s}",
    "ha_revoke_token": "{kind: ha_revoke_token, for: 10s}",
    "ha_malformed": "{kind: ha_malformed, frame: truncated}",
    "ha_refuse": "{kind: ha_refuse, for: 5s}",
    "weather_slow": "{kind: weather_slow, delay: 2s}",
    "weather_errors": "{kind: weather_errors, status: 503, error_rate: 0.5}",
    "weather_down": "{kind: weather_down, for: 1m}",
    "influxdb_outage": "{kind: influxdb_outage, for: 10s}",
    "rogue_writer": "{kind: rogue_writer, points: 3}",
    "clock_skew": "{kind: clock_skew, service: storage, offset: -2m, for: 30s}",
    "disk_full": "{kind: disk_full, service: [storage, enrichment], size: 32MiB, for: 1m}",
}


def test_every_fault_kind_has_an_example_here() -> None:
    assert set(EXAMPLES) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_parses_as_a_step(kind: str) -> None:
    s = scenario(f"      - fault: {EXAMPLES[kind]}")
    step = s.phases[0].steps[0]
    assert isinstance(step, FaultStep) and step.fault.kind == kind
    assert step.fault.describe().startswith(kind)


def test_timing_is_plan_time() -> None:
    fault = scenario("      - fault: {kind: kill, service: storage, at: 1m, for: 30s}"
                     ).phases[0].steps[0].fault
    assert (fault.at, fault.for_) == (60.0, 30.0)


def test_toxic_attributes_in_toxiproxy_units() -> None:
    fault = ToxicFault(kind="latency", hop="enrichment-storage", latency=0.2, jitter=0.02)
    assert fault.attributes() == {"latency": 200, "jitter": 20}
    slicer = ToxicFault(kind="slicer", hop="ha-legacy", average_size=16, delay=0.001)
    assert slicer.attributes() == {"average_size": 16, "size_variation": 0, "delay": 1000}


@pytest.mark.parametrize(("text", "says"), [
    ("{kind: latency, hop: enrichment-storage}", "needs latency (e.g. latency: 200ms)"),
    ("{kind: bandwidth, hop: ha-legacy, rate: 5, latency: 3s}", "remove ['latency']"),
    ("{kind: nope}", "unknown fault kind 'nope': expected one of latency"),
    ("{service: storage}", "a fault needs a kind"),
    ("{kind: down, hop: storage-enrichment}", "'enrichment-storage'"),
    ("{kind: kill, service: nginx}", "'storage'"),
])
def test_bad_faults_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        scenario(f"      - fault: {text}")
    assert says in str(err.value)


def test_settings_outside_the_fault_mapping_are_refused() -> None:
    with pytest.raises(ValidationError, match="inside its mapping"):
        scenario("      - fault: {kind: kill, service: storage}\n        for: 10s")


def test_during_must_name_a_traffic_step_of_the_plan() -> None:
    ok = scenario("      - traffic: {steps: [10, 50], hold: 1m}",
                  "faults: [{kind: pause, service: storage, during: traffic 50}]")
    assert ok.faults[0].during == "traffic 50"
    with pytest.raises(ValidationError, match="no traffic step goes to 75%"):
        scenario("      - traffic: {steps: [10, 50], hold: 1m}",
                 "faults: [{kind: pause, service: storage, during: traffic 75}]")
    with pytest.raises(ValidationError, match="belongs to the scenario's faults"):
        scenario("      - traffic: {steps: [50], hold: 1m}\n"
                 "      - fault: {kind: pause, service: storage, during: traffic 50}")


def test_the_fault_proxy_is_started_only_when_a_fault_needs_it() -> None:
    plain = scenario("      - fault: {kind: kill, service: storage}")
    toxic = scenario("      - fault: {kind: latency, hop: enrichment-storage, latency: 5ms}")
    partition = scenario("      - fault: {kind: disconnect, service: storage}")
    assert not needs_fault_proxy(plain, "process")
    assert needs_fault_proxy(toxic, "process") and needs_fault_proxy(toxic, "containers")
    assert needs_fault_proxy(partition, "process")
    assert not needs_fault_proxy(partition, "containers")  # docker disconnects it
