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

import yaml
from pydantic import ValidationError

from harness.scenario.coherence import plan_findings
from harness.scenario.model import Scenario

__all__ = ["Problem", "check_file", "examine"]

Loc = tuple[str | int, ...]
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(path, None, "error", "no such scenario file")]
    except IsADirectoryError:
        return None, [Problem(path, None, "error", "a directory, not a scenario file")]
    except UnicodeDecodeError as exc:
        return None, [Problem(path, None, "error",
                              f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [Problem(path, None, "error", f"cannot be read: {exc.strerror}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(path, mark.line + 1 if mark else None, "error",
                              f"not valid YAML: {problem}")]
    except RecursionError:
        return None, [Problem(path, None, "error", "not valid YAML: nested too deeply")]
    if not isinstance(data, dict):
        return None, [Problem(path, 1, "error",
                              "expected a mapping with name, phases, ... (see `cutover schema`)")]
    lines: dict[Loc, int] = {}
    if node is not None:
        line_map(node, (), lines)
    return _validate(path, data, lines)


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


def line_map(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    """Line (1-based) of every mapping key and sequence item, by its path in the document."""
    stack: list[tuple[yaml.Node, Loc]] = [(node, path)]
    while stack:  # not recursive: a deeply nested file must not blow the stack
        node, path = stack.pop()
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value
                out.setdefault((*path, k), key.start_mark.line + 1)
                stack.append((value, (*path, k)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.setdefault((*path, i), item.start_mark.line + 1)
                stack.append((item, (*path, i)))


def line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of ``loc``, or of the longest part of it that the file has: pydantic's loc
    includes union tags and model names, a finding's path the long form of a shorthand
    (``traffic.steps.1`` for ``traffic: [10, 25]``); parts the file lacks are skipped."""
    path: Loc = ()
    best = lines.get((), 1)
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
            best = lines[candidate]
    return best


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
