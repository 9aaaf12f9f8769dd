"""Benchmark of the pipeline: the highest rate each path sustains with zero loss and p95
(time_fired -> stored) <= 100 ms, the new chain (ingestion -> enrichment -> storage) and the
legacy monolith, side by side.

Each probe runs the path alone as real processes against a real influxd (no admin-api: the
path owns every event), fires events from the fake Home Assistant at a constant rate for
``--duration`` seconds, drains, and judges the probe from the ledger and InfluxDB. Rates are
searched upwards by doubling until a probe fails, then narrowed by bisection; the best rate is
the highest probe that passed. A path whose every probe passed up to ``--max`` has no edge
found: ``new_capped`` / ``legacy_capped`` say so, and its rate (and the ratio) is only a floor.

Goal (issue 15): new_eps >= 12,000 and new/legacy >= 1.0, neither capped.

Each path's reported probe (its best, else its first) is also split into hops, from the points'
own stamps and the writers' 204 records (`bench/_hops.py`): which hop to work on.

``--at RATE`` probes each path once at that rate (no search, goals null): the hop table at a
given load, e.g. ``--at 50 --duration 20`` for the rate the trigger scenarios run at.
``--quick`` is ``--at 200 --duration 3``: it only shows the bench (and both paths) still run;
its rates are that one probe's (0 if it failed).

Usage: python bench/pipeline.py [--duration 60] [--start 500] [--max 512000] [--steps 3]
       [--paths new legacy] [--at RATE] [--quick]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._hops import HOPS, Hop, read_hops  # noqa: E402
from harness.checks.accounting import account  # noqa: E402
from harness.checks.stored import read_points  # noqa: E402
from harness.runtime.base import Wiring  # noqa: E402
from harness.runtime.process import ProcessRuntime  # noqa: E402
from simulators.home_assistant.fleet import Fleet, FleetSpec  # noqa: E402
from simulators.home_assistant.ledger import Ledger  # noqa: E402
from simulators.home_assistant.load import parse_profile  # noqa: E402
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig  # noqa: E402

PATHS = {"new": ["influxdb", "weather", "storage", "enrichment", "ingestion"],
         "legacy": ["influxdb", "legacy"]}


@dataclass
class Probe:
    path: str
    rate: float
    fired: int
    lost: int
    p95_ms: float
    backpressure: int
    hops: dict[str, Hop]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.p95_ms <= 100 and self.backpressure == 0 and self.fired > 0


async def probe(path: str, rate: float, duration: float, console: Console) -> Probe:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        token = secrets.token_hex(8)
        ledger = Ledger(run_dir / "ledger.jsonl")
        ha = FakeHomeAssistant(ServerConfig(port=0, token=token),
                               fleet=Fleet(FleetSpec(entities=2000, seed=1)), ledger=ledger)
        await ha.start()
        rt = ProcessRuntime(Wiring(run_dir, ha.url, token, "x", "k", control_plane=False))
        try:
            for service in PATHS[path]:
                await rt.start(service)
            for service in PATHS[path]:
                await rt.wait_healthy(service, 60)
            while not any(c.subs.events for c in ha.connections.values()):
                await asyncio.sleep(0.05)
            ha.set_profile(parse_profile({"kind": "constant", "rate": rate, "duration": duration}))
            await asyncio.sleep(duration + 0.5)
            ha.set_profile(None)
            async with httpx.AsyncClient() as client:
                deadline = time.monotonic() + 30
                points = await read_points(client, rt.url("influxdb"), "home_assistant_events")
                while len(points) < len(ledger) and time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    points = await read_points(client, rt.url("influxdb"),
                                               "home_assistant_events")
                hops = await read_hops(client, rt.url("influxdb"), points)
            acc = account(ledger, points, None, phase_of=lambda _t: "bench",
                          owner_of=lambda _e, _t: path)
            stats = acc.latency.get("production")
            result = Probe(path, rate, len(ledger), acc.counts.lost,
                           stats.p95_ms if stats else float("inf"), ha.backpressure_disconnects,
                           hops)
        finally:
            await rt.close()
            await ha.stop()
    console.print(f"  {path:<6} {rate:>8,.0f}/s: fired {result.fired:,}, lost {result.lost}, "
                  f"p95 {result.p95_ms:.1f} ms, back-pressure drops {result.backpressure} -> "
                  f"{'ok' if result.ok else 'FAIL'}")
    return result


@dataclass
class Edge:
    """A path's search: its best passing probe, and whether a failing one bounded it."""

    best: Probe | None
    capped: bool  # every probe passed up to --max: the edge is above it, not found
    first: Probe

    @property
    def reported(self) -> Probe:
        """The probe whose hops the bench shows: the best, else the first (which failed)."""
        return self.best or self.first


async def search(path: str, args: argparse.Namespace, console: Console,
                 probes: list[Probe]) -> Edge:
    """The best passing probe of ``path``; every probe run is appended to ``probes``."""
    best: Probe | None = None
    rate, failed_at = float(args.start), None
    first = len(probes)
    while rate <= args.max:  # double until a probe fails
        p = await probe(path, rate, args.duration, console)
        probes.append(p)
        if not p.ok:
            failed_at = rate
            break
        best, rate = p, rate * 2
    if best is None or failed_at is None:
        return Edge(best, capped=failed_at is None, first=probes[first])
    lo, hi = best.rate, failed_at
    for _ in range(args.steps):  # bisect between the last pass and the first fail
        mid = round((lo + hi) / 2, -1)
        p = await probe(path, mid, args.duration, console)
        probes.append(p)
        if p.ok:
            best, lo = p, mid
        else:
            hi = mid
    return Edge(best, capped=False, first=probes[first])


async def main_async(args: argparse.Namespace) -> None:
    console = Console()
    edges: dict[str, Edge] = {}
    probes: list[Probe] = []
    for path in args.paths:
        console.print(f"[bold]{path}[/]: probing rates for {args.duration:g} s each")
        edges[path] = await search(path, args, console, probes)
    searched = not (args.quick or args.at)
    table = Table(title="highest rate with zero loss and p95 <= 100 ms")
    for col in ("path", "events/s", "p95 ms", "events fired", "edge"):
        table.add_column(col, justify="right")
    for path, edge in edges.items():
        p = edge.best
        table.add_row(path, f"{p.rate:,.0f}" if p else "-", f"{p.p95_ms:.1f}" if p else "-",
                      f"{p.fired:,}" if p else "-",
                      "not searched (one probe)" if not searched
                      else f"not found (every probe to {args.max:,.0f}/s passed)" if edge.capped
                      else "found")
    console.print(table)
    console.print(_hop_table(edges))
    new, legacy = (edges[k].best if k in edges else None for k in ("new", "legacy"))
    capped = {k: edges[k].capped if k in edges else None for k in ("new", "legacy")}
    ratio = (new.rate / legacy.rate) if new and legacy else None
    print(orjson.dumps({
        "quick": args.quick,
        "at": args.at,
        "duration_s": args.duration,
        "new_eps": new.rate if new else 0, "legacy_eps": legacy.rate if legacy else 0,
        "ratio": round(ratio, 2) if ratio else None,
        "new_p95_ms": round(new.p95_ms, 1) if new else None,
        "legacy_p95_ms": round(legacy.p95_ms, 1) if legacy else None,
        "new_capped": capped["new"], "legacy_capped": capped["legacy"],
        "goal_new_12000_eps": bool(new and new.rate >= 12_000) if searched else None,
        "goal_ratio_1": bool(ratio and ratio >= 1.0 and not any(capped.values()))
        if searched else None,
        # each path's reported probe, hop by hop (ms; n = points with both stamps)
        "hops": {path: {"rate": edge.reported.rate,
                        **{name: hop.as_json() for name, hop in edge.reported.hops.items()}}
                 for path, edge in edges.items()},
        # every probe, in order: the search, and why a rate failed
        "probes": [{"path": p.path, "rate": p.rate, "fired": p.fired, "lost": p.lost,
                    "p95_ms": round(p.p95_ms, 1) if math.isfinite(p.p95_ms) else None,
                    "backpressure": p.backpressure, "ok": p.ok} for p in probes]}).decode())


def _hop_table(edges: dict[str, Edge]) -> Table:
    table = Table(title="where the time goes: p50 / p95 ms of each path's reported probe")
    table.add_column("hop")
    for path, edge in edges.items():
        table.add_column(f"{path} at {edge.reported.rate:,.0f}/s", justify="right")
    for name in HOPS:
        cells = [edge.reported.hops.get(name) for edge in edges.values()]
        if any(cells):
            table.add_row(name, *(f"{h.p50_ms:.1f} / {h.p95_ms:.1f}" if h else "-"
                                  for h in cells))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--start", type=float, default=500.0)
    parser.add_argument("--max", type=float, default=512_000.0,
                        help="stop doubling here (a path still passing is reported capped)")
    parser.add_argument("--steps", type=int, default=3, help="bisection steps after doubling")
    parser.add_argument("--paths", nargs="+", choices=("new", "legacy"),
                        default=["new", "legacy"], help="which paths to probe")
    parser.add_argument("--at", type=float, default=None, metavar="RATE",
                        help="one probe per path at RATE events/s (no search); goals not judged")
    parser.add_argument("--quick", action="store_true",
                        help="one 3 s probe per path at 200/s (--at 200 --duration 3)")
    args = parser.parse_args()
    if args.at is not None and args.at <= 0:
        parser.error(f"--at must be a rate above 0 events/s, got {args.at:g}")
    if args.quick:
        args.duration, args.at = 3.0, 200.0
    if args.at:
        args.start, args.max, args.steps = args.at, args.at, 0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
