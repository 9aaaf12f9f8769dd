"""`cutover schema`'s JSON Schema describes scenario files as written, for editors' validators.

Checked the way an editor checks: the jsonschema package's Draft 2020-12 validator over the
YAML as PyYAML reads it. Shorthands the loader accepts must pass, mistakes it refuses must
not, and the two must agree on every case listed here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from harness.scenario.model import Scenario
from harness.scenario.schema import DIALECT, scenario_json_schema, unregistered_validators

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(scenario_json_schema())


def problems(validator: Draft202012Validator, document: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}"
            for e in validator.iter_errors(document)]


def test_the_schema_is_a_draft_2020_12_schema():
    schema = scenario_json_schema()
    assert schema["$schema"] == DIALECT
    Draft202012Validator.check_schema(schema)


def test_there_are_shipped_scenarios_to_check():
    assert len(SHIPPED) >= 20


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_validates(validator, path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert problems(validator, document) == []


def test_every_before_validator_has_its_forms_in_the_schema():
    # A shorthand added to a model without a widener would be refused by editors.
    assert unregistered_validators() == set()


def test_patterns_are_read_alike_by_python_and_editors():
    # Editors run ECMA-262 regular expressions, jsonschema runs Python's re: named groups,
    # inline flags and \A/\Z are spelt differently or missing in one of them.
    patterns: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(scenario_json_schema())
    assert patterns
    for pattern in patterns:
        re.compile(pattern)
        assert not re.search(r"\(\?[P<iamsx#]|\\[AZz]", pattern), pattern
    node = shutil.which("node")
    if node is None:
        return
    # Compiled as ajv (what editors' YAML support runs) compiles them: unicode mode, the
    # strict one, where a needless escape is an error.
    script = ("const ps = JSON.parse(require('fs').readFileSync(0, 'utf8')); const bad = [];"
              "for (const p of ps) { try { new RegExp(p, 'u'); } catch (e) { bad.push(p); } }"
              "console.log(JSON.stringify(bad));")
    result = subprocess.run([node, "-e", script], input=json.dumps(patterns), text=True,
                            capture_output=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


BASE = """
name: t
phases:
  - name: p
    steps:
      - traffic: [50]
"""


def document(extra: str) -> dict[str, Any]:
    doc = yaml.safe_load(BASE)
    doc.update(yaml.safe_load(extra))
    return doc


def steps(*items: str) -> str:
    return "phases:\n  - name: p\n    steps:\n" + "".join(f"      - {i}\n" for i in items)


# Each is accepted by the loader and must be by the schema.
ACCEPTED = {
    "load rate": "load: 50/s",
    "load per minute": "load: 1200/min",
    "load ramp text": "load: 'ramp:10/s..200/s:60'",
    "load burst text": "load: 'burst:5000,then=20/s'",
    "load mapping without kind": "load: {rate: 50, duration: 60}",
    "load mapping with kind": "load: {kind: soak, rate: 50/s, duration: 60, wobble: 0.1}",
    "load step profile": "load: {kind: step, steps: [{rate: 10/s, duration: 30}]}",
    "slos as text": "slos: ['p(99.9) < 1s', 'throughput >= 10/s', 'availability >= 99.9%']",
    "triggers as text": "triggers: ['error_rate > 1%', loss, inconsistent]",
    "trigger mappings": ("triggers: [{service_unavailable: [ingestion, storage]},"
                         " {service_unavailable: all, for: 5s}, {error_rate: '> 2%', window: 30s},"
                         " {name: perf_drop, threshold: 'perf_drop > 20%'}]"),
    "durations and sizes": steps(
        "hold: 20m", "hold: 30", "hold: 250ms",
        "fault: {kind: disk_full, service: storage, size: 32MiB, for: 12m}"),
    "service steps": steps("start: all", "start: storage", "stop: [legacy]", "kill: ingestion",
                           "wait_healthy: new", "wait_healthy: [storage]\n        timeout: 2m"),
    # PyYAML reads `on` as true, YAML 1.2 editors as the text 'on'
    "shadow on and off": steps("shadow: on", "shadow: off", "shadow: 'on'", "shadow: 'off'",
                               "shadow: false"),
    "traffic forms": steps("traffic: 50", "traffic: [10, 50]",
                           "traffic: {steps: [100], hold: 1m, gate: ['p(95) < 100ms']}",
                           "traffic: [75]\n        gate: ['error_rate < 1%']"),
    "check forms": steps("check: loss", "check: [consistency, slo]"),
    "load and rollback steps": steps("load: 'burst:100'", "load: {rate: 10}", "rollback:",
                                     "rollback: gate failed"),
    "faults in steps": steps(
        "fault: {kind: clock_skew, service: [ingestion], offset: -2m}",
        "fault: {kind: clock_skew, service: storage, offset: +30s, for: 1m}",
        "fault: {kind: latency, hop: enrichment-storage, latency: 200ms, jitter: 20ms}",
        "fault: {kind: ha_restart, downtime: 5s, at: 1m}",
        "fault: {kind: rogue_writer, points: 3}"),
    "normalised steps": steps("{kind: hold, duration: 5m}", "{kind: start, services: [admin]}"),
    "faults on the clock and on a step": (
        "faults: [{kind: kill, service: ingestion, during: traffic 50},"
        " {kind: weather_errors, error_rate: 0.5, status: 502, at: 10s, for: 1m}]"),
    "fleet and expectations": ("fleet: {entities: 100, seed: 3}\n"
                               "triggers: [loss]\n"
                               "expect: {verdict: fail, rollback: triggered, reason: loss}"),
}

# Each is refused by the loader and must be by the schema.
REFUSED = {
    "unknown top-level key": "nmae: typo",
    "load: fast": "load: fast",
    "load as a bare number": "load: 50",
    "load of an unknown kind": "load: 'rmap:10/s..20/s:60'",
    # a mapping without kind is a constant load: a ramp must say so
    "a ramp without its kind": "load: {start_rate: 10, end_rate: 20, duration: 60}",
    "a negative duration": steps("hold: -5"),
    "fault kind nonsense": steps("fault: {kind: nonsense, service: storage}"),
    "scenario fault kind nonsense": "faults: [{kind: nonsense}]",
    "a step that is a bare number": steps("5"),
    "a step of unknown kind": steps("sleep: 5m"),
    "two steps in one item": steps("hold: 1m\n        traffic: [50]"),
    "a duration that is not one": steps("hold: soon"),
    "an unknown service": steps("start: everything"),
    "shadow maybe": steps("shadow: maybe"),
    "a fault setting beside the fault": steps("fault: {kind: kill, service: storage}\n"
                                              "        for: 1m"),
    "an offset without a sign": steps("fault: {kind: clock_skew, service: storage, offset: 30s}"),
    "a fault on an unknown hop": steps("fault: {kind: latency, hop: nowhere, latency: 1s}"),
    "a threshold that is not one": "slos: ['loss = 0']",
    "a trigger that is not one": "triggers: ['p(95) > 1s']",
    "a trigger without a space": "triggers: ['error_rate>1%']",
    "an unknown fleet key": "fleet: {entitys: 10}",
    "an unknown runtime": "runtimes: [k8s]",
    "a wrong type": "time_scale: fast",
    "no phases": "phases: []",
}


def loads(doc: dict[str, Any]) -> bool:
    try:
        Scenario.model_validate(doc)
    except (ValidationError, ValueError):
        return False
    return True


@pytest.mark.parametrize("extra", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_shorthands_the_loader_accepts_validate(validator, extra):
    doc = document(extra)
    assert loads(doc), "the loader refuses this case: fix the case"
    assert problems(validator, doc) == []


@pytest.mark.parametrize("extra", REFUSED.values(), ids=REFUSED.keys())
def test_mistakes_the_loader_refuses_are_refused(validator, extra):
    doc = document(extra)
    assert not loads(doc), "the loader accepts this case: fix the case"
    assert problems(validator, doc) != []


def test_a_document_that_is_not_a_mapping_is_refused(validator):
    assert problems(validator, ["name: t"]) != []
    assert problems(validator, {}) != []  # name and phases are required
