"""One client connection to the fake Home Assistant: auth phase, commands, and its send queue.

The send queue mirrors Home Assistant's ``WebSocketHandler``: every outgoing message is queued;
a writer task drains it (one JSON-array frame for everything queued when the client asked for
``coalesce_messages``); a client whose queue reaches ``max_pending`` messages, or stays at or
above ``pending_peak`` for ``pending_peak_seconds``, is closed without an error frame and what
was queued is dropped. That disconnect is what a slow ingestion client suffers in production.

The writer is not woken by each message: like Home Assistant's ``_send_message``, a queued
message schedules a look on the event loop, and the writer is released only once the queue has
stopped growing from one look to the next. Commands a client sends back to back (say
``subscribe_events`` then ``get_states``) reach the server a loop iteration or two apart; they
are all answered before the writer runs, so their results leave in one array frame, as on a
real Home Assistant. The wait is a few loop iterations, never a timer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from . import compressed, history_api, protocol

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from .config import ServerConfig
    from .history import History


class RawFrame(bytes):
    """A frame sent as is and alone (an injected fault), never merged into a coalesced array."""


class BinaryFrame(RawFrame):
    """A raw frame sent as a binary websocket frame (Home Assistant only ever sends text)."""


_INVALID: Any = object()  # what _parse gives for a frame that is not JSON text

# Home Assistant's PENDING_MSG_MAX_FORCE_READY: with this many queued the writer goes at once.
FORCE_READY = 256


class ConnectionHost(Protocol):
    """The server as a connection sees it; ``FakeHomeAssistant`` is one. A protocol, so this
    module need not import ``server`` (which imports it)."""

    config: ServerConfig
    history: History
    local_zone: ZoneInfo
    frame_delay: float
    frames_sent: int  # across all connections
    messages_sent: int

    def note(self, conn: Connection, what: str, **info: Any) -> None: ...
    def token_valid(self, token: str) -> bool: ...
    async def gate(self) -> None: ...
    def current_states(self) -> list[dict[str, Any]]: ...
    def states_by_id(self) -> dict[str, dict[str, Any]]: ...
    def ha_config(self) -> dict[str, Any]: ...
    def keep(self, task: asyncio.Task[Any]) -> None: ...


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

    def __init__(self, server: ConnectionHost, ws: ServerConnection, conn_id: str) -> None:
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
        self._settling = False  # a look at the queue is scheduled (see the module docstring)
        self._settled_size = -1  # the queue's length at the last look
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
        if msg is _INVALID:
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
            if isinstance(raw, bytes) and raw:
                # A binary frame is for the handler its first byte names; the fake registers
                # none, and Home Assistant just logs a frame for no handler and reads on.
                continue
            msg = self._parse(raw)
            if msg is _INVALID:
                # Invalid JSON or an empty binary frame after auth: Home Assistant just closes.
                await self.close(reason="invalid_frame")
                return
            for command in msg if isinstance(msg, list) else [msg]:
                self._handle(command)

    @staticmethod
    def _parse(raw: str | bytes) -> Any:
        """The JSON in a text frame; _INVALID for a binary frame or what is not JSON."""
        if isinstance(raw, bytes):
            return _INVALID
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _INVALID

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
            # Home Assistant echoes whatever id the message had (None, "7", true...), 0 for a
            # message that is not an object; the id is not used up.
            echo = msg.get("id") if isinstance(msg, dict) else 0
            self.send(protocol.error(echo, protocol.ERR_INVALID_FORMAT,
                                     "Message incorrectly formatted."))
            return
        if cur <= self.last_id:
            self.send(protocol.error(cur, protocol.ERR_ID_REUSE,
                                     "Identifier values have to increase."))
            return
        handler = self._HANDLERS.get(msg["type"])
        if handler is None:
            self.send(protocol.error(cur, protocol.ERR_UNKNOWN_COMMAND, "Unknown command."))
            return
        # From here on the id is used up, whatever happens (HA sets last_id after the handler,
        # its schema errors included).
        self.last_id = cur
        reason = protocol.command_format_error(msg)
        if reason is not None:
            self.send(protocol.error(cur, protocol.ERR_INVALID_FORMAT, reason))
            return
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

    def _get_states(self, cur: int, _msg: dict[str, Any]) -> None:
        self.send(protocol.result(cur, self.server.current_states()))

    def _get_config(self, cur: int, _msg: dict[str, Any]) -> None:
        self.send(protocol.result(cur, self.server.ha_config()))

    def _ping(self, cur: int, _msg: dict[str, Any]) -> None:
        self.send(protocol.pong(cur))

    def _supported_features(self, cur: int, msg: dict[str, Any]) -> None:
        self.coalesce = bool(msg["features"].get(protocol.FEATURE_COALESCE_MESSAGES))
        self.send(protocol.result(cur))

    def _history_during_period(self, cur: int, msg: dict[str, Any]) -> None:
        try:
            answer = history_api.during_period(msg, self.server.history,
                                               self.server.states_by_id(),
                                               self.server.local_zone)
        except history_api.CommandError as exc:
            self.send(protocol.error(cur, exc.code, exc.message))
            return
        self.send(protocol.result(cur, answer))

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
        "history/history_during_period": _history_during_period,
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
        if not self._settling and not self._wake.is_set():
            self._settling = True
            self._settled_size = -1  # the first look always looks again
            asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        """Release the writer once the queue stopped growing between two looks (or is long)."""
        size = len(self.queue)
        if size and size != self._settled_size and size < FORCE_READY:
            self._settled_size = size
            asyncio.get_running_loop().call_soon(self._settle)
            return
        self._settling = False
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
