"""Scenarios written inline for the model's tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from harness.scenario import load_scenario
from harness.scenario.model import Scenario
from simulators.des.model import Model, SimOptions, simulate
from simulators.des.outcome import Outcome

ALL = "[influxdb, admin, legacy, weather, storage, enrichment, ingestion]"


def scenario(tmp_path: Path, body: str, name: str = "t") -> Scenario:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body).strip() + "\n", encoding="utf-8")
    return load_scenario(path)


def run(sc: Scenario, **options: Any) -> Outcome:
    return simulate(sc, SimOptions(**options))


def model(sc: Scenario, **options: Any) -> Model:
    return Model(sc, SimOptions(**options))
