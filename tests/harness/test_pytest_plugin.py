"""The pytest plugin, driven through pytester: item ids, selection, failure messages, JUnit."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

QUICK = """\
name: {name}
tags: [{tags}]
time_scale: 0.01
load: 40/s
fleet: {{entities: 30}}
triggers: [error_rate > 1%]
phases:
  - name: only
    steps:
      - start: [influxdb, admin, legacy, weather, storage, enrichment, ingestion]
      - wait_healthy: all
      - shadow: on
      - traffic: {{steps: [50], hold: 3m}}
expect: {expect}
"""


def _project(pytester: pytest.Pytester, **files: str) -> None:
    scenarios = pytester.mkdir("scenarios")
    for name, text in files.items():
        (scenarios / f"{name}.yaml").write_text(text)


def test_scenario_files_become_items_with_scenario_in_their_id(pytester: pytest.Pytester):
    _project(pytester,
             a=QUICK.format(name="alpha", tags="rollback", expect="{verdict: pass}"),
             b=QUICK.format(name="beta", tags="load", expect="{verdict: pass}"))
    result = pytester.runpytest("--collect-only", "-q", "-k", "scenario and rollback")
    result.stdout.fnmatch_lines(["scenarios/a.yaml::scenario[[]alpha[]]"])
    assert "beta" not in result.stdout.str()


def test_a_broken_scenario_is_a_collection_error_naming_the_line(pytester: pytest.Pytester):
    _project(pytester, bad="name: bad\nphases:\n  - name: p\n    steps:\n      - hold: later\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*bad.yaml:5: phases.0.steps.0.hold.duration*expected a "
                                 "duration*"])
    assert result.ret != 0


@pytest.mark.slow
def test_a_failing_scenario_reports_its_verdict_and_links_its_report(pytester: pytest.Pytester,
                                                                      tmp_path: Path):
    # It expects a rollback that a healthy pipeline never triggers: the verdict must fail,
    # and say so in the item's message.
    _project(pytester, neg=QUICK.format(
        name="expects_rollback", tags="negative",
        expect="{verdict: pass, rollback: triggered, reason: error_rate}"))
    junit, html = tmp_path / "junit.xml", tmp_path / "pytest.html"
    result = pytester.runpytest("-k", "scenario", "--report-dir", str(tmp_path / "reports"),
                                f"--junitxml={junit}", f"--html={html}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED: a rollback by error_rate was expected but no "
                                 "trigger fired*", "*report: *report.html*"])
    xml = junit.read_text()
    assert 'name="report"' in xml and "report.html" in xml
    # pytest-html links the item to the scenario's own report
    assert "col-links__extra url" in html.read_text()
