"""Real HTTP servers on 127.0.0.1 for the kit's tests: uvicorn in the test's own event loop.

The socket is bound before the server starts, so the port is known up front and, until
`start()`, connections to it are refused (bound, not listening): a neighbour that is down.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send


class LocalServer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else
        # Nagle + delayed ACK add ~40 ms to every request).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(5):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._sock.close()


class ScriptedReceiver:
    """An ASGI receiver of event batches answering from a script of statuses.

    Each request takes the next status from `script` (then `default`). Only batches answered
    2xx are recorded as stored, as a real receiver stores exactly what it acknowledges.
    """

    def __init__(self, script: Iterable[int] = (), default: int = 200) -> None:
        self.script: deque[int] = deque(script)
        self.default = default
        self.hits = 0
        self.bodies: list[bytes] = []
        self.stored_ids: list[str] = []
        self.delay_first: float = 0.0  # stall the first request this long (client timeouts)
        self.retry_after: str | None = None  # Retry-After header on 429s
        # Events refused one by one inside a 200, as the real receivers answer an invalid
        # event: listed under "rejected" with their index, not stored.
        self.refuse_ids: set[str] = set()

    def then(self, *statuses: int) -> ScriptedReceiver:
        self.script.extend(statuses)
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.hits += 1
        if self.hits == 1 and self.delay_first:
            await asyncio.sleep(self.delay_first)
        status = self.script.popleft() if self.script else self.default
        self.bodies.append(body)
        payload: dict[str, Any] = {"status": status}
        if 200 <= status < 300:
            events = orjson.loads(body)["events"]
            refused = [i for i, e in enumerate(events) if e["context_id"] in self.refuse_ids]
            self.stored_ids.extend(e["context_id"] for i, e in enumerate(events)
                                   if i not in refused)
            payload.update(accepted=len(events) - len(refused), duplicates=0, rejected=[
                {"index": i, "context_id": events[i]["context_id"],
                 "reason": "state: must be a string"} for i in refused])
        headers = [(b"content-type", b"application/json")]
        if status == 429 and self.retry_after is not None:
            headers.append((b"retry-after", self.retry_after.encode()))
        if 400 <= status < 500 and status != 429:
            payload["detail"] = "events.0.context_id: field required"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(payload)})


class InMemoryOutbox:
    """The Outbox shape (peek / cumulative ack / depth) without the durability: for tests."""

    def __init__(self) -> None:
        self._items: deque[tuple[int, bytes]] = deque()
        self._next = 1
        self.fail_next_acks = 0  # simulate the outbox failing (disk) after a 2xx

    def put(self, payload: bytes) -> int:
        seq = self._next
        self._next += 1
        self._items.append((seq, payload))
        return seq

    async def peek(self, n: int) -> list[tuple[int, bytes]]:
        return list(self._items)[:n]

    async def ack(self, seq: int) -> None:
        if self.fail_next_acks:
            self.fail_next_acks -= 1
            raise OSError("disk full (simulated)")
        while self._items and self._items[0][0] <= seq:
            self._items.popleft()

    @property
    def depth(self) -> int:
        return len(self._items)


async def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.01) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)
