"""Benchmark: how many events/s one websocket-ingestion process takes from Home Assistant into
its durable outbox, and how long an event stays in memory only (the SIGKILL window).

The fake Home Assistant runs in this process, websocket-ingestion as a real subprocess
(``python -m pipeline.ingestion``) with enrichment pointing at a closed port, so everything
stays in the outbox and the figure is intake alone (websocket read, normalise, group commit).
For each rate the fake fires for ``--seconds``; the run passes if the service made every event
durable with no back-pressure disconnect from Home Assistant.

``--quick`` (2 s at 500 and at 2,000 events/s, seconds) only shows the bench still runs.

Usage: python bench/ingestion.py [--rates 500,1000,2000,4000,8000] [--seconds 5] [--quick]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.runtime.ports import free_ports  # noqa: E402
from simulators.home_assistant.fleet import Fleet, FleetSpec  # noqa: E402
from simulators.home_assistant.ledger import Ledger  # noqa: E402
from simulators.home_assistant.load import parse_profile  # noqa: E402
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig  # noqa: E402

TOKEN = "bench"  # noqa: S105  # the fake's access token, not a secret


async def stats(client: httpx.AsyncClient, url: str) -> dict:
    return (await client.get(f"{url}/api/v1/stats")).json()


async def run_rate(rate: int, seconds: float, tmp: Path) -> dict:
    ha = FakeHomeAssistant(ServerConfig(port=0, token=TOKEN),
                           fleet=Fleet(FleetSpec(entities=2000, seed=5)),
                           ledger=Ledger(tmp / f"ledger-{rate}.jsonl"))
    port, closed_port = free_ports(2)
    url = f"http://127.0.0.1:{port}"
    async with ha:
        env = {**os.environ, "CUTOVER_HOST": "127.0.0.1", "CUTOVER_PORT": str(port),
               "CUTOVER_DATA_DIR": str(tmp / f"ingestion-{rate}"), "CUTOVER_HA_URL": ha.url,
               "CUTOVER_HA_TOKEN": TOKEN,
               "CUTOVER_ENRICHMENT_URL": f"http://127.0.0.1:{closed_port}",
               "CUTOVER_LOG_LEVEL": "ERROR"}
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.ingestion"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                deadline = time.monotonic() + 60
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"ingestion exited with {proc.returncode} at start")
                    if time.monotonic() > deadline:
                        raise RuntimeError("ingestion did not subscribe within 60 s")
                    try:
                        if (await stats(client, url))["ha"]["subscribed"]:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
                started = time.monotonic()
                ha.set_profile(parse_profile(f"{rate}/s"))
                await asyncio.sleep(seconds)
                ha.set_profile(None)
                fired = ha.fired
                deadline = time.monotonic() + 30
                s = await stats(client, url)
                while s["durable"] + s["malformed"] < fired and time.monotonic() < deadline \
                        and ha.backpressure_disconnects == 0:
                    await asyncio.sleep(0.02)
                    s = await stats(client, url)
                elapsed = time.monotonic() - started
                metrics = (await client.get(f"{url}/metrics")).text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    p99 = _histogram_quantile(metrics, "cutover_ingest_durable_delay_seconds", 0.99)
    return {
        "rate": rate, "fired": fired, "durable": s["durable"],
        "achieved_per_s": round(s["durable"] / elapsed),
        "backpressure_disconnects": ha.backpressure_disconnects,
        "max_commit_delay_ms": s["max_commit_delay_ms"], "p99_durable_delay_ms_le": p99,
        "ok": s["durable"] == fired and ha.backpressure_disconnects == 0,
    }


def _histogram_quantile(text: str, name: str, q: float) -> float | None:
    """Upper bound (ms) of the bucket holding quantile q (coarse, from the bucket counts)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le * 1000
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,1000,2000,4000,8000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="2 s at 500/s and at 2000/s")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.seconds = "500,2000", 2.0
    console = Console()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            console.print(f"firing {rate:,}/s for {args.seconds:g} s ...")
            results.append(await run_rate(rate, args.seconds, Path(tmp)))
    table = Table(title=f"websocket-ingestion intake into its outbox, {args.seconds:g} s per rate")
    for col in ("rate/s", "fired", "durable", "achieved/s", "max receive->durable ms",
                "p99 durable delay <= ms", "HA drops", "result"):
        table.add_column(col, justify="left" if col == "result" else "right")
    for r in results:
        p99 = r["p99_durable_delay_ms_le"]
        table.add_row(f"{r['rate']:,}", f"{r['fired']:,}", f"{r['durable']:,}",
                      f"{r['achieved_per_s']:,}", str(r["max_commit_delay_ms"]),
                      "-" if p99 is None else f"{p99:g}", str(r["backpressure_disconnects"]),
                      "ok" if r["ok"] else "FELL BEHIND")
    console.print(table)
    sustained = max((r["rate"] for r in results if r["ok"]), default=0)
    print(orjson.dumps({"quick": args.quick, "bench": "ingestion_intake",
                        "seconds": args.seconds, "sustained_rate_per_s": sustained,
                        "runs": results}).decode())


if __name__ == "__main__":
    asyncio.run(main())
