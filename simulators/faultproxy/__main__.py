"""``python -m simulators.faultproxy --host 127.0.0.1 --port 8474 [--config proxies.json]
[--allow-remote-listen]``

Serves the Toxiproxy-compatible API (``GET /version`` is the health check) and, with
``--config``, creates the proxies of a JSON list of ``{name, listen, upstream, enabled}``
first, as ``toxiproxy-server -config`` does. Proxies listen on loopback only unless
``--allow-remote-listen`` is given (see listen.py). Prints one line when ready; SIGTERM or
SIGINT closes every proxy and connection and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import orjson

from simulators.faultproxy.errors import FaultProxyError
from simulators.faultproxy.server import FaultProxy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.faultproxy",
        description="TCP fault proxy with a Toxiproxy-compatible HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port; 0 = a free one")
    parser.add_argument("--config", type=Path, help="JSON list of proxies to create at start")
    parser.add_argument("--seed", type=int, help="seed for toxicity, jitter and slicer sizes")
    parser.add_argument(
        "--allow-remote-listen",
        action="store_true",
        help="let proxies listen on addresses other than loopback (127.0.0.1, ::1, localhost);"
        " without it the API refuses them with 400",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fp = FaultProxy(
        host=args.host,
        api_port=args.port,
        seed=args.seed,
        allow_remote_listen=args.allow_remote_listen,
    )
    try:
        # Proxies first, API second: once /version answers, the configured proxies exist.
        if args.config is not None:
            try:
                proxies = await fp.populate(orjson.loads(args.config.read_bytes()))
            except (OSError, orjson.JSONDecodeError, FaultProxyError) as exc:
                print(f"faultproxy: --config {args.config}: {exc}", file=sys.stderr)
                return 2
            for proxy in proxies:
                print(
                    f"faultproxy: {proxy.name} {proxy.listen} -> {proxy.upstream}"
                    f"{'' if proxy.enabled else ' (disabled)'}",
                    file=sys.stderr,
                )
        try:
            await fp.start()
        except OSError as exc:
            print(f"faultproxy: API on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(f"faultproxy API on {fp.api_url}", flush=True)
        await stop.wait()
    finally:
        await fp.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
