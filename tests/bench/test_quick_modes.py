"""Every bench still starts: each ``bench/*.py`` run with ``--quick`` (seconds, small sizes)
exits 0, prints a table for people and, as its last stdout line, one JSON object with the
same keys as its full mode (``quick`` true) and figures that make sense.

A bench is any ``bench/*.py`` not starting with ``_``; a new one must say here which keys its
JSON line has and what sane figures are, or this test fails for it. The benches run as
subprocesses (the interpreter running pytest, from the repository root) with a fixed
``COLUMNS``, so neither the working directory nor the terminal changes what they print.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
TIMEOUT_S = 180.0  # a quick mode takes seconds; this only bounds a hung one on a loaded machine

Figures = dict[str, Any]


def _positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               and v > 0 for v in values)


def _fake_ha(f: Figures) -> None:
    assert f["events"] > 0
    assert _positive(f["eps_1_subscriber"], f["eps_1_subscriber_coalesced"],
                     f["eps_10_subscribers"], f["eps_10_subscribers_coalesced"])
    assert _positive(f["ledger_entries"], f["ledger_bytes_per_entry"])
    assert f["ledger_1m_rss_mb"] is None  # only measured at 1,000,000 entries
    assert f["goal_20k_eps_1_subscriber"] is None


def _faultproxy(f: Figures) -> None:
    assert _positive(f["rate_per_s"], f["requests_per_path"], f["direct_p50_ms"],
                     f["proxy_p50_ms"], f["throughput_direct_mb_s"], f["throughput_proxy_mb_s"])
    assert f["direct_p50_ms"] <= f["direct_p95_ms"]
    assert f["proxy_p50_ms"] <= f["proxy_p95_ms"] <= f["proxy_p99_ms"]
    assert f["proxy_cpu_percent"] >= 0
    assert isinstance(f["goal_added_p95_le_1ms"], bool)


def _http_request(f: Figures) -> None:
    assert f["requests"] > 0
    assert f["sniffio_installed"] is True  # a dependency: without it each request pays ~0.6 ms
    assert _positive(f["httpcore_cpu_us"], f["httpcore_no_sniffio_cpu_us"], f["aiohttp_cpu_us"],
                     f["httpcore_p50_ms"], f["httpcore_no_sniffio_p50_ms"], f["aiohttp_p50_ms"])


def _ingestion(f: Figures) -> None:
    assert f["bench"] == "ingestion_intake"
    assert _positive(f["seconds"], f["sustained_rate_per_s"])
    assert f["runs"]
    for run in f["runs"]:
        assert _positive(run["rate"], run["fired"])
        assert 0 <= run["durable"] <= run["fired"]


def _intake(f: Figures) -> None:
    assert f["events"] > 0
    assert _positive(f["storage_judge_us"], f["enrichment_parse_us"], f["validate_us"],
                     f["to_line_us"])
    # storage's intake validates and renders: more than either part alone
    assert f["storage_judge_us"] > max(f["validate_us"], f["to_line_us"])


def _judge_aa(f: Figures) -> None:
    assert (f["alpha"], f["min_effect"], f["window_s"]) == (0.01, 0.2, 10.0)
    assert set(f["synthetic"]) == {"A/A", "A/B +30%", "A/B stall"}
    for case in f["synthetic"].values():
        assert case["windows"] > 0
        assert all(0 <= rate <= 1 for rate in case["rates"].values())
    assert f["seconds"] >= 0


def _pipeline(f: Figures) -> None:
    # one probe per path at a low rate: each path must store every event it was fired, with no
    # back-pressure drop; its p95 is not held to 100 ms here (a loaded machine can miss that,
    # which makes its rate 0), only to being measured
    assert _positive(f["duration_s"])
    assert {p["path"] for p in f["probes"]} == {"new", "legacy"}
    for probe in f["probes"]:
        assert _positive(probe["rate"], probe["fired"], probe["p95_ms"]), probe
        assert probe["lost"] == 0 and probe["backpressure"] == 0, probe
    for path in ("new", "legacy"):
        assert f[f"{path}_eps"] >= 0
        if f[f"{path}_eps"] > 0:
            assert 0 < f[f"{path}_p95_ms"] <= 100
    assert f["ratio"] is None or f["ratio"] > 0
    assert f["goal_new_12000_eps"] is None and f["goal_ratio_1"] is None
    # one probe each: capped (the edge not found) exactly when that probe passed
    for path in ("new", "legacy"):
        assert f[f"{path}_capped"] is all(p["ok"] for p in f["probes"] if p["path"] == path)
    # each path split into its hops, read back from the points' stamps and the 204 records:
    # every point stamped at each hop of its path, and the hops add up to fired -> 204
    assert f["at"] == 200
    fired = {p["path"]: p["fired"] for p in f["probes"]}
    own = {"new": ("fired -> intake", "intake -> enriched", "enriched -> stamped"),
           "legacy": ("fired -> intake", "intake -> stamped")}
    for path, hops in f["hops"].items():
        assert hops["rate"] == 200
        for name in (*own[path], "stamped -> 204", "fired -> 204"):
            assert hops[name]["n"] == fired[path], (path, name, hops)
            assert 0 <= hops[name]["p50_ms"] <= hops[name]["p95_ms"], (path, name, hops)
        assert set(hops) == {"rate", *own[path], "stamped -> 204", "fired -> 204"}, hops
        assert sum(hops[n]["p50_ms"] for n in own[path]) <= hops["fired -> 204"]["p95_ms"]


def _simulate(f: Figures) -> None:
    assert _positive(f["plan_simulated_s"], f["hour_simulated_s"], f["plan_8d_events"],
                     f["hour_events"], f["plan_8d_17_per_min_s"], f["hour_1000_per_s_s"])
    assert f["plan_8d_with_report_s"] >= f["plan_8d_17_per_min_s"]
    assert f["hour_with_report_s"] >= f["hour_1000_per_s_s"]
    assert f["goal_8d_under_10s"] is None and f["goal_hour_under_60s"] is None
    assert f["goal_hour_10k_60s"] is None
    assert _positive(f["hour_10k_events"], f["hour_10000_per_s_s"])
    assert f["hour_10k_with_report_s"] >= f["hour_10000_per_s_s"]


def _storage(f: Figures) -> None:
    assert f["batch_size"] > 0 and f["concurrency"] > 0
    tp, lat = f["throughput"], f["latency"]
    assert _positive(tp["events"], tp["accept_events_per_s"], tp["stored_events_per_s"])
    assert _positive(lat["rate_events_per_s"], lat["batches"], lat["p50_s"])
    assert lat["p50_s"] <= lat["p95_s"] <= lat["max_s"]
    assert isinstance(f["dead_lettered"], list)


def _verdict(f: Figures) -> None:
    assert f["events"] > 0
    assert _positive(f["verdict_s"])
    # faults are planted at i % 100,000 == 42 (lost) and i % 250,000 == 7 (inconsistent)
    assert f["lost_found"] >= 1 and f["inconsistent_found"] >= 1
    assert f["goal_5s"] is None


# bench -> (the keys of its JSON line in full mode, plus "quick"; the sanity checks)
EXPECTED: dict[str, tuple[frozenset[str], Callable[[Figures], None]]] = {
    "fake_ha": (frozenset({
        "quick", "events", "eps_1_subscriber", "eps_1_subscriber_coalesced",
        "eps_10_subscribers", "eps_10_subscribers_coalesced", "ledger_entries", "ledger_rss_mb",
        "ledger_1m_rss_mb", "ledger_bytes_per_entry", "goal_20k_eps_1_subscriber"}), _fake_ha),
    "faultproxy": (frozenset({
        "quick", "rate_per_s", "requests_per_path", "direct_p50_ms", "direct_p95_ms",
        "proxy_p50_ms", "proxy_p95_ms", "proxy_p99_ms", "added_p50_ms", "added_p95_ms",
        "added_p95_from_schedule_ms", "proxy_cpu_percent", "throughput_direct_mb_s",
        "throughput_proxy_mb_s", "goal_added_p95_le_1ms"}), _faultproxy),
    "http_request": (frozenset({
        "quick", "requests", "sniffio_installed", "httpcore_cpu_us", "httpcore_no_sniffio_cpu_us",
        "aiohttp_cpu_us", "httpcore_p50_ms", "httpcore_no_sniffio_p50_ms", "aiohttp_p50_ms"}),
        _http_request),
    "ingestion": (frozenset({"quick", "bench", "seconds", "sustained_rate_per_s", "runs"}),
                  _ingestion),
    "intake": (frozenset({"quick", "events", "storage_judge_us", "enrichment_parse_us",
                          "validate_us", "to_line_us"}), _intake),
    # "real" only comes with --runs-dir, which neither `make bench` nor --quick passes
    "judge_aa": (frozenset({"quick", "alpha", "min_effect", "window_s", "synthetic", "seconds"}),
                 _judge_aa),
    "pipeline": (frozenset({
        "quick", "at", "duration_s", "new_eps", "legacy_eps", "ratio", "new_p95_ms",
        "legacy_p95_ms", "new_capped", "legacy_capped", "goal_new_12000_eps", "goal_ratio_1",
        "hops", "probes"}),
        _pipeline),
    "simulate": (frozenset({
        "quick", "plan_simulated_s", "hour_simulated_s", "plan_8d_17_per_min_s",
        "plan_8d_17_per_min_cpu_s", "plan_8d_events", "plan_8d_with_report_s",
        "hour_1000_per_s_s", "hour_1000_per_s_cpu_s", "hour_events", "hour_with_report_s",
        "goal_8d_under_10s", "goal_hour_under_60s", "load_average", "hour_10k_simulated_s",
        "hour_10000_per_s_s", "hour_10000_per_s_cpu_s", "hour_10k_events",
        "hour_10k_with_report_s", "goal_hour_10k_60s"}), _simulate),
    "storage": (frozenset({
        "quick", "batch_size", "concurrency", "throughput", "latency", "dead_lettered"}),
        _storage),
    "verdict": (frozenset({
        "quick", "events", "verdict_s", "read_s", "account_s", "lost_found",
        "inconsistent_found", "goal_5s"}), _verdict),
}

BENCHES = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))

# a table row as rich draws it (unicode or ASCII box): a border at both ends
_ROW = re.compile(r"^\s*[│┃|║].*[│┃|║]\s*$")


def _run(script: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
    env.pop("LINES", None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), "--quick"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group: a hung one is ended whole
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the bench, and influxd or services
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        pytest.fail(f"bench/{script.name} --quick took over {TIMEOUT_S:g} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), \
        time.monotonic() - started


def test_every_bench_is_covered() -> None:
    assert BENCHES, f"no benches found in {BENCH}"
    assert set(BENCHES) == set(EXPECTED), (
        "every bench/*.py must be listed in EXPECTED with its JSON keys (and none that is gone)")


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_quick_mode(name: str) -> None:
    done, seconds = _run(BENCH / f"{name}.py")
    tail = f"\n--- stdout (last 2000 chars) ---\n{done.stdout[-2000:]}" \
           f"\n--- stderr (last 3000 chars) ---\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"bench/{name}.py --quick exited {done.returncode}{tail}"
    lines = done.stdout.rstrip("\n").splitlines()
    assert lines, f"bench/{name}.py --quick printed nothing{tail}"
    try:
        figures = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        pytest.fail(f"the last stdout line of bench/{name}.py --quick is not JSON{tail}")
    assert isinstance(figures, dict), f"the last line is JSON but not an object: {lines[-1]}"
    rows = [line for line in lines[:-1] if _ROW.match(line)]
    assert len(rows) >= 2, f"no table before the JSON line{tail}"  # a header and a row at least
    assert figures.get("quick") is True, figures
    if name not in EXPECTED:
        pytest.fail(f"bench/{name}.py is not in EXPECTED: its keys are {sorted(figures)}")
    keys, sane = EXPECTED[name]
    assert set(figures) == keys, (
        f"missing {sorted(keys - set(figures))}, unexpected {sorted(set(figures) - keys)}")
    sane(figures)
    print(f"bench/{name}.py --quick: {seconds:.1f} s; {lines[-1]}")
