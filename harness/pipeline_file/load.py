"""Read a pipeline file; every error names the file, the line and what to write instead."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from harness.errors import PipelineFileError
from harness.scenario.validate import describe, line_map, line_of

from .contract import ROLE_SETTINGS
from .model import PipelineSpec

__all__ = ["REFERENCE", "load_pipeline", "reference_pipeline"]

#: the shipped services' file: the default of every run
REFERENCE = Path(__file__).with_name("reference.yaml")


def load_pipeline(path: Path | str) -> PipelineSpec:
    """The pipeline in ``path``; PipelineFileError with every error (``file:line: what``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineFileError(f"{path}: no such pipeline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineFileError(f"{path}: cannot be read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PipelineFileError(f"{where}: not valid YAML: "
                                f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise PipelineFileError(f"{path}:1: expected a mapping with contract, name and roles "
                                f"(see {REFERENCE})")
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        line_map(node, (), lines)
    try:
        spec = PipelineSpec.model_validate({**data, "source": path.resolve()})
    except ValidationError as exc:
        raise PipelineFileError("\n".join(
            f"{path}:{line_of(tuple(e['loc']), lines)}: " + describe(e).replace(
                "`cutover schema` lists the keys", f"{REFERENCE.name} and CONTRACT.md show them")
            for e in exc.errors())) from None
    problems = []
    given = ROLE_SETTINGS
    for role, spec_role in spec.roles.items():
        for name in spec_role.settings:
            if name not in given[role]:
                problems.append(
                    f"{path}:{line_of(('roles', role, 'settings', name), lines)}: {role} is "
                    f"never given {name}; it is given {', '.join(sorted(given[role]))}")
    if problems:
        raise PipelineFileError("\n".join(problems))
    return spec


@cache
def reference_pipeline() -> PipelineSpec:
    return load_pipeline(REFERENCE)
