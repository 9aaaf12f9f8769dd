"""Reading a YAML file a person wrote (a scenario, a pipeline file): the mapping, and the line
of every key and item, so that every error can say ``file:line: what``.

One reader for every such file, so they fail alike: a missing file, a directory, bytes that
are not UTF-8, YAML that does not parse (with its line), and a document that is not a mapping
are each one sentence, raised as ``UnreadableYaml`` for the caller to phrase as its own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UnreadableYaml

__all__ = ["Loc", "UnreadableYaml", "YamlSource", "line_map", "line_of", "read_mapping"]

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class YamlSource:
    data: dict[str, Any]
    lines: dict[Loc, int]  # path in the document -> 1-based line


def read_mapping(path: Path, *, what: str, expected: str) -> YamlSource:
    """The mapping in ``path``. ``what`` names the file's kind ("scenario file"); ``expected``
    ends the sentence for a document that is not a mapping ("a mapping with name, ...")."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnreadableYaml(None, f"no such {what}") from None
    except IsADirectoryError:
        raise UnreadableYaml(None, f"a directory, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise UnreadableYaml(None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UnreadableYaml(None, f"cannot be read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UnreadableYaml(mark.line + 1 if mark else None,
                             f"not valid YAML: {problem}") from None
    except RecursionError:
        raise UnreadableYaml(None, "not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise UnreadableYaml(1, f"expected {expected}")
    lines: dict[Loc, int] = {}
    if node is not None:
        line_map(node, (), lines)
    return YamlSource(data, lines)


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
