"""Benchmark of one HTTP request's client-side cost, against a real influxd's ``/ping``.

Why: the harness's event loop also sends the fake Home Assistant's events, so every ms of CPU
the monitor's scrapes (about 20 requests a second) take there delays both paths' events. One
finding made this bench: without the ``sniffio`` package, httpcore (httpx's own transport)
tries ``import sniffio`` afresh each time it asks which async library runs, several times per
request, and a failed import is not cached: it searches sys.path every time.

Rows (client CPU per request of this process, and wall-clock p50):

- ``httpx (httpcore)``: the plain ``httpx.AsyncClient`` the harness and the routing pollers use,
  with the packages installed here;
- ``httpx, sniffio missing``: the same, with httpcore's probe made to fail as it does
  when sniffio is not installed (a failed import of a missing module on each call);
- ``httpx over aiohttp``: ``pipeline.common.transport.pooled_client``, the services' hot hops.

Usage: python bench/http_request.py [--requests 3000] [--quick]
Last line of output: one JSON object with the figures. ``--quick`` (300 requests) only shows
the bench still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore._synchronization as httpcore_sync
import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._influxd import running_influxd  # noqa: E402
from pipeline.common.transport import pooled_client  # noqa: E402


def _probe_without_sniffio() -> str:
    """httpcore's async-library probe as it runs when sniffio is not installed."""
    try:
        import sniffio_is_not_installed  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        return "asyncio"
    raise AssertionError("unreachable")


@contextmanager
def _sniffio_missing() -> Iterator[None]:
    original = httpcore_sync.current_async_library
    httpcore_sync.current_async_library = _probe_without_sniffio
    try:
        yield
    finally:
        httpcore_sync.current_async_library = original


async def _measure(make_client: Callable[[], httpx.AsyncClient], url: str, n: int
                   ) -> tuple[float, float]:
    """(client CPU µs per request, wall p50 ms) over ``n`` sequential GETs, after a warm-up."""
    async with make_client() as client:
        for _ in range(max(20, n // 10)):
            assert (await client.get(url)).status_code == 204
        walls = []
        cpu_started = time.process_time()
        for _ in range(n):
            started = time.perf_counter()
            response = await client.get(url)
            walls.append(time.perf_counter() - started)
            assert response.status_code == 204
        cpu = time.process_time() - cpu_started
    return cpu / n * 1e6, statistics.median(walls) * 1e3


async def _run(url: str, n: int) -> dict[str, tuple[float, float]]:
    rows = {"httpx (httpcore)": await _measure(lambda: httpx.AsyncClient(timeout=5), url, n)}
    with _sniffio_missing():
        rows["httpx, sniffio missing"] = await _measure(
            lambda: httpx.AsyncClient(timeout=5), url, n)
    rows["httpx over aiohttp"] = await _measure(lambda: pooled_client(timeout=5), url, n)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="300 requests")
    args = parser.parse_args()
    n = 300 if args.quick else args.requests
    with running_influxd() as url:
        rows = asyncio.run(_run(f"{url}/ping", n))
    installed = importlib.util.find_spec("sniffio") is not None
    table = Table(title=f"one GET /ping to a real influxd, {n:,} sequential requests per row")
    table.add_column("client")
    table.add_column("client CPU per request (µs)", justify="right")
    table.add_column("wall p50 (ms)", justify="right")
    for name, (cpu_us, p50_ms) in rows.items():
        table.add_row(name, f"{cpu_us:,.0f}", f"{p50_ms:.2f}")
    console = Console()
    console.print(table)
    console.print(f"sniffio installed here: {installed}")
    plain, missing, aio = rows.values()
    print(orjson.dumps({
        "quick": args.quick, "requests": n, "sniffio_installed": installed,
        "httpcore_cpu_us": round(plain[0], 1), "httpcore_no_sniffio_cpu_us": round(missing[0], 1),
        "aiohttp_cpu_us": round(aio[0], 1), "httpcore_p50_ms": round(plain[1], 3),
        "httpcore_no_sniffio_p50_ms": round(missing[1], 3),
        "aiohttp_p50_ms": round(aio[1], 3)}).decode())


if __name__ == "__main__":
    main()
