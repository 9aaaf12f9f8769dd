"""The standalone fake weather API: ``python -m simulators.weather --port 8090 --api-key KEY``,
as the process and container runtimes start it; SIGTERM stops it with exit status 0."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .config import WeatherConfig
from .server import WeatherServer

__all__ = ["main"]

DESCRIPTION = ('A fake OpenWeatherMap "current weather" API, with faults the harness switches '
               "on and off.")


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then exit with status 0."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.weather", description=DESCRIPTION
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", required=True, help="the appid clients must send")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    config = WeatherConfig(host=args.host, port=args.port, api_key=args.api_key, seed=args.seed)

    # uvicorn handles SIGTERM/SIGINT (graceful stop) and re-raises the signal afterwards; these
    # handlers turn that into exit status 0, so a supervisor can tell "stopped" from "killed".
    def exit_cleanly(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_cleanly)
    print(
        f"fake weather API on http://{config.host}:{config.port} (seed {config.seed})",
        file=sys.stderr,
    )
    asyncio.run(WeatherServer(config).run_until_stopped())


if __name__ == "__main__":
    main()
