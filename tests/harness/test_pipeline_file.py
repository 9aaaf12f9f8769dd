"""Pipeline files (harness/pipeline_file/): how the harness is told which services to drive.

The defects these exist for: a rename that the harness does not apply (the service never
finds its setting), a wiring that gives a role a setting the contract does not list (a
pipeline file could not rename it), a plan without enrichment whose ingestion still points
at an enrichment that is not there, and a scenario that faults a service the plan lacks
(a fault on nothing, a run that passes without having tried)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import PipelineFileError, Unsupported
from harness.pipeline_file import load_pipeline, reference_pipeline
from harness.pipeline_file.contract import ROLE_SETTINGS
from harness.runner.fit import unfit
from harness.runtime.base import Wiring
from harness.runtime.process import ProcessRuntime
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
RENAMED = ROOT / "pipelines" / "renamed-no-enrichment.yaml"


def runtime(tmp_path: Path, pipeline_file: Path | None = None,
            fault_proxy: bool = False) -> ProcessRuntime:
    pipeline = load_pipeline(pipeline_file) if pipeline_file else reference_pipeline()
    return ProcessRuntime(Wiring(tmp_path, "ws://127.0.0.1:1/api/websocket", "t", "a", "k",
                                 pipeline=pipeline, fault_proxy=fault_proxy))


def test_the_reference_file_is_the_shipped_services(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    for role in ROLE_SETTINGS:
        assert rt._services[role].argv[1:] == ["-m", f"pipeline.{role}"]  # type: ignore[index]


def test_each_role_is_given_exactly_the_settings_a_file_may_rename(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    for role, names in ROLE_SETTINGS.items():
        given = {k for k in rt._services[role].env if k.startswith("CUTOVER_")}  # type: ignore[index]
        assert given == names, role


def test_renamed_settings_reach_the_service_under_their_new_names(tmp_path: Path) -> None:
    rt = runtime(tmp_path, RENAMED)
    ingestion = rt._services["ingestion"].env
    assert "CUTOVER_HA_URL" not in ingestion and "CUTOVER_ENRICHMENT_URL" not in ingestion
    assert ingestion["HASS_URL"] == "ws://127.0.0.1:1/api/websocket"
    assert ingestion["LISTEN_PORT"] == str(rt._services["ingestion"].port)
    # no enrichment: ingestion sends straight to storage, admin-api does not watch enrichment
    assert ingestion["STORAGE_URL"] == rt.url("storage")
    assert "enrichment" not in rt._services
    assert "enrichment" not in json.loads(rt._services["admin"].env["CUTOVER_SERVICES"])
    assert not rt.has("enrichment") and rt.has("storage") and rt.has("weather")


def test_without_enrichment_the_fault_proxys_hop_leads_to_storage(tmp_path: Path) -> None:
    rt = runtime(tmp_path, RENAMED, fault_proxy=True)
    hop = next(h for h in rt._hops if h["name"] == "ingestion-enrichment")
    assert hop["upstream"] == rt.url("storage").removeprefix("http://")
    assert rt._services["ingestion"].env["STORAGE_URL"] == f"http://{hop['listen']}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "says"), [
    ("contract: 1\nname: x\nroles:\n  legacy: {comand: [a]}\n",
     ":4: roles.legacy.comand: unknown key"),
    ("contract: 2\nname: x\nroles: {}\n", ":1: contract: Input should be 1"),
    ("contract: 1\nname: x\nroles:\n  legacy: {command: [a]}\n",
     "roles ['ingestion', 'storage', 'admin'] missing"),
    ("contract: 1\nname: x\nroles:\n  legacy: {env: {A: b}}\n", "give a command"),
    ("contract: 1\nname: x\nroles:\n  legacy: {command: [a]}\n  ingestion: {command: [a]}\n"
     "  admin: {command: [a]}\n  storage:\n    command: [a]\n    settings: {CUTOVER_HA_URL: X}\n",
     ":9: storage is never given CUTOVER_HA_URL"),
    ("contract: 1\nname: [\n", "not valid YAML"),
])
def test_a_bad_file_is_refused_with_its_line_and_what_to_write(tmp_path: Path, text: str,
                                                                 says: str) -> None:
    with pytest.raises(PipelineFileError, match=None) as caught:
        load_pipeline(write(tmp_path, text))
    assert says in str(caught.value), str(caught.value)


def test_a_role_with_only_an_image_cannot_run_as_a_process(tmp_path: Path) -> None:
    head, _ = RENAMED.read_text().split("  admin:\n", 1)
    text = head + "  admin:\n    image: acme/admin:1\n"
    with pytest.raises(Unsupported, match="admin .* has an image and no command"):
        runtime(tmp_path, write(tmp_path, text))


def test_a_scenario_that_faults_a_missing_stage_cannot_run_on_that_plan() -> None:
    skew = load_scenario(ROOT / "scenarios" / "survive_clock_skew.yaml")
    problems = unfit(skew, load_pipeline(RENAMED))
    assert any("clock_skew enrichment" in p and "does not have" in p for p in problems), problems
    assert unfit(skew, reference_pipeline()) == []
    slow_weather = load_scenario(ROOT / "scenarios" / "survive_slow_weather.yaml")
    assert any("needs weather (through enrichment" in p
               for p in unfit(slow_weather, load_pipeline(RENAMED)))
    # steps naming enrichment are skipped, not refused: full_migration runs on such a plan
    assert unfit(load_scenario(ROOT / "scenarios" / "full_migration.yaml"),
                 load_pipeline(RENAMED)) == []


def test_a_mutant_takes_a_roles_place_through_the_same_file(tmp_path: Path) -> None:
    mutated = reference_pipeline().with_commands({"storage": "tests.mutants.m07_fire_and_forget"})
    rt = ProcessRuntime(Wiring(tmp_path, "ws://127.0.0.1:1/api/websocket", "t", "a", "k",
                               pipeline=mutated))
    assert rt._services["storage"].argv[1:] == ["-m", "tests.mutants.m07_fire_and_forget"]
    with pytest.raises(ValueError, match="no role 'enrichment'"):
        load_pipeline(RENAMED).with_commands({"enrichment": "x"})
