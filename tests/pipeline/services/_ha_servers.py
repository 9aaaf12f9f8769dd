"""Small real HTTP servers in the test's event loop, for the HA-facing services' tests:

- `EventReceiver`: stands in for enrichment: records every POSTed batch, answers as the
  contract says (200 ``{"accepted": n, "rejected": []}``);
- `FakeAdmin`: stands in for admin-api's ``GET /api/v1/migration``: serves a routing table,
  extended to now + lead on every request, or frozen (not extended) to make events wait;
- `HttpServer`: uvicorn on a fixed port that can be stopped and started again (a neighbour
  that goes down and comes back at the same address).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.common.routing import RoutingTable
from tests.fixtures.influx import free_port
from tests.pipeline.keys import key_of


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def get_json(url: str) -> Any:
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.get(url)
        return response.json()


async def wait_for_stats(url: str, predicate: Callable[[dict[str, Any]], bool],
                         timeout: float = 10.0, what: str = "stats") -> dict[str, Any]:
    """Poll ``{url}/api/v1/stats`` until ``predicate(stats)``; the last stats in the error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stats: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                response = await client.get(f"{url}/api/v1/stats")
                if response.status_code == 200:
                    stats = response.json()
                    if predicate(stats):
                        return stats
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}: {stats}")
            await asyncio.sleep(0.02)


class HttpServer:
    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # IPPROTO_TCP: asyncio then sets TCP_NODELAY (no 40 ms Nagle/delayed-ACK stalls).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(5):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


class EventReceiver:
    """Records ``POST /api/v1/events`` batches (an enrichment stand-in)."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]

    def counts(self) -> Counter[str]:
        return Counter(key_of(e) for e in self.events)

    def ids(self) -> set[str]:
        return {key_of(e) for e in self.events}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/api/v1/events" or scope["method"] != "POST":
            await _respond(send, 404, {"error": "not found"})
            return
        events = orjson.loads(body)["events"]
        self.batches.append(events)
        await _respond(send, 200, {"accepted": len(events), "rejected": []})


class FakeAdmin:
    """``GET /api/v1/migration`` -> the table, valid until now + lead (unless frozen)."""

    def __init__(self, table: RoutingTable, lead_s: float = 0.5) -> None:
        self.table = table
        self.lead_ns = int(lead_s * 1e9)
        self.frozen = False

    def announce(self, *, new_percent: int, shadow: bool) -> int:
        """Append a change at the earliest allowed boundary; returns it (ns)."""
        self.table = self.table.announce(new_percent=new_percent, shadow=shadow,
                                         now_ns=time.time_ns(), lead_ns=self.lead_ns)
        return self.table.entries[-1].effective_from_ns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if scope["path"] != "/api/v1/migration":
            await _respond(send, 404, {"error": "not found"})
            return
        if not self.frozen:
            self.table = self.table.extended(now_ns=time.time_ns(), lead_ns=self.lead_ns)
        await _respond(send, 200, orjson.loads(self.table.to_json()))


async def _respond(send: Send, status: int, body: Any) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
