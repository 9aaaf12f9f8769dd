"""Benchmark of data-storage into a real influxd: sustained events/s with batches of 5,000, and
accept -> stored latency (200 to the sender -> InfluxDB's 204) at a steady rate below that.

Everything runs on this machine: influxd (a temporary one, on free ports), storage as a
subprocess (``python -m pipeline.storage``) and this client, which posts pre-serialised bodies
so that its own cost stays small. "Stored" is read from storage's /api/v1/stats ``processed``
(points InfluxDB answered 204 for), polled every 5 ms.

``--quick`` (batches of 1,000: 10 for throughput, 5 for latency; seconds) only shows the bench
still runs.

Usage: python bench/storage.py [--batches 40] [--batch-size 5000] [--quick]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.runtime.influxd import find_influxd, influxd_argv, write_config  # noqa: E402
from harness.runtime.ports import free_ports  # noqa: E402
from pipeline.common.events import Event, dumps_batch  # noqa: E402
from simulators.home_assistant.timefmt import ulid  # noqa: E402

ENTITIES = [f"sensor.room_{i}_temperature" for i in range(200)]


def bodies(batches: int, size: int, seed: int) -> list[tuple[bytes, int]]:
    """Pre-serialised POST bodies with realistic payloads; distinct points throughout."""
    rng = random.Random(seed)
    start = time.time_ns()
    out = []
    n = 0
    for _ in range(batches):
        events = []
        for _ in range(size):
            fired = start + n * 1000  # 1 us apart: one point per event, whatever the entity
            entity = ENTITIES[n % len(ENTITIES)]
            events.append(
                Event(
                    context_id=ulid(fired, rng),
                    entity_id=entity,
                    domain="sensor",
                    time_fired_ns=fired,
                    state=f"{rng.uniform(15, 25):.2f}",
                    old_state=f"{rng.uniform(15, 25):.2f}",
                    attributes={
                        "unit_of_measurement": "°C",
                        "device_class": "temperature",
                        "friendly_name": entity,
                        "state_class": "measurement",
                    },
                    received_at_ns=fired,
                    enriched_at_ns=fired,
                    weather={"temperature": 11.5, "humidity": 80.0, "condition": "cloudy"},
                    weather_enriched=True,
                )
            )
            n += 1
        out.append((dumps_batch(events), size))
    return out


async def processed(client: httpx.AsyncClient, url: str) -> int:
    return int((await client.get(f"{url}/api/v1/stats")).json()["processed"])


async def wait_processed(
    client: httpx.AsyncClient, url: str, n: int, timeout: float = 300.0
) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await processed(client, url) >= n:
            return time.monotonic()
        await asyncio.sleep(0.005)
    raise RuntimeError(f"storage did not write {n} points within {timeout} s")


async def throughput(
    client: httpx.AsyncClient, url: str, work: list[tuple[bytes, int]], concurrency: int
) -> dict[str, float]:
    """Post everything as fast as storage accepts it; time until InfluxDB has it all."""
    base = await processed(client, url)
    total = sum(n for _, n in work)
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)

    async def sender() -> None:
        while not queue.empty():
            body, _ = queue.get_nowait()
            r = await client.post(
                f"{url}/api/v1/events", content=body, headers={"content-type": "application/json"}
            )
            r.raise_for_status()

    t0 = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    accepted = time.monotonic()
    stored = await wait_processed(client, url, base + total)
    return {
        "events": total,
        "accept_events_per_s": total / (accepted - t0),
        "stored_events_per_s": total / (stored - t0),
    }


async def latency(
    client: httpx.AsyncClient, url: str, work: list[tuple[bytes, int]], rate: float
) -> dict[str, float]:
    """One batch every size/rate seconds; per batch: 200 received -> all its points written."""
    base = await processed(client, url)
    cumulative = base
    samples: list[float] = []
    interval = work[0][1] / rate
    next_at = time.monotonic()
    pending: list[asyncio.Task[None]] = []

    async def watch(target: int, accepted_at: float) -> None:
        samples.append(await wait_processed(client, url, target) - accepted_at)

    for body, n in work:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        r = await client.post(
            f"{url}/api/v1/events", content=body, headers={"content-type": "application/json"}
        )
        r.raise_for_status()
        cumulative += n
        pending.append(asyncio.create_task(watch(cumulative, time.monotonic())))
    await asyncio.gather(*pending)
    samples.sort()
    return {
        "rate_events_per_s": rate,
        "batches": len(samples),
        "p50_s": statistics.median(samples),
        "p95_s": samples[min(len(samples) - 1, int(0.95 * len(samples)))],
        "max_s": samples[-1],
    }


async def measure(
    url: str, pids: dict[str, int], storage: subprocess.Popen[bytes], args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    async with httpx.AsyncClient(timeout=60.0) as client:
        for _ in range(600):
            if storage.poll() is not None:
                raise RuntimeError(f"storage exited with {storage.returncode} at start")
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("storage did not answer /health within 30 s")
        await throughput(client, url, bodies(2, args.batch_size, seed=0), 1)  # warm-up
        work = bodies(args.batches, args.batch_size, seed=1)
        procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        cpu_before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        tp = await throughput(client, url, work, args.concurrency)
        # CPU ms per 1,000 events, per process: which one is the bottleneck on this machine.
        for name, p in procs.items():
            tp[f"{name}_cpu_ms_per_1k"] = (
                (sum(p.cpu_times()[:2]) - cpu_before[name]) / tp["events"] * 1e6
            )
        rate = tp["stored_events_per_s"] * args.load
        lat = await latency(
            client, url, bodies(args.latency_batches, args.batch_size, seed=2), rate
        )
        metrics = (await client.get(f"{url}/metrics")).text
    dead = [
        line
        for line in metrics.splitlines()
        if line.startswith("cutover_events_dead_lettered_total")
    ]
    return tp, lat, dead


def _start_influxd(root: Path, port: int, rpc_port: int) -> subprocess.Popen[bytes]:
    """A temporary influxd on ``port``, answering /ping (as the harness starts one)."""
    binary = find_influxd()
    if binary is None:
        sys.exit("influxd not found: apt-get install influxdb")
    with open(root / "influxd.log", "wb") as log:
        config = write_config(root / "influxd", port, rpc_port)
        proc = subprocess.Popen(influxd_argv(binary, config), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"influxd exited with {proc.returncode}: see {root / 'influxd.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 204:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.terminate()
    proc.wait(30)
    sys.exit("influxd did not answer /ping within 30 s")


def run(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """A temporary influxd and storage process around `measure`."""
    root = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    port, influx_port, rpc_port = free_ports(3)
    influx: subprocess.Popen[bytes] | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        influx = _start_influxd(root, influx_port, rpc_port)
        env = {
            **os.environ,
            "CUTOVER_PORT": str(port),
            "CUTOVER_DATA_DIR": str(root / "storage"),
            "CUTOVER_INFLUX_URL": f"http://127.0.0.1:{influx_port}",
            "CUTOVER_LOG_LEVEL": "WARNING",
            "CUTOVER_MAX_BODY_BYTES": str(64 << 20),
        }
        with open(root / "storage.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline.storage"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return asyncio.run(
            measure(f"http://127.0.0.1:{port}", {"storage": proc.pid, "influxd": influx.pid},
                    proc, args)
        )
    finally:
        for p in (proc, influx):
            if p is not None:
                p.terminate()
                p.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--latency-batches", type=int, default=40)
    parser.add_argument(
        "--load", type=float, default=0.5, help="latency phase rate, as a share of throughput"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.batches, args.latency_batches = 1000, 10, 5
    console = Console()
    console.print(f"storage into influxd: {args.batches} batches of {args.batch_size:,} as fast "
                  f"as accepted, then {args.latency_batches} at {args.load:.0%} of that rate ...")
    tp, lat, dead = run(args)
    table = Table(title=f"data-storage into a real influxd, batches of {args.batch_size:,}")
    for col in ("measure", "value"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row("stored events/s", f"{tp['stored_events_per_s']:,.0f}")
    table.add_row("accepted events/s", f"{tp['accept_events_per_s']:,.0f}")
    for name in ("storage", "influxd"):
        table.add_row(f"{name} CPU ms per 1,000 events", f"{tp[f'{name}_cpu_ms_per_1k']:.1f}")
    table.add_row(f"accept -> stored p50 at {lat['rate_events_per_s']:,.0f}/s (ms)",
                  f"{lat['p50_s'] * 1000:.0f}")
    table.add_row("accept -> stored p95 (ms)", f"{lat['p95_s'] * 1000:.0f}")
    table.add_row("accept -> stored max (ms)", f"{lat['max_s'] * 1000:.0f}")
    console.print(table)
    print(
        orjson.dumps(
            {
                "quick": args.quick,
                "batch_size": args.batch_size,
                "concurrency": args.concurrency,
                "throughput": tp,
                "latency": {**lat, "load": args.load},
                "dead_lettered": dead,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
