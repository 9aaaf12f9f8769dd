"""The fake weather API listening on a real port: started, stopped, and taken down and up
like a crashed and restarted service when the ``down`` fault flips."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Callable

import uvicorn

from .app import AppState, build_weather_app
from .config import WeatherConfig
from .faults import WeatherFaults

__all__ = ["WeatherServer"]


class WeatherServer:
    """``async with WeatherServer(WeatherConfig(port=0)) as weather:``; its faults are
    ``weather.faults``."""

    def __init__(
        self,
        config: WeatherConfig,
        *,
        faults: WeatherFaults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.faults = faults if faults is not None else WeatherFaults(config.seed)
        self.counts: Counter[str] = Counter()
        self.app = build_weather_app(config, self.faults, clock=clock, counts=self.counts)
        uv_config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(uv_config)
        self._task: asyncio.Task[None] | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    async def start(self) -> None:
        sockets = [] if self.faults.is_down else [self._bind()]
        if not sockets:  # started "down": still pick (and remember) the port
            self._bind().close()
        self._unwatch = self.faults.watch(self._on_down_changed)
        self._task = asyncio.create_task(self._server.serve(sockets=sockets), name="fake-weather")
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._cut()
        self._server.should_exit = self._server.force_exit = True
        if self._task is not None:
            await self._task
            self._task = None

    async def run_until_stopped(self) -> None:
        """For the standalone process: serve until uvicorn's signal handling ends the server."""
        if self._task is None:
            await self.start()
        assert self._task is not None
        await self._task
        self._cut()

    async def __aenter__(self) -> WeatherServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _bind(self) -> socket.socket:
        # Bound and listening synchronously: connections queue in the backlog from this moment,
        # so "up" takes effect at once even though uvicorn's startup is async.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(128)
        self.config.port = sock.getsockname()[1]
        return sock

    def _on_down_changed(self, down: bool) -> None:
        if down:
            self._cut()
            return
        sock = self._bind()
        self._relisten = asyncio.create_task(self._server.startup(sockets=[sock]))

    def _cut(self) -> None:
        """Stop listening and abort every open connection and in-flight request, like a crash."""
        if self._relisten is not None and not self._relisten.done():
            self._relisten.cancel()
        self._relisten = None
        for server in getattr(self._server, "servers", []):
            server.close()  # closes the listening socket: new connections are refused
        self._server.servers = []
        for conn in list(self._server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        state: AppState = self.app.state.weather
        state.interrupt.set()
        state.interrupt = asyncio.Event()
