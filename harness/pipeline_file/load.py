"""Read a pipeline file; every error names the file, the line and what to write instead."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from harness.errors import PipelineFileError
from harness.scenario.validate import describe
from harness.yaml_source import UnreadableYaml, line_of, read_mapping

from .contract import ROLE_SETTINGS
from .model import PipelineSpec

__all__ = ["REFERENCE", "load_pipeline", "reference_pipeline"]

#: the shipped services' file: the default of every run
REFERENCE = Path(__file__).with_name("reference.yaml")


def load_pipeline(path: Path | str) -> PipelineSpec:
    """The pipeline in ``path``; PipelineFileError with every error (``file:line: what``)."""
    path = Path(path)
    try:
        source = read_mapping(path, what="pipeline file", expected="a mapping with contract, "
                              f"name and roles (see {REFERENCE})")
    except UnreadableYaml as exc:
        where = f"{path}:{exc.line}" if exc.line is not None else str(path)
        raise PipelineFileError(f"{where}: {exc.message}") from None
    data, lines = source.data, source.lines
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
