"""Load scenario files; every error names the file, the line and what is expected."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .model import Scenario

Loc = tuple[str | int, ...]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``str()`` is ready to show a person."""


def _line_map(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    """Line (1-based) of every mapping key and sequence item, by its path in the document."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            _line_map(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_map(item, (*path, i), out)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    # pydantic's loc includes union tags and model names that are not in the file: keep the
    # longest prefix of the path that the file has.
    path: Loc = ()
    best = lines.get((), 1)
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
            best = lines[candidate]
    return best


def _describe(err: dict[str, Any]) -> str:
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
        msg = f"{msg} (got {given!r})"
    return f"{where}: {msg}" if where else msg


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{path}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: expected a mapping with name, phases, ... "
                            f"(see `cutover schema`)")
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [f"{path}:{_line_of(tuple(e['loc']), lines)}: {_describe(e)}"
                    for e in exc.errors()]
        raise ScenarioError("\n".join(dict.fromkeys(problems))) from None


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
