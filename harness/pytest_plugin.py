"""pytest plugin (entry point ``pytest11``): every scenario file becomes a test item.

``pytest -k scenario`` runs them all, ``pytest -k "scenario and rollback"`` a subset; the
item id is ``scenarios/<file>.yaml::scenario[<name>]``. A failing item's message is the
verdict summary with its reasons; each item records the path of its HTML report (a link in
pytest-html, a property in JUnit XML).

Which files are scenarios: by default ``*.yaml``/``*.yml`` directly in a folder named
``scenarios/`` (anywhere) and any ``*.scenario.yaml``/``*.scenario.yml``. The ini option
``cutover_scenarios`` (globs relative to the rootdir; ``**/`` spans folders) replaces that
list, e.g. in pyproject.toml ``cutover_scenarios = ["qa/cutover/*.yaml"]``. Other YAML (CI
configs, docker-compose files) is never collected.

The ``scenario`` and ``slow`` markers the items carry are registered here, so
``--strict-markers`` holds in any repository that installs the plugin.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.model import Scenario

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

#: today's rule (YAML directly in any folder named scenarios/) plus an explicit file suffix
DEFAULT_SCENARIO_GLOBS = ("**/scenarios/*.yaml", "**/scenarios/*.yml",
                          "**/*.scenario.yaml", "**/*.scenario.yml")

#: the markers every scenario item carries, registered so --strict-markers accepts them
MARKERS = {
    "scenario": "scenario: a scenario file run end to end (ha-cutover)",
    "slow": "slow: takes more than a few seconds (every ha-cutover scenario item is slow)",
}

_GLOBS_KEY = pytest.StashKey[tuple[re.Pattern[str], ...]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cutover", "ha-cutover scenarios")
    group.addoption("--runtime", default="auto", choices=("auto", "process", "containers"),
                    help="where scenario items run the pipeline (default: auto)")
    group.addoption("--time-scale", type=float, default=None,
                    help="multiply the scenarios' plan durations by this (default: each "
                         "scenario's own time_scale)")
    group.addoption("--report-dir", default="reports",
                    help="where scenario runs write their reports (default: reports/)")
    group.addoption("--pipeline", default=None, metavar="FILE",
                    help="a pipeline file (CONTRACT.md): the services scenario items drive "
                         "(default: the shipped ones)")
    parser.addini("cutover_scenarios", type="linelist", default=list(DEFAULT_SCENARIO_GLOBS),
                  help="globs (relative to the rootdir, **/ spans folders) of the scenario "
                       "files to collect; replaces the default: "
                       + " ".join(DEFAULT_SCENARIO_GLOBS))


def pytest_configure(config: pytest.Config) -> None:
    # A repository that already declares a marker keeps its own description; no duplicates.
    declared = {line.split(":", 1)[0].split("(", 1)[0].strip()
                for line in config.getini("markers")}
    for name, line in MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", line)
    config.stash[_GLOBS_KEY] = tuple(glob_regex(g) for g in config.getini("cutover_scenarios"))


def glob_regex(glob: str) -> re.Pattern[str]:
    """A path glob as a regex over a /-separated path: ``*`` and ``?`` stay within one
    folder, ``**/`` spans any number of them (fnmatch's ``*`` would cross ``/``). A leading
    ``**/`` also matches an absolute path, so a file outside the rootdir named on the command
    line is still found by the default globs."""
    out: list[str] = []
    i = 0
    glob = glob.strip().replace("\\", "/").removeprefix("./")
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("/?(?:[^/]+/)*" if i == 0 else "(?:[^/]+/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def is_scenario_file(file_path: Path, rootdir: Path, globs: Sequence[re.Pattern[str]]) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    # Relative globs name files under the rootdir; an absolute glob, or a leading **/, also
    # names a file by its absolute path (one outside the rootdir, given on the command line).
    paths = [file_path.as_posix()]
    if file_path.is_relative_to(rootdir):
        paths.append(file_path.relative_to(rootdir).as_posix())
    return any(g.fullmatch(p) for g in globs for p in paths)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    config = parent.config
    globs = config.stash[_GLOBS_KEY]
    if is_scenario_file(file_path, config.rootpath, globs):
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
        from harness.errors import PipelineFileError, RuntimeUnavailable
        from harness.pipeline_file import load_pipeline, reference_pipeline
        from harness.runner.fit import unfit
        from harness.runner.run import run_scenario
        from harness.runtime.select import choose_runtime

        opt = self.config.getoption
        try:
            pipeline = load_pipeline(opt("--pipeline")) if opt("--pipeline") \
                else reference_pipeline()
        except PipelineFileError as exc:
            raise pytest.UsageError(f"--pipeline: {exc}") from None
        if problems := unfit(self.scenario, pipeline):
            pytest.skip(f"not for pipeline {pipeline.name!r}: {'; '.join(problems)}")
        try:
            runtime = choose_runtime(opt("--runtime"), self.scenario)
        except RuntimeUnavailable as exc:
            pytest.skip(str(exc))
        result, run_dir = asyncio.run(run_scenario(
            self.scenario, source=self.path, runtime=runtime,
            time_scale=opt("--time-scale"), report_dir=Path(opt("--report-dir")),
            pipeline=pipeline))
        report = run_dir / "report.html"
        self.user_properties.append(("report", str(report)))
        if not result.verdict.passed:
            raise ScenarioFailed(result.verdict.summary, result.verdict.reasons, report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | TerminalRepr:  # noqa: ARG002 - pytest's hook
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
        from pytest_html import extras

        for name, value in item.user_properties:
            if name == "report":  # a str: runtest appends ("report", str(report))
                report.extras = [*getattr(report, "extras", []),
                                 extras.url(Path(cast(str, value)).resolve().as_uri(),
                                            name="report")]
