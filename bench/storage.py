"""Benchmark of data-storage into a real influxd: sustained events/s with batches of 5,000, and
accept -> stored latency (200 to the sender -> InfluxDB's 204) at a steady rate below that.

Everything runs on this machine: influxd (a temporary one, on free ports), storage as a
subprocess (``python -m pipeline.storage``) and this client, which posts pre-serialised bodies
so that its own cost stays small. "Stored" is read from storage's /api/v1/stats ``processed``
(points InfluxDB answered 204 for), polled every 5 ms.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.common.events import Event, dumps_batch
from simulators.home_assistant.timefmt import ulid
from tests.fixtures.influx import INFLUXD, InfluxServer, free_port

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
    url: str, pids: dict[str, int], args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    async with httpx.AsyncClient(timeout=60.0) as client:
        for _ in range(400):
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
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


def run(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """A temporary influxd and storage process around `measure`."""
    root = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    (root / "influxd").mkdir()
    influx = InfluxServer(shutil.which(INFLUXD) or INFLUXD, root / "influxd")
    influx.start()
    port = free_port()
    env = {
        **os.environ,
        "CUTOVER_PORT": str(port),
        "CUTOVER_DATA_DIR": str(root / "storage"),
        "CUTOVER_INFLUX_URL": influx.url,
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
    try:
        influx_pid = influx._proc.pid  # type: ignore[union-attr]  # the fixture keeps its Popen private
        return asyncio.run(
            measure(f"http://127.0.0.1:{port}", {"storage": proc.pid, "influxd": influx_pid}, args)
        )
    finally:
        proc.terminate()
        proc.wait(30)
        influx.close()
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
        args.batches, args.latency_batches = 8, 10
    tp, lat, dead = run(args)
    print(
        f"throughput: {tp['stored_events_per_s']:,.0f} events/s stored "
        f"({tp['accept_events_per_s']:,.0f}/s accepted), batches of {args.batch_size}"
    )
    print(
        f"accept -> stored at {lat['rate_events_per_s']:,.0f} events/s ({args.load:.0%} of that): "
        f"p50 {lat['p50_s'] * 1000:.0f} ms, p95 {lat['p95_s'] * 1000:.0f} ms, "
        f"max {lat['max_s'] * 1000:.0f} ms"
    )
    print(
        orjson.dumps(
            {
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
