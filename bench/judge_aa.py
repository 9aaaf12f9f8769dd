"""A/A bench of the perf_drop judge: how often each rule cries "slower" when both sides are the
same path (false positives), and how often it catches a real slowdown (detection).

Rules, each over one 10 s window of a baseline and a canary side (20..2000 points a side):

- ``old p95 > 20%``: what ``Window.perf_drop`` did before the judge: canary p95 over baseline
  p95 above 1.2;
- ``Mann-Whitney only``: p95 ratio above 1.2 and a one-sided Mann-Whitney p < alpha;
- ``judge``: ``harness.checks.judge.compare`` (p95 ratio above 1.2, and Mann-Whitney or the
  tail exceedance test, Bonferroni-combined, p < alpha): what ``perf_drop > 20%`` now means.

Cases:

- A/A: the same latency process on both sides;
- A/B +30%: the canary's every latency 1.3x (a uniform slowdown);
- A/B stall: a 1.5 s stall of the canary alone (as a paused storage service); in the
  synthetic source the canary's bulk is also 3x faster than the baseline's, as the new
  pipeline's is against legacy's, which hides the stall from a rank test.

Sources: synthetic (seeded): lognormal latencies (median 20 ms, sigma 0.35) plus a busy
machine's stalls (Poisson, 0.5/s, 20..300 ms each, hitting one side or both; a point that
arrives during a stall waits for its end). With ``--runs-dir``, also real runs: every run
directory under it (with run.json and influxdb/) is read back through its own influxd (on a
copy), cut into 10 s windows by stored_at, and each path's points (legacy; new and shadow)
split in two by a hash of the event key: an A/A of the same path at the same time. That split
shares every stall between the sides, so real runs add ``A/A 10 s apart``: a path's window
against its next one, where stalls fall differently (as on two processes) but the run's own
phase changes (traffic steps, faults) count as false positives too: a pessimistic bound.

The per-point latencies a run keeps are only in its InfluxDB (``stored_at - time``):
metrics.jsonl holds the services' histograms and run.json per-path summaries.

Usage: python bench/judge_aa.py [--windows 3000] [--runs-dir reports/] [--seed 1] [--quick]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.checks.judge import compare
from harness.checks.stored import read_points
from harness.runtime.influxd import find_influxd, influxd_argv, write_config
from harness.runtime.ports import free_port
from pipeline.common.ha_history import is_recovered

ALPHA, MIN_EFFECT, WINDOW_S = 0.01, 0.2, 10.0
RULES = ("old p95 > 20%", "Mann-Whitney only", "judge")
CASES = ("A/A", "A/B +30%", "A/B stall")
REAL_CASES = ("A/A", "A/A 10 s apart", "A/B +30%", "A/B stall")
SIZE_BUCKETS = ((20, 49), (50, 199), (200, 2000))
Pair = tuple[np.ndarray, np.ndarray]  # (baseline ms, canary ms)


def verdicts(base: np.ndarray, canary: np.ndarray) -> tuple[bool, bool, bool] | None:
    """(old rule, Mann-Whitney only, judge) on one window; None without enough points."""
    judged = compare(base, canary, min_effect=MIN_EFFECT, alpha=ALPHA)
    if judged is None:
        return None
    b, c = np.sort(base), np.sort(canary)
    p_b, p_c = b[int(len(b) * 0.95)], c[int(len(c) * 0.95)]
    old = p_b > 0 and (p_c - p_b) / p_b > MIN_EFFECT
    return (bool(old), judged.effect > MIN_EFFECT and judged.mann_whitney_p < ALPHA,
            judged.slower)


# -- synthetic ---------------------------------------------------------------------------------

def _size(rng: np.random.Generator) -> int:
    return round(float(np.exp(rng.uniform(np.log(20), np.log(2000)))))


def _side(rng: np.random.Generator, n: int, median_ms: float,
          stalls: list[tuple[float, float]]) -> np.ndarray:
    """n points fired uniformly over the window; one arriving in a stall waits for its end."""
    fired = rng.uniform(0.0, WINDOW_S, n)
    ms = rng.lognormal(np.log(median_ms), 0.35, n)
    for start, end in stalls:
        hit = (fired >= start) & (fired < end)
        ms[hit] += (end - fired[hit]) * 1000.0
    return ms


def _busy_machine(rng: np.random.Generator) -> tuple[list[tuple[float, float]], ...]:
    """The window's stalls, each hitting the baseline, the canary, or both."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for _ in range(rng.poisson(0.5 * WINDOW_S)):
        start = rng.uniform(0.0, WINDOW_S)
        stall = (start, start + rng.uniform(0.02, 0.3))
        who = rng.integers(3)
        if who != 1:
            a.append(stall)
        if who != 0:
            b.append(stall)
    return a, b


def synthetic(case: str, windows: int, seed: int) -> Iterator[Pair]:
    rng = np.random.default_rng([seed, CASES.index(case)])
    for _ in range(windows):
        stalls_a, stalls_b = _busy_machine(rng)
        n_a, n_b = _size(rng), _size(rng)
        if case == "A/A":
            yield _side(rng, n_a, 20.0, stalls_a), _side(rng, n_b, 20.0, stalls_b)
        elif case == "A/B +30%":
            yield _side(rng, n_a, 20.0, stalls_a), _side(rng, n_b, 20.0, stalls_b) * 1.3
        else:  # legacy-like baseline; new-like canary, 3x faster in bulk, with a 1.5 s pause
            start = rng.uniform(0.0, WINDOW_S - 1.5)
            yield (_side(rng, n_a, 21.0, stalls_a),
                   _side(rng, n_b, 7.0, [*stalls_b, (start, start + 1.5)]))


# -- real runs ---------------------------------------------------------------------------------

def _run_dirs(root: Path) -> list[Path]:
    found = [root] if (root / "run.json").is_file() else []
    found += [p.parent for p in root.rglob("run.json") if p.parent != root]
    return sorted(d for d in found if (d / "influxdb" / "meta").is_dir())


def _read_run(run_dir: Path, binary: str) -> dict[str, np.ndarray]:
    """{"legacy"/"new": rows of (stored_at s, latency ms, key hash)} from the run's InfluxDB."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "influxdb"
        shutil.copytree(run_dir / "influxdb", root, ignore=shutil.ignore_patterns("*.conf"))
        port = free_port()
        proc = subprocess.Popen(influxd_argv(binary, write_config(root, port, free_port())),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)

            async def both() -> list:
                async with httpx.AsyncClient() as client:
                    return [await read_points(client, url, db) for db in
                            ("home_assistant_events", "home_assistant_events_shadow")]
            production, shadow = asyncio.run(both())
        finally:
            proc.terminate()
            proc.wait(30)
    rows: dict[str, list[tuple[float, float, int]]] = {"legacy": [], "new": []}
    for points, is_shadow in ((production, False), (shadow, True)):
        for i in range(len(points)):
            stored = points.stored_at_ns[i]
            if stored is None or is_recovered(points.context_ids[i]):
                continue
            group = "new" if is_shadow or points.writers[i] != "legacy" else "legacy"
            key = f"{points.entity_ids[i]}|{points.times_ns[i]}|{is_shadow}".encode()
            rows[group].append((stored / 1e9, (stored - points.times_ns[i]) / 1e6,
                                zlib.crc32(key)))
    return {g: np.array(r, dtype=float).reshape(-1, 3) for g, r in rows.items()}


def real(case: str, runs: list[dict[str, np.ndarray]], seed: int) -> Iterator[Pair]:
    """Each run's 10 s windows, each path split in two by key hash (baseline and canary at
    the same time), or for ``A/A 10 s apart`` a path's window against its next one."""
    rng = np.random.default_rng([seed, 99, REAL_CASES.index(case)])
    for run in runs:
        for rows in run.values():
            if len(rows) == 0:
                continue
            t0 = rows[:, 0].min()
            wins = [rows[(rows[:, 0] >= lo) & (rows[:, 0] < lo + WINDOW_S)] for lo in
                    t0 + WINDOW_S * np.arange(int((rows[:, 0].max() - t0) // WINDOW_S) + 1)]
            if case == "A/A 10 s apart":
                for before, after in itertools.pairwise(wins):
                    if min(len(before), len(after)) >= 20:
                        yield before[:, 1], after[:, 1]
                continue
            for win in wins:
                odd = win[:, 2] % 2 == 1
                base, canary = win[~odd, 1], win[odd, 1].copy()
                if min(len(base), len(canary)) < 20:
                    continue
                if case == "A/B +30%":
                    canary *= 1.3
                elif case == "A/B stall":
                    start = win[:, 0].min() + rng.uniform(0.0, WINDOW_S - 1.5)
                    at = win[odd, 0]
                    hit = (at >= start) & (at < start + 1.5)
                    canary[hit] += (start + 1.5 - at[hit]) * 1000.0
                yield base, canary


# -- tally -------------------------------------------------------------------------------------

def tally(pairs: Callable[[str], Iterator[Pair]], cases: tuple[str, ...]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for case in cases:
        hits = np.zeros(len(RULES))
        by_size = {b: np.zeros(len(RULES) + 1) for b in SIZE_BUCKETS}
        n = 0
        for base, canary in pairs(case):
            v = verdicts(base, canary)
            if v is None:
                continue
            n += 1
            hits += v
            small = min(len(base), len(canary))
            for bucket in SIZE_BUCKETS:
                if bucket[0] <= small <= bucket[1]:
                    by_size[bucket] += (*v, 1)
        out[case] = {"windows": n,
                     "rates": {r: round(float(h) / n, 4) if n else None
                               for r, h in zip(RULES, hits, strict=True)},
                     "by_size": {f"{lo}-{hi}": {"windows": int(c[-1]), **{
                         r: round(float(c[i] / c[-1]), 4) if c[-1] else None
                         for i, r in enumerate(RULES)}} for (lo, hi), c in by_size.items()}}
    return out


def _table(console: Console, title: str, figures: dict[str, dict]) -> None:
    table = Table(title=title)
    table.add_column("case")
    table.add_column("windows", justify="right")
    for rule in RULES:
        table.add_column(rule, justify="right")
    for case, f in figures.items():
        what = "false positives" if case.startswith("A/A") else "detected"
        table.add_row(f"{case} ({what})", f"{f['windows']:,}",
                      *(f"{f['rates'][r] * 100:.1f}%" if f["rates"][r] is not None else "n/a"
                        for r in RULES))
        if case == "A/A":
            for bucket, b in f["by_size"].items():
                if b["windows"]:
                    table.add_row(f"  A/A, smaller side {bucket} points", f"{b['windows']:,}",
                                  *(f"{b[r] * 100:.1f}%" for r in RULES))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3000, help="synthetic windows per case")
    parser.add_argument("--runs-dir", type=Path, action="append", default=[],
                        help="a directory of run directories (repeatable)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="300 synthetic windows per case")
    args = parser.parse_args()
    windows = 300 if args.quick else args.windows
    console = Console(width=120)
    started = time.perf_counter()
    figures: dict[str, object] = {"quick": args.quick, "alpha": ALPHA,
                                  "min_effect": MIN_EFFECT, "window_s": WINDOW_S}

    synth = tally(lambda case: synthetic(case, windows, args.seed), CASES)
    _table(console, f"synthetic, {windows:,} windows of 10 s per case (seed {args.seed})", synth)
    figures["synthetic"] = synth

    if args.runs_dir:
        binary = find_influxd()
        if binary is None:
            sys.exit("influxd not found: apt-get install influxdb")
        dirs = [d for root in args.runs_dir for d in _run_dirs(root)]
        console.print(f"reading {len(dirs)} run(s) back from their InfluxDB ...")
        runs = [_read_run(d, binary) for d in dirs]
        points = sum(len(r) for run in runs for r in run.values())
        found = tally(lambda case: real(case, runs, args.seed), REAL_CASES)
        _table(console, f"real runs: {len(dirs)} runs, {points:,} points; each path split "
                        "in two by key hash, or against its next window", found)
        figures["real"] = {"runs": len(dirs), "points": points, **found}
    seconds = time.perf_counter() - started
    console.print(f"{seconds:.1f} s")
    figures["seconds"] = round(seconds, 1)
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
