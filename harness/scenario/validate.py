"""Check a scenario file without running it: every error at once, and warnings for plans
that run but probably not as meant (``cutover validate``).

Every problem names the file and the line of the key it is about. The loader
(harness/scenario/loader.py) goes through :func:`examine` too, so ``cutover run`` names the
same lines as ``cutover validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from harness.scenario.coherence import plan_findings
from harness.scenario.model import Scenario
from harness.yaml_source import Loc, UnreadableYaml, line_of, read_mapping

__all__ = ["Problem", "check_file", "examine"]

Severity = Literal["error", "warning"]

# Keys whose value the plan-wide checks can do without: when only these are broken, the plan
# is checked with their defaults, so a bad fleet does not hide a fault tied to a traffic step
# that never comes.
_SIDE_KEYS = ("name", "description", "tags", "runtimes", "fleet", "load", "slos", "expect")
_LONGEST_SHOWN = 60  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.severity}: {self.message}"


def check_file(path: Path) -> list[Problem]:
    """Every error and warning of the scenario file at ``path``, in line order (errors
    first on a line). Never raises for bad input: an unreadable file is a problem too."""
    return examine(Path(path))[1]


def examine(path: Path) -> tuple[Scenario | None, list[Problem]]:
    """The scenario (None when it has errors) and every problem of the file."""
    try:
        source = read_mapping(path, what="scenario file",
                              expected="a mapping with name, phases, ... (see `cutover schema`)")
    except UnreadableYaml as exc:
        return None, [Problem(path, exc.line, "error", exc.message)]
    return _validate(path, source.data, source.lines)


def _validate(path: Path, data: dict[str, Any],
              lines: dict[Loc, int]) -> tuple[Scenario | None, list[Problem]]:
    problems: list[Problem] = []
    plan: Scenario | None = None
    try:
        # With a findings list in the context the model keeps its plan-wide errors there
        # instead of raising the first: they are computed below, with lines.
        plan = Scenario.model_validate(data, context={"plan_findings": []})
    except ValidationError as exc:
        problems = [Problem(path, line_of(tuple(e["loc"]), lines), "error", describe(e))
                    for e in exc.errors()]
        plan = _plan_without(data, {e["loc"][0] for e in exc.errors() if e["loc"]})
    if plan is not None:
        def place(loc: Loc) -> str:
            return f"line {line_of(loc, lines)}"
        problems += [Problem(path, line_of(f.path, lines), f.severity, f.message)
                     for f in plan_findings(plan, place)]
    problems = list(dict.fromkeys(problems))  # one error can be reached by two routes
    problems.sort(key=lambda p: (p.line or 0, p.severity != "error"))
    broken = any(p.severity == "error" for p in problems)
    return (None if broken else plan), problems


def _plan_without(data: dict[str, Any], broken: set[Any]) -> Scenario | None:
    """The plan with its broken side keys at their defaults, if only side keys are broken."""
    if not broken or not broken <= set(_SIDE_KEYS):
        return None
    rest = {k: v for k, v in data.items() if k not in broken}
    if "name" in broken:
        rest["name"] = "unnamed"
    try:
        return Scenario.model_validate(rest, context={"plan_findings": []})
    except ValidationError:
        return None


# -- lines -------------------------------------------------------------------------------------


def describe(err: Any) -> str:
    """A pydantic error in the file's words: the dotted key, then what is wrong."""
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    # Leave out the parts of pydantic's path that name its own machinery, not the file's keys.
    where = ".".join(str(p) for p in err["loc"]
                     if not (isinstance(p, str) and (p[:1].isupper() or "[" in p
                                                     or p.startswith("function-"))))
    if err["type"] == "missing":
        return f"{where}: required, missing"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key (check its spelling; `cutover schema` lists the keys)"
    given = err.get("input")
    if isinstance(given, str | int | float | bool) and repr(given) not in msg:
        shown = repr(given)
        if len(shown) > _LONGEST_SHOWN:
            shown = shown[:_LONGEST_SHOWN - 3] + "..."
        msg = f"{msg} (got {shown})"
    return f"{where}: {msg}" if where else msg
