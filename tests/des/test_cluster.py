"""Monte Carlo on a Dask cluster: the same montecarlo.json as one process for the same seed
(only ``executed`` says where it ran), on a local cluster (--workers) or an existing one
(--scheduler); misuse exits 2 and says what to write."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from harness.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
ARGS = [str(SCENARIOS / "rollback_on_error_rate.yaml"), "--time-scale", "0.02", "--runs", "6",
        "--seed", "10"]


def _summary(tmp_path: Path, name: str, extra: list[str]) -> dict[str, object]:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", *ARGS, *extra, "--report-dir", str(tmp_path / name)])
    assert exit_.value.code in (0, None)
    (out,) = (tmp_path / name).iterdir()
    summary: dict[str, object] = json.loads((out / "montecarlo.json").read_text())
    return summary


def test_a_local_cluster_and_an_existing_one_write_what_one_process_writes(
        tmp_path: Path) -> None:
    from distributed import LocalCluster

    alone = _summary(tmp_path, "alone", [])
    local = _summary(tmp_path, "local", ["--workers", "2"])
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        remote = _summary(tmp_path, "remote", ["--scheduler", cluster.scheduler_address])
    assert alone.pop("executed") == {"workers": 1, "scheduler": None}
    assert local.pop("executed") == {"workers": 2, "scheduler": None}
    assert remote.pop("executed")["scheduler"] == cluster.scheduler_address  # type: ignore[index]
    assert alone == local == remote
    # The seeds came from the run index, not from which worker finished first.
    assert [r["seed"] for r in alone["per_run"]] == list(range(10, 16))  # type: ignore[index]


@pytest.mark.parametrize(("extra", "says"), [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
])
def test_both_places_at_once_exit_2(tmp_path: Path, extra: list[str], says: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", *ARGS, *extra, "--report-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_cluster_without_runs_exits_2(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", str(SCENARIOS / "phase1_foundation.yaml"), "--workers", "2",
              "--report-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "add --runs N" in capsys.readouterr().err


def test_without_dask_it_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("harness.commands.simulate._has_dask", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", *ARGS, "--workers", "2", "--report-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "pip install 'ha-cutover[cluster]'" in capsys.readouterr().err
