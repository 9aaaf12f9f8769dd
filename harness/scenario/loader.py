"""Load scenario files; every error names the file, the line and what is expected.

The checking is :func:`harness.scenario.validate.examine`'s, the same ``cutover validate``
runs, so a run refuses a file with the lines validate names. Warnings do not stop a run:
``cutover validate`` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.errors import ScenarioError

from .model import Scenario
from .validate import examine


def load_scenario(path: Path | str) -> Scenario:
    """The scenario in ``path``; ScenarioError with every error (``file:line: what``)."""
    path = Path(path)
    scenario, problems = examine(path)
    errors = [p for p in problems if p.severity == "error"]
    if scenario is None or errors:
        raise ScenarioError("\n".join(
            f"{p.path}:{p.line}: {p.message}" if p.line is not None else f"{p.path}: {p.message}"
            for p in errors))
    return scenario


def load_scenarios(paths: Iterable[Path | str]) -> list[Scenario]:
    """Load every file, reporting all the broken ones together."""
    loaded, problems = [], []
    for p in paths:
        try:
            loaded.append(load_scenario(p))
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError("\n".join(problems))
    return loaded
