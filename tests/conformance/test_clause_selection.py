"""``cutover conformance --clause ID``: one clause while a team fixes it; an id that names no
clause is refused before anything starts, with the ids there are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.conformance.clauses import CLAUSES, select_clauses
from harness.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]


def test_no_id_means_every_clause_in_run_order() -> None:
    assert list(select_clauses(())) == list(CLAUSES)


def test_ids_are_taken_in_any_case_and_run_in_the_contracts_order() -> None:
    # C4 (the outage) runs last whatever order they are named in: it stops InfluxDB.
    assert list(select_clauses(["c4", " C3 "])) == ["C3", "C4"]
    assert select_clauses(["C4"]) == {"C4": CLAUSES["C4"]}


def test_an_unknown_id_is_refused_with_the_ids_there_are() -> None:
    with pytest.raises(InvalidInput) as caught:
        select_clauses(["C4", "C99", "health"])
    message = str(caught.value)
    assert "C99" in message and "HEALTH" in message
    assert all(i in message for i in CLAUSES)


def test_the_command_refuses_it_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "conformance", "--clause", "C99",
         "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cutover conformance: "), result.stderr
    assert "C99" in lines[0] and "C4" in lines[0]
    assert not (tmp_path / "reports").exists()
