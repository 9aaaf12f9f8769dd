"""Benchmark of the fault proxy with no toxic: what it adds to request/reply latency at
2,000 small request/replies per second, and the most it can carry (MB/s).

Three processes, as in a real run: this one (the load), the proxy
(``python -m simulators.faultproxy --config``, read back through its API) and a TCP echo/sink
server (this file with ``--upstream``). Requests are 64-byte messages on 20 persistent
connections, sent on a fixed schedule (open loop). The figures are round trips from the
actual send; p95 from the scheduled send is shown too, so a stall would be seen (it also
holds the client's ~1 ms timer granularity). Direct and proxied runs alternate, so both see
the same machine. Throughput: one connection streams to the sink server, which answers with
the byte count at the end of the stream.

Usage: python bench/faultproxy.py [--rate 2000] [--seconds 5] [--rounds 2] [--mb 512] [--quick]
Last line of output: one JSON object with the figures (goal: added p95 <= 1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = 64
CONNECTIONS = 20


# --------------------------------------------------------------------------- upstream process


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.count = 0

    def data_received(self, data: bytes) -> None:
        self.count += len(data)

    def eof_received(self) -> bool:
        self.transport.write(self.count.to_bytes(8, "big"))
        self.transport.close()
        return True


async def _serve_upstream() -> None:
    loop = asyncio.get_running_loop()
    echo = await loop.create_server(_Echo, "127.0.0.1", 0)
    sink = await loop.create_server(_Sink, "127.0.0.1", 0)
    ports = [s.sockets[0].getsockname()[1] for s in (echo, sink)]
    print(orjson.dumps({"echo": ports[0], "sink": ports[1]}).decode(), flush=True)
    await asyncio.Event().wait()


# --------------------------------------------------------------------------- load


async def _latency_run(
    port: int, rate: int, seconds: float
) -> tuple[list[float], list[float]]:
    """``rate`` requests/s for ``seconds``: each round trip (s) from its send, and from its
    scheduled send time (which also counts the client's timer lateness and any stall)."""
    loop = asyncio.get_running_loop()
    interval = CONNECTIONS / rate
    samples: list[float] = []
    scheduled: list[float] = []
    payload = b"r" * MESSAGE
    start = loop.time() + 0.2

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            due = start + i * interval / CONNECTIONS
            end = start + seconds
            while due < end:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = loop.time()
                writer.write(payload)
                await reader.readexactly(MESSAGE)
                now = loop.time()
                samples.append(now - sent)
                scheduled.append(now - due)
                due += interval
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(CONNECTIONS)))
    return samples, scheduled


async def _throughput(port: int, total: int) -> float:
    """MB/s of a ``total``-byte stream through one connection (1 MB = 10^6 bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = os.urandom(1 << 20)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        writer.write(block)
        sent += len(block)
        await writer.drain()
    writer.write_eof()
    count = int.from_bytes(await reader.readexactly(8), "big")
    elapsed = time.perf_counter() - start
    writer.close()
    assert count == sent, (count, sent)
    return sent / elapsed / 1e6


def _pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=1000, method="inclusive")[round(p * 10) - 1] * 1e3


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="request/replies per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency run")
    parser.add_argument("--rounds", type=int, default=2, help="direct/proxied pairs of runs")
    parser.add_argument("--mb", type=int, default=512, help="MB per throughput run")
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 round, 128 MB")
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(_serve_upstream())
        return
    if args.quick:
        args.seconds, args.rounds, args.mb = 2.0, 1, 128
    console = Console()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--upstream"], stdout=subprocess.PIPE, env=env
    )
    proxy_proc: subprocess.Popen[bytes] | None = None
    try:
        assert upstream.stdout is not None
        ports = orjson.loads(upstream.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "proxies.json"
            config.write_bytes(
                orjson.dumps(
                    [
                        {"name": "echo", "listen": "127.0.0.1:0",
                         "upstream": f"127.0.0.1:{ports['echo']}"},
                        {"name": "sink", "listen": "127.0.0.1:0",
                         "upstream": f"127.0.0.1:{ports['sink']}"},
                    ]
                )
            )
            proxy_proc = subprocess.Popen(
                [sys.executable, "-m", "simulators.faultproxy", "--port", "0",
                 "--config", str(config)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
            )
            assert proxy_proc.stdout is not None
            url = proxy_proc.stdout.readline().decode().strip().removeprefix("faultproxy API on ")
        proxies = httpx.get(f"{url}/proxies", timeout=5).json()
        via = {name: int(p["listen"].rsplit(":", 1)[1]) for name, p in proxies.items()}
        proxy_ps = psutil.Process(proxy_proc.pid)

        direct: list[float] = []
        proxied: list[float] = []
        direct_sched: list[float] = []
        proxied_sched: list[float] = []
        proxy_cpu: list[float] = []
        for r in range(args.rounds):
            console.print(f"round {r + 1}/{args.rounds}: {args.rate}/s direct, then proxied ...")
            rtt, lag = asyncio.run(_latency_run(ports["echo"], args.rate, args.seconds))
            direct += rtt
            direct_sched += lag
            proxy_ps.cpu_percent()
            rtt, lag = asyncio.run(_latency_run(via["echo"], args.rate, args.seconds))
            proxied += rtt
            proxied_sched += lag
            proxy_cpu.append(proxy_ps.cpu_percent())
        console.print(f"throughput: {args.mb} MB direct, then proxied ...")
        mbps_direct = asyncio.run(_throughput(ports["sink"], args.mb * 1_000_000))
        mbps_proxied = asyncio.run(_throughput(via["sink"], args.mb * 1_000_000))
    finally:
        for proc in (proxy_proc, upstream):
            if proc is not None:
                proc.terminate()
                proc.wait(10)

    rows = {
        "direct": (direct, direct_sched),
        "through proxy": (proxied, proxied_sched),
    }
    table = Table(
        title=f"request/reply, {MESSAGE}-byte messages, {args.rate:,}/s on {CONNECTIONS} "
        f"connections, {args.rounds} x {args.seconds:g} s per path (ms)"
    )
    for col in ("path", "requests", "p50", "p95", "p99", "max", "p95 from schedule"):
        table.add_column(col, justify="right")
    for name, (s, lag) in rows.items():
        table.add_row(
            name, f"{len(s):,}", f"{_pct(s, 50):.3f}", f"{_pct(s, 95):.3f}",
            f"{_pct(s, 99):.3f}", f"{max(s) * 1e3:.3f}", f"{_pct(lag, 95):.3f}",
        )
    console.print(table)
    added_p50 = _pct(proxied, 50) - _pct(direct, 50)
    added_p95 = _pct(proxied, 95) - _pct(direct, 95)
    added_p95_sched = _pct(proxied_sched, 95) - _pct(direct_sched, 95)
    cpu = statistics.fmean(proxy_cpu)
    console.print(
        f"added by the proxy: p50 {added_p50:+.3f} ms, p95 {added_p95:+.3f} ms "
        f"(goal <= 1 ms); proxy CPU {cpu:.0f}% of a core at {args.rate:,}/s"
    )
    thr = Table(title=f"throughput, one connection, {args.mb} MB one way (MB/s)")
    thr.add_column("direct", justify="right")
    thr.add_column("through proxy", justify="right")
    thr.add_row(f"{mbps_direct:,.0f}", f"{mbps_proxied:,.0f}")
    console.print(thr)
    figures = {
        "quick": args.quick,
        "rate_per_s": args.rate,
        "requests_per_path": len(proxied),
        "direct_p50_ms": round(_pct(direct, 50), 3),
        "direct_p95_ms": round(_pct(direct, 95), 3),
        "proxy_p50_ms": round(_pct(proxied, 50), 3),
        "proxy_p95_ms": round(_pct(proxied, 95), 3),
        "proxy_p99_ms": round(_pct(proxied, 99), 3),
        "added_p50_ms": round(added_p50, 3),
        "added_p95_ms": round(added_p95, 3),
        "added_p95_from_schedule_ms": round(added_p95_sched, 3),
        "proxy_cpu_percent": round(cpu, 1),
        "throughput_direct_mb_s": round(mbps_direct, 1),
        "throughput_proxy_mb_s": round(mbps_proxied, 1),
        "goal_added_p95_le_1ms": added_p95 <= 1.0,
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
