"""One client connection to the fake Home Assistant: auth phase, commands, and its send queue.

The send queue mirrors Home Assistant's ``WebSocketHandler``: every outgoing message is queued;
a writer task drains it (one JSON-array frame for everything queued when the client asked for
``coalesce_messages``); a client whose queue reaches ``max_pending`` messages, or stays at or
above ``pending_peak`` for ``pending_peak_seconds``, is closed without an error frame and what
was queued is dropped. That disconnect is what a slow ingestion client suffers in production.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from . import compressed, protocol

if TYPE_CHECKING:
    from .server import FakeHomeAssistant


class RawFrame(bytes):
    """A frame sent as is and alone (an injected fault), never merged into a coalesced array."""


class BinaryFrame(RawFrame):
    """A raw frame sent as a binary websocket frame (Home Assistant only ever sends text)."""


@dataclass(slots=True)
class Subscriptions:
    """What a connection listens to: event subscriptions by id, entity subscriptions by id."""

    events: dict[int, str] = field(default_factory=dict)  # id -> event type or MATCH_ALL
    entities: dict[int, set[str] | None] = field(default_factory=dict)  # id -> filter

    def state_changed_ids(self) -> list[int]:
        return [sid for sid, et in self.events.items()
                if et == "state_changed" or et == protocol.MATCH_ALL]


class Connection:
    """A live websocket client (see the module docstring for the queue semantics)."""

    def __init__(self, server: FakeHomeAssistant, ws: ServerConnection, conn_id: str) -> None:
        self.server = server
        self.ws = ws
        self.id = conn_id
        self.token: str | None = None
        self.authenticated = False
        self.last_id = 0
        self.coalesce = False
        self.subs = Subscriptions()
        self.queue: deque[bytes] = deque()
        self.frames_sent = 0
        self.messages_sent = 0
        self.closing = False
        self._wake = asyncio.Event()
        self._peak_timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def remote(self) -> str:
        addr = self.ws.remote_address
        return f"{addr[0]}:{addr[1]}" if addr else "?"

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the connection until the client or the server ends it."""
        cfg = self.server.config
        try:
            # The client may already have sent auth: Home Assistant reads it after this anyway.
            await self.ws.send(protocol.auth_required(cfg.ha_version), text=True)
            if not await self._auth_phase():
                return
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")
            await self._command_phase()
        except ConnectionClosed:
            pass
        finally:
            self._cancel_peak_timer()
            if self._writer is not None:
                self._writer.cancel()

    async def _auth_phase(self) -> bool:
        cfg = self.server.config
        try:
            async with asyncio.timeout(cfg.auth_timeout):
                raw = await self.ws.recv()
        except TimeoutError:
            await self.close(reason="auth_timeout")
            return False
        msg = self._parse(raw)
        if msg is None:
            await self.close(reason="invalid_frame_during_auth")
            return False
        reason = protocol.auth_format_error(msg)
        if reason is not None:
            await self.ws.send(protocol.auth_invalid(
                f"Auth message incorrectly formatted: {reason}"), text=True)
            await self.close(reason="auth_malformed")
            return False
        token = msg.get("access_token")
        if token is None or not self.server.token_valid(token):
            await self.ws.send(protocol.auth_invalid("Invalid access token or password"),
                               text=True)
            await self.close(reason="auth_invalid")
            return False
        self.token = token
        self.authenticated = True
        await self.ws.send(protocol.auth_ok(cfg.ha_version), text=True)
        self.server.note(self, "authenticated")
        return True

    async def _command_phase(self) -> None:
        async for raw in self.ws:
            await self.server.gate()  # a stalled server reads nothing
            msg = self._parse(raw)
            if msg is None:
                # Invalid JSON or a binary frame after auth: Home Assistant just closes.
                await self.close(reason="invalid_frame")
                return
            for command in msg if isinstance(msg, list) else [msg]:
                self._handle(command)

    @staticmethod
    def _parse(raw: str | bytes) -> Any:
        if isinstance(raw, bytes):
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None

    async def close(self, *, code: int = 1000, reason: str, abort: bool = False) -> None:
        if self._mark_closing(reason=reason, code=None if abort else code):
            await self._close_socket(code, abort)

    def _mark_closing(self, **why: object) -> bool:
        """Stop queueing at once (synchronously); False when already closing."""
        if self.closing:
            return False
        self.closing = True
        self.queue.clear()
        self._cancel_peak_timer()
        self.server.note(self, "closed", **why)
        return True

    async def _close_socket(self, code: int = 1000, abort: bool = False) -> None:
        if abort:
            self.ws.transport.abort()
        else:
            await self.ws.close(code)

    # -- commands --------------------------------------------------------------------------

    def _handle(self, msg: Any) -> None:
        cur = protocol.command_id(msg)
        if cur is None:
            echo = msg.get("id") if isinstance(msg, dict) else 0
            self.send(protocol.error(echo if type(echo) is int else 0,
                                     protocol.ERR_INVALID_FORMAT, "Message incorrectly formatted."))
            return
        if cur <= self.last_id:
            self.send(protocol.error(cur, protocol.ERR_ID_REUSE,
                                     "Identifier values have to increase."))
            return
        handler = self._HANDLERS.get(msg["type"])
        if handler is None:
            self.send(protocol.error(cur, protocol.ERR_UNKNOWN_COMMAND, "Unknown command."))
            return
        reason = protocol.command_format_error(msg)
        if reason is not None:
            self.send(protocol.error(cur, protocol.ERR_INVALID_FORMAT,
                                     f"Message incorrectly formatted: {reason}"))
            return
        self.last_id = cur
        handler(self, cur, msg)

    def _subscribe_events(self, cur: int, msg: dict[str, Any]) -> None:
        self.subs.events[cur] = msg.get("event_type", protocol.MATCH_ALL)
        self.send(protocol.result(cur))
        self.server.note(self, "subscribed", subscription=cur,
                         event_type=self.subs.events[cur])

    def _unsubscribe_events(self, cur: int, msg: dict[str, Any]) -> None:
        sub = msg["subscription"]
        if self.subs.events.pop(sub, None) is None and sub not in self.subs.entities:
            self.send(protocol.error(cur, protocol.ERR_NOT_FOUND, "Subscription not found."))
            return
        self.subs.entities.pop(sub, None)
        self.send(protocol.result(cur))
        self.server.note(self, "unsubscribed", subscription=sub)

    def _get_states(self, cur: int, msg: dict[str, Any]) -> None:
        self.send(protocol.result(cur, self.server.current_states()))

    def _get_config(self, cur: int, msg: dict[str, Any]) -> None:
        self.send(protocol.result(cur, self.server.ha_config()))

    def _ping(self, cur: int, msg: dict[str, Any]) -> None:
        self.send(protocol.pong(cur))

    def _supported_features(self, cur: int, msg: dict[str, Any]) -> None:
        self.coalesce = bool(msg["features"].get(protocol.FEATURE_COALESCE_MESSAGES))
        self.send(protocol.result(cur))

    def _subscribe_entities(self, cur: int, msg: dict[str, Any]) -> None:
        only = set(msg["entity_ids"]) if "entity_ids" in msg else None
        self.subs.entities[cur] = only
        self.send(protocol.result(cur))
        initial = compressed.initial(self.server.current_states(), only)
        self.send(protocol.event_frame(orjson.dumps(initial), cur))

    _HANDLERS: dict[str, Callable[[Connection, int, dict[str, Any]], None]] = {
        "subscribe_events": _subscribe_events,
        "unsubscribe_events": _unsubscribe_events,
        "get_states": _get_states,
        "get_config": _get_config,
        "ping": _ping,
        "supported_features": _supported_features,
        "subscribe_entities": _subscribe_entities,
    }

    # -- the send queue --------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """Queue a message; enforce Home Assistant's back-pressure limits."""
        if self.closing:
            return
        queue = self.queue
        queue.append(message)
        pending = len(queue)
        cfg = self.server.config
        if pending >= cfg.max_pending:
            self._backpressure_close(f"pending_{cfg.max_pending}")
            return
        if pending >= cfg.pending_peak and self._peak_timer is None:
            self._peak_timer = asyncio.get_running_loop().call_later(
                cfg.pending_peak_seconds, self._check_peak)
        if not self._wake.is_set():
            self._wake.set()

    def _check_peak(self) -> None:
        self._peak_timer = None
        if len(self.queue) >= self.server.config.pending_peak:
            self._backpressure_close(
                f"pending_peak_{self.server.config.pending_peak}"
                f"_for_{self.server.config.pending_peak_seconds:g}s")

    def _backpressure_close(self, why: str) -> None:
        # Home Assistant cancels the connection without an error frame; what was queued is lost.
        self.server.note(self, "backpressure", why=why, dropped=len(self.queue))
        if self._mark_closing(reason=f"backpressure:{why}", code=1000):
            task = asyncio.get_running_loop().create_task(self._close_socket())
            self.server.keep(task)

    def _cancel_peak_timer(self) -> None:
        if self._peak_timer is not None:
            self._peak_timer.cancel()
            self._peak_timer = None

    async def _write_loop(self) -> None:
        queue, ws, server = self.queue, self.ws, self.server
        try:
            while not self.closing:
                if not queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await server.gate()
                if server.frame_delay:
                    await asyncio.sleep(server.frame_delay)
                    if not queue:
                        continue
                if self.coalesce and len(queue) > 1 and not isinstance(queue[0], RawFrame):
                    batch = []
                    while queue and not isinstance(queue[0], RawFrame):
                        batch.append(queue.popleft())
                    count = len(batch)
                    frame = batch[0] if count == 1 else protocol.coalesce(batch)
                else:
                    count = 1
                    frame = queue.popleft()
                await ws.send(frame, text=not isinstance(frame, BinaryFrame))
                self.frames_sent += 1
                self.messages_sent += count
                server.frames_sent += 1
                server.messages_sent += count
        except ConnectionClosed:
            pass
