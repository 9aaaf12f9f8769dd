"""Serving a service: uvicorn driven from code; SIGTERM runs the lifespan shutdown, where the
service flushes what it holds, and the process then exits 0."""

from __future__ import annotations

import asyncio
import faulthandler
import signal
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

__all__ = ["run_service", "serve"]


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    graceful_timeout: int = 10,
    access_log: bool = False,  # a line per request (scrapes every second) drowns the logs
    started: asyncio.Event | None = None,
) -> None:
    """Run uvicorn in the current loop until SIGTERM/SIGINT, then shut down gracefully.

    Order on SIGTERM (uvicorn's): stop accepting, let in-flight requests finish (at most
    `graceful_timeout` s), then the lifespan shutdown, where the service flushes what it holds.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        # The C parser, not h11: its per-request cost is on every hop of the new path, and
        # naming it (not "auto") makes a missing install fail here rather than slow down.
        http="httptools",
        log_config=None,  # keep our JSON logging: uvicorn's loggers propagate to the root
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if started is not None:
        watcher = asyncio.create_task(_signal_started(server, started))
    try:
        await server.serve()
    finally:
        if started is not None:
            watcher.cancel()


async def _signal_started(server: uvicorn.Server, started: asyncio.Event) -> None:
    while not server.started:
        await asyncio.sleep(0.01)
    started.set()


def run_service(app: FastAPI, host: str, port: int, *, graceful_timeout: int = 10) -> None:
    """Blocking entry point of a service process: serve, shut down gracefully, exit 0.

    SIGUSR1 dumps every thread's stack to stderr (the log): how to see where a service that
    will not stop is stuck, without stopping it."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    with _quiet_after_graceful_exit():
        asyncio.run(serve(app, host, port, graceful_timeout=graceful_timeout))


class _quiet_after_graceful_exit:
    """uvicorn re-raises the signal it handled once it has shut down; with the default handlers
    that turns a clean SIGTERM shutdown into death-by-signal (or a KeyboardInterrupt traceback).
    A supervisor must tell "flushed and exited" (status 0) from "killed", so here that re-raised
    signal, or one arriving before uvicorn listens (nothing to flush yet), exits 0."""

    _signals = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self) -> None:
        self._saved: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self._signals:
                self._saved[sig] = signal.signal(sig, _exit_cleanly)

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
