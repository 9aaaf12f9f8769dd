"""``cutover list``: the scenario files, as a table for people or JSON for tools.

The name is what a person types next (``cutover run NAME``), so the table never cuts it, at
any width: the other columns wrap, and the description is cut to what fits. When even the
narrowest layout is wider than the terminal (or the 80 columns rich assumes in a CI log), the
table is printed wider than the terminal rather than shortening a name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.console import make_console
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.model import Scenario

__all__ = ["ScenarioEntry", "collect", "list_command", "scenario_table"]

_FRAME = 13  # four columns' borders (5) and padding (2 each)
_LEAST_DESCRIPTION = 12  # below it the start of a description says nothing
_ROOMY_DESCRIPTION = 40
_WRAP_AT = (16, 20)  # expects, tags: wrapped at these widths when the line is short


@dataclass(frozen=True)
class ScenarioEntry:
    """One scenario file as ``list`` shows it (and ``list --json`` writes it)."""

    name: str
    path: str
    description: str
    tags: list[str]
    phases: list[str]
    expects: str
    runtimes: list[str]

    @classmethod
    def of(cls, scenario: Scenario, path: Path) -> ScenarioEntry:
        e = scenario.expect
        expects = e.verdict + (f", rollback by {e.reason or 'any trigger'}"
                               if e.rollback == "triggered" else "")
        return cls(name=scenario.name, path=str(path),
                   description=" ".join(scenario.description.split()), tags=list(scenario.tags),
                   phases=[p.name for p in scenario.phases], expects=expects,
                   runtimes=list(scenario.runtimes))


def collect(directory: Path) -> tuple[list[ScenarioEntry], list[str]]:
    """The scenarios in ``directory``'s ``*.yaml`` files, and the errors of the broken ones."""
    entries, broken = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            entries.append(ScenarioEntry.of(load_scenario(path), path))
        except ScenarioError as exc:
            broken.append(str(exc))
    return entries, broken


def scenario_table(entries: list[ScenarioEntry], title: str, width: int) -> Table:
    """name, expects, tags, description, each column given its width here rather than left
    to rich, which shrinks even a no_wrap column, with an ellipsis, when the table is too wide:
    the name column is as wide as the longest name at any ``width``; expects and tags wrap;
    the description is cut to one line (the full text, phases and runtimes are in --json).
    The table is wider than ``width`` when even that does not fit."""
    name_w = max((len(e.name) for e in entries), default=4)
    expects = [e.expects for e in entries]
    tags = [", ".join(e.tags) for e in entries]
    room = width - _FRAME - name_w
    natural = [max(map(len, col), default=0) for col in (expects, tags)]
    if room - sum(natural) >= _ROOMY_DESCRIPTION:  # wide: nothing but the description wraps
        expects_w, tags_w = natural
    else:  # wrapped, as narrow as it takes to leave the description its least (or 8 each)
        expects_w, tags_w = (min(n, cap) for n, cap in zip(natural, _WRAP_AT, strict=True))
        while expects_w + tags_w > room - _LEAST_DESCRIPTION and max(expects_w, tags_w) > 8:
            if tags_w >= expects_w:
                tags_w -= 1
            else:
                expects_w -= 1
    table = Table(title=title)
    table.add_column("name", no_wrap=True, width=name_w)
    table.add_column("expects", width=max(expects_w, len("expects")), overflow="fold")
    table.add_column("tags", width=max(tags_w, len("tags")), overflow="fold")
    table.add_column("description", no_wrap=True, overflow="ellipsis",
                     width=max(_LEAST_DESCRIPTION, room - expects_w - tags_w))
    for e, x, t in zip(entries, expects, tags, strict=True):
        table.add_row(e.name, x, t, e.description)
    return table


def print_table(console: Console, table: Table) -> None:
    """The table at the console's width, or as wide as its columns when that is wider."""
    least = _FRAME + sum(c.width or 0 for c in table.columns)
    shown = console.width
    # print(width=) cannot go past the console's width: widen the console for the table
    console.width = max(shown, least)
    try:
        console.print(table)
    finally:
        console.width = shown


def list_command(directory: Path, *, as_json: bool = False, console: Console | None = None,
                 errors: Console | None = None) -> int:
    """0: every file loaded; 1: some are broken (each error printed); 2: no scenario files."""
    out = console or make_console()
    err = errors or make_console(stderr=True)
    entries, broken = collect(directory)
    if not entries and not broken:
        err.print(f"cutover list: no scenario files (*.yaml) in {directory}/", markup=False,
                  highlight=False)
        return 2
    if as_json:
        # print() not rich: the JSON must come out byte for byte (no markup, no wrapping)
        out.file.write(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
    else:
        print_table(out, scenario_table(entries, f"scenarios in {directory}/", out.width))
    for b in broken:
        err.print(b, style="red", markup=False, highlight=False)
    return 1 if broken else 0
