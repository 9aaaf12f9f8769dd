"""Home Assistant's websocket protocol as the client speaks it: one connection's commands.

A `Connection` numbers its commands (ids restart at 1 on every connection, as Home Assistant
expects) and holds the futures the client's one reader resolves when the reply with that id
comes. The errors a command (or the client) ends in live here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

__all__ = [
    "AuthInvalid",
    "CommandFailed",
    "Connection",
    "EventCallback",
    "NotConnected",
    "clip",
    "close_reason",
    "describe",
]

#: ``on_event(event, received_at_ns)``: the ``event`` object of an event frame (a dict from a
#: well-behaved server, but the callback must cope with anything) and the wall-clock time the
#: frame carrying it was read. Must not block: see `pipeline.common.ha_client`.
EventCallback = Callable[[Any, int], None]


class AuthInvalid(Exception):
    """Home Assistant refused the token; retrying will not help."""


class CommandFailed(Exception):
    """A command was answered with ``success: false``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotConnected(Exception):
    """No connection is subscribed right now (or it ended while a command waited)."""


class Connection:
    """One websocket connection: its command ids and the futures waiting for replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 1  # ids restart on every connection, as HA expects
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.subscription: int | None = None

    async def command(
        self, payload: dict[str, Any], timeout: float, *, subscription: bool = False
    ) -> dict[str, Any]:
        """Send a command and wait for the reply the reader routes to us by id."""
        msg_id = self.next_id
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        if subscription:
            # Known before the command leaves: the reply and the first events may share a frame.
            self.subscription = msg_id
        try:
            async with asyncio.timeout(timeout):  # the send too: a half-open socket can block it
                # No await between taking the id and send(): websockets writes the frame before
                # its first suspension, so ids reach HA in increasing order (else: id_reuse).
                await self.ws.send(orjson.dumps({"id": msg_id, **payload}), text=True)
                reply = await future
        except BaseException:
            if subscription:
                self.subscription = None
            raise
        finally:
            self.pending.pop(msg_id, None)
        if reply.get("type") == "result" and not reply.get("success"):
            if subscription:
                self.subscription = None
            error = reply.get("error") or {}
            raise CommandFailed(str(error.get("code", "unknown")), str(error.get("message", "")))
        return reply

    def fail_pending(self, reason: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(NotConnected(reason))
        self.pending.clear()


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def close_reason(ws: ClientConnection) -> str:
    code, reason = ws.close_code, ws.close_reason
    return f"connection closed by peer (code {code}{': ' + reason if reason else ''})"


def clip(value: object, limit: int = 120) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."
