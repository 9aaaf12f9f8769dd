"""The layout's rules, checked statically: no import cycles, small files, pipeline/ stands alone.

Read from the source (the AST), not by importing, so a rule broken in a module no test imports
is still seen. A module reaching its own package's ``__init__`` is not a cycle: that is how a
package's public surface re-exports its parts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "simulators", "harness")
MAX_LINES = 450


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def modules(root: Path = ROOT) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join(parts)
            found[name] = Module(name, path, is_package)
    return found


def imported_names(module: Module) -> set[str]:
    """Every dotted name an import statement of the module could refer to."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph(found: dict[str, Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, module in found.items():
        edges = set()
        for target in imported_names(module):
            if target not in found or target == name:
                continue
            if found[target].is_package and name.startswith(target + "."):
                continue  # a part reaching its own package's public surface
            edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    """The check below is only worth what it can catch: plant a cycle and a re-export."""
    pkg = tmp_path / "harness" / "loop"
    pkg.mkdir(parents=True)
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "simulators").mkdir()
    (pkg / "__init__.py").write_text("from .a import A\n")
    (pkg / "a.py").write_text("from . import b\nA = 1\n")
    (pkg / "b.py").write_text("from harness.loop.a import A\nfrom harness.loop import A as B\n")
    graph = import_graph(modules(tmp_path))
    assert cycles(graph) == [["harness.loop.a", "harness.loop.b"]]
    (pkg / "b.py").write_text("from harness.loop import A\n")  # own package's surface only
    assert cycles(import_graph(modules(tmp_path))) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph(modules()))
    assert found == [], "import cycles (break them: state in its own module, pass parts in):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_no_source_file_over_the_limit() -> None:
    sizes = {m.path.relative_to(ROOT).as_posix(): len(m.path.read_text().splitlines())
             for m in modules().values()}
    over = sorted(((n, p) for p, n in sizes.items() if n > MAX_LINES), reverse=True)
    assert over == [], f"files over {MAX_LINES} lines (split them along their jobs): {over}"


@pytest.mark.parametrize("outsider", ["harness", "simulators", "tests"])
def test_the_pipeline_knows_nothing_of_the_harness(outsider: str) -> None:
    offenders = sorted(
        name for name, module in modules().items()
        if name.startswith("pipeline") and any(
            n == outsider or n.startswith(outsider + ".") for n in imported_names(module))
    )
    assert offenders == [], f"pipeline modules importing {outsider}: {offenders}"


def test_the_simulators_take_only_the_scenario_language_from_the_harness() -> None:
    """DESIGN.md: simulators/ may use the scenario language and its rules (harness/scenario/),
    so a rule is written once; the runner, runtimes, checks and reports stay the harness's."""
    offenders = sorted(
        (name, n) for name, module in modules().items() if name.startswith("simulators")
        for n in imported_names(module)
        if (n == "harness" or n.startswith("harness.")) and not (
            n == "harness.scenario" or n.startswith("harness.scenario."))
    )
    assert offenders == [], f"simulators importing the harness beyond harness.scenario: {offenders}"


# Exceptions that carry control flow, not an error to report: they stay beside their use.
CONTROL_FLOW = {"harness.chaos.shrink._Stop", "harness.runner.steps.RollbackTriggered",
                "harness.pytest_plugin.ScenarioFailed"}


def exception_classes(found: dict[str, Module]) -> set[str]:
    """Classes in harness/ whose bases are named like exceptions (``...Error``, ``Exception``)."""
    names = set()
    for name, module in found.items():
        if not name.startswith("harness"):
            continue
        for node in ast.walk(ast.parse(module.path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id == "Exception"))
                    or (isinstance(b, ast.Attribute) and b.attr.endswith("Error"))
                    for b in node.bases):
                names.add(f"{name}.{node.name}")
    return names


def test_the_harness_errors_are_one_hierarchy() -> None:
    from harness import errors

    outside = {n for n in exception_classes(modules()) if not n.startswith("harness.errors.")}
    assert outside == CONTROL_FLOW, (
        f"harness errors defined outside harness/errors.py: {sorted(outside - CONTROL_FLOW)}")
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.CutoverError), name
