"""pytest plugin (entry point ``pytest11``): every scenario file becomes a test item.

``pytest -k scenario`` runs them all, ``pytest -k "scenario and rollback"`` a subset; the
item id is ``scenarios/<file>.yaml::scenario[<name>]``. A failing item's message is the
verdict summary with its reasons; each item records the path of its HTML report (a link in
pytest-html, a property in JUnit XML).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.model import Scenario


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cutover", "ha-cutover scenarios")
    group.addoption("--runtime", default="auto", choices=("auto", "process", "containers"),
                    help="where scenario items run the pipeline (default: auto)")
    group.addoption("--time-scale", type=float, default=None,
                    help="multiply the scenarios' plan durations by this (default: each "
                         "scenario's own time_scale)")
    group.addoption("--report-dir", default="reports",
                    help="where scenario runs write their reports (default: reports/)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a scenario file run end to end")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        item = ScenarioItem.from_parent(self, name=f"scenario[{scenario.name}]",
                                        scenario=scenario)
        item.add_marker("scenario")
        item.add_marker("slow")
        # Tags select like names: `-k "scenario and rollback"`.
        item.extra_keyword_matches.update(scenario.tags)
        yield item


class ScenarioFailed(Exception):
    def __init__(self, summary: str, reasons: list[str], report: Path) -> None:
        super().__init__(summary)
        self.summary, self.reasons, self.report = summary, reasons, report


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from harness.runner.run import run_scenario
        from harness.runtime.select import RuntimeUnavailable, choose_runtime

        opt = self.config.getoption
        try:
            runtime = choose_runtime(opt("--runtime"), self.scenario)
        except RuntimeUnavailable as exc:
            pytest.skip(str(exc))
        result, run_dir = asyncio.run(run_scenario(
            self.scenario, source=self.path, runtime=runtime,
            time_scale=opt("--time-scale"), report_dir=Path(opt("--report-dir"))))
        report = run_dir / "report.html"
        self.user_properties.append(("report", str(report)))
        if not result.verdict.passed:
            raise ScenarioFailed(result.verdict.summary, result.verdict.reasons, report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            err = excinfo.value
            lines = [err.summary, *[f"  - {r}" for r in err.reasons[1:]], f"report: {err.report}"]
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.scenario.name}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    if call.when != "call" or not isinstance(item, ScenarioItem):
        return
    report = outcome.get_result()
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras  # type: ignore[import-not-found]

        for name, value in item.user_properties:
            if name == "report":
                report.extras = [*getattr(report, "extras", []),
                                 extras.url(Path(value).resolve().as_uri(), name="report")]
