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


def test_strict_markers_accept_the_markers_scenario_items_carry(pytester: pytest.Pytester):
    # A fresh folder declares no markers of its own (no ini file), as another repository
    # that installs the plugin: `slow` and `scenario` must come from the plugin itself. A
    # subprocess, so nothing of this session's configuration leaks in.
    _project(pytester, a=QUICK.format(name="alpha", tags="x", expect="{verdict: pass}"))
    result = pytester.runpytest_subprocess("--strict-markers", "--collect-only", "-q",
                                           "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/a.yaml::scenario[[]alpha[]]"])
    assert "not found in `markers` configuration option" not in result.stdout.str()
    assert result.ret == 0
    markers = pytester.runpytest_subprocess("--markers", "-p", "no:cacheprovider")
    markers.stdout.fnmatch_lines(["@pytest.mark.scenario:*", "@pytest.mark.slow:*"])


def test_a_repository_marker_description_is_kept_and_not_repeated(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nmarkers =\n    slow: ours, not the plugin's\n")
    result = pytester.runpytest("--markers")
    assert result.stdout.str().count("@pytest.mark.slow:") == 1
    result.stdout.fnmatch_lines(["@pytest.mark.slow: ours, not the plugin's"])


# Not a scenario: if any of these were collected, loading it would be a collection error.
NOT_SCENARIOS = {
    ".github/workflows/ci.yml": "on: [push]\njobs: {test: {runs-on: ubuntu-latest}}\n",
    "docker-compose.yml": "services: {influxdb: {image: influxdb:1.8}}\n",
    "deploy/values.yaml": "replicas: 2\n",
    "qa/notes.yaml": "owner: qa\n",
}


def _write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = pytester.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_any_dot_scenario_yaml_file_is_collected_and_other_yaml_is_not(
        pytester: pytest.Pytester):
    _write(pytester, {
        **NOT_SCENARIOS,
        "qa/cutover/nightly.scenario.yaml": QUICK.format(name="nightly", tags="x",
                                                         expect="{verdict: pass}"),
        "scenarios/kept.yaml": QUICK.format(name="kept", tags="x", expect="{verdict: pass}"),
    })
    result = pytester.runpytest("--collect-only", "-q", "--strict-markers")
    result.stdout.fnmatch_lines(["qa/cutover/nightly.scenario.yaml::scenario[[]nightly[]]"])
    result.stdout.fnmatch_lines(["scenarios/kept.yaml::scenario[[]kept[]]"])  # as before
    result.assert_outcomes()  # no collection error: no other YAML was taken for a scenario
    assert result.ret == 0
    assert "2 tests collected" in result.stdout.str()


def test_the_cutover_scenarios_ini_option_names_where_scenarios_live(
        pytester: pytest.Pytester):
    _write(pytester, {
        **NOT_SCENARIOS,
        "qa/cutover/a.yaml": QUICK.format(name="in_qa", tags="x", expect="{verdict: pass}"),
        "qa/cutover/deep/b.yml": QUICK.format(name="deeper", tags="x", expect="{verdict: pass}"),
        # The option replaces the default globs: a scenarios/ folder of other YAML is left.
        "scenarios/k6-stages.yaml": "stages: [{duration: 30s, target: 20}]\n",
    })
    pytester.makeini("[pytest]\ncutover_scenarios =\n    qa/cutover/*.yaml\n"
                     "    qa/cutover/**/*.yml\n")
    result = pytester.runpytest("--collect-only", "-q", "--strict-markers")
    assert "Unknown config option" not in result.stdout.str()  # the plugin declares it
    result.stdout.fnmatch_lines(["qa/cutover/a.yaml::scenario[[]in_qa[]]"])
    result.stdout.fnmatch_lines(["qa/cutover/deep/b.yml::scenario[[]deeper[]]"])
    result.assert_outcomes()
    assert result.ret == 0
    assert "2 tests collected" in result.stdout.str()


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
