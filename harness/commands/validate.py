"""``cutover validate``: check scenario files without running them (k6 ``inspect``, Chaos
Toolkit ``chaos validate``), every problem of every file at once, as compilers print them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from harness.scenario.validate import Problem, check_file

__all__ = ["summary", "validate_files"]

# The exit status when any file has an error: bad input, as everywhere in the CLI.
INVALID = 2


def validate_files(paths: Iterable[Path], say: Callable[[str], None]) -> int:
    """``say`` every problem (``path:line: severity: message``), then one summary line.
    0 when no file has an error (warnings are allowed), 2 otherwise."""
    checked: list[tuple[Path, list[Problem]]] = [(p, check_file(p)) for p in paths]
    for _, problems in checked:
        for problem in problems:
            say(str(problem))
    say(summary(checked))
    return INVALID if any(p.severity == "error" for _, ps in checked for p in ps) else 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def summary(checked: list[tuple[Path, list[Problem]]]) -> str:
    """``3 files checked: 1 error in 1 file, 2 warnings`` / ``3 files checked: no problems``."""
    errors = sum(p.severity == "error" for _, ps in checked for p in ps)
    warnings = sum(p.severity == "warning" for _, ps in checked for p in ps)
    broken = sum(any(p.severity == "error" for p in ps) for _, ps in checked)
    head = f"{_count(len(checked), 'file')} checked: "
    if not errors and not warnings:
        return head + "no problems"
    parts = []
    if errors:
        parts.append(f"{_count(errors, 'error')} in {_count(broken, 'file')}")
    else:
        parts.append("no errors")
    if warnings:
        parts.append(_count(warnings, "warning"))
    return head + ", ".join(parts)
