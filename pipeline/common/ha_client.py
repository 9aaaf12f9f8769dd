"""The Home Assistant websocket client both legacy and websocket-ingestion use.

One connection at a time, one reader per connection. The life of a connection:

1. connect; send ``auth`` at once (HA reads it after ``auth_required`` anyway, the JS client
   does the same); wait for ``auth_ok``. ``auth_invalid`` is final: the client stops retrying
   and reports ``fatal_error`` (retrying a refused token only fills HA's log with failed logins).
2. start the reader, then send commands through it: ``supported_features``
   (coalesce_messages: from then on a frame may be a JSON array of messages) and exactly ONE
   ``subscribe_events`` for ``state_changed``. Nothing is sent before ``auth_ok``
   (FAILURE_MODES.md #4: subscribing early leaves a connection that never gets an event).
3. the reader hands every event of that subscription to ``on_event(event, received_at_ns)``,
   a plain function that must return at once (append to a list). The reader never awaits
   anything per event: Home Assistant drops a client whose queue reaches 4,096 messages, so a
   slow step here loses events (FAILURE_MODES.md #13). Command replies (``result``, ``pong``)
   are matched by id to futures in the same reader: a second reader on the socket would
   steal events it does not expect (FAILURE_MODES.md #5).
4. a heartbeat sends ``ping`` every ``ping_interval`` s; no ``pong`` within ``pong_timeout`` s
   means a half-open connection (HA or the network gone without a FIN): abort and reconnect.

A graceful ``stop()`` loses nothing the server already sent: it unsubscribes and waits for Home
Assistant's result, which comes after every event queued for the subscription (one ordered
queue per connection), so everything fired before it has reached ``on_event``; only then is the
socket closed.

Two optional hooks bracket each subscription: ``before_subscribe()`` runs right before
``subscribe_events`` is sent (no event of the new subscription can have arrived yet: a consumer
marks where the previous connections' events end), ``on_subscribed()`` once it is active (a
consumer asks history for what was fired in between; see websocket-ingestion's recovery).

Any close or error ends the connection; the client reconnects after 0, 1, 2, 3, 4, 5, 5, ... s
(times ``backoff_base``; reset once a connection is subscribed again), authenticates and
subscribes anew with ids starting from 1 (ids are per connection). Each connection subscribes
exactly once, so a reconnect can never leave two subscriptions feeding the same callback
(FAILURE_MODES.md #6). Events Home Assistant fires while no connection is subscribed are never
replayed by it: that is the one loss this client cannot prevent, only shorten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI
from websockets.http11 import USER_AGENT

from pipeline.common.aio import wait_set, within
from pipeline.common.ha_protocol import (
    AuthInvalid,
    CommandFailed,
    Connection,
    EventCallback,
    NotConnected,
    clip,
    close_reason,
    describe,
)
from pipeline.common.ha_reader import FrameReader
from pipeline.common.ha_state import HAClientState

__all__ = ["HomeAssistantClient"]

log = logging.getLogger(__name__)

#: The JS client's retry schedule, in units of ``backoff_base`` seconds.
BACKOFF_STEPS: tuple[float, ...] = (0, 1, 2, 3, 4, 5)

#: Coalesced frames can hold thousands of events and ``get_states`` of a large install is
#: megabytes; websockets' default 1 MiB limit would make the client close on them.
DEFAULT_MAX_FRAME = 64 * 1024 * 1024


class HomeAssistantClient(FrameReader):
    """See the module docstring. ``start()`` it, ``await stop()`` it; read ``state``."""

    def __init__(
        self,
        url: str,
        token: str,
        on_event: EventCallback,
        *,
        ping_interval: float = 10.0,
        pong_timeout: float = 5.0,
        backoff_base: float = 1.0,
        command_timeout: float = 10.0,
        open_timeout: float = 10.0,
        max_frame: int | None = DEFAULT_MAX_FRAME,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        before_subscribe: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
        unsubscribe_timeout: float = 2.0,
        user_agent: str | None = None,
    ) -> None:
        if ping_interval <= 0 or pong_timeout <= 0:
            raise ValueError("ping_interval and pong_timeout must be > 0")
        if backoff_base < 0:
            raise ValueError("backoff_base must be >= 0")
        self.url = url
        self._token = token
        self._on_event = on_event
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.backoff_base = backoff_base
        self.command_timeout = command_timeout
        self.open_timeout = open_timeout
        self.max_frame = max_frame
        self._wall_clock_ns = wall_clock_ns
        self._before_subscribe = before_subscribe
        # Who is connecting, in the HTTP upgrade's User-Agent: Home Assistant ignores it; a
        # test server uses it to tell the pipeline's readers apart.
        self.user_agent = user_agent
        self._on_subscribed = on_subscribed
        self.unsubscribe_timeout = unsubscribe_timeout
        self.state = HAClientState()
        self._conn: Connection | None = None  # the subscribed connection, for call()
        self._ws: ClientConnection | None = None  # the open socket, for stop()
        self._subscribed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reached_subscribed = False  # by the current connection attempt

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self.state.fatal_error = None
            if not self.state.subscribed:
                self.state.down_since = time.monotonic()  # down since start, not construction
            self._task = asyncio.create_task(self._run(), name="ha-client")
        return self._task

    async def stop(self, timeout: float = 2.0) -> None:
        """Unsubscribe (waiting for HA's result, so every event fired before it has reached
        ``on_event``), close the connection (1000) and stop reconnecting. The caller then makes
        durable what was received."""
        self._stopping.set()
        await self._unsubscribe()
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None:
            try:
                await within(ws.close(), timeout)
            except (TimeoutError, OSError):
                ws.transport.abort()
        if task is not None:
            try:
                await within(task, timeout)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
            except Exception:  # noqa: BLE001 - _run logs its own failures; stopping must finish
                log.exception("Home Assistant client ended with an error")

    async def _unsubscribe(self) -> None:
        conn = self._conn
        if conn is None or conn.subscription is None:
            return
        subscription = conn.subscription
        try:
            await conn.command({"type": "unsubscribe_events", "subscription": subscription},
                               self.unsubscribe_timeout)
        except (TimeoutError, NotConnected, CommandFailed, OSError) as exc:
            # The socket is closing or HA is gone: what it had not sent is lost either way.
            log.warning("could not unsubscribe before closing; closing anyway",
                        extra={"url": self.url, "error": describe(exc)})
            return
        conn.subscription = None  # events of it still in flight are now unexpected
        self.state.subscribed = False
        log.info("unsubscribed from Home Assistant before closing",
                 extra={"url": self.url, "subscription": subscription,
                        "events": self.state.events})

    async def wait_subscribed(self, timeout: float | None = None) -> None:
        """Return once a connection is subscribed; TimeoutError after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            await self._subscribed.wait()

    async def call(self, command_type: str, timeout: float | None = None, **fields: Any) -> Any:
        """Run a command (``get_states``, ``get_config``...) on the live connection, through the
        one reader; returns its ``result``. Raises NotConnected, CommandFailed, TimeoutError."""
        conn = self._conn
        if conn is None:
            raise NotConnected("no subscribed connection to Home Assistant")
        reply = await conn.command({"type": command_type, **fields},
                                   timeout or self.command_timeout)
        return reply.get("result")

    # -- the connection loop --------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stopping.is_set():
            if not first:
                self.state.reconnects += 1
            first = False
            self._reached_subscribed = False
            try:
                await self._connection()
            except AuthInvalid as exc:
                self.state.fatal_error = f"Home Assistant refused the token: {exc}"
                self.state.last_error = self.state.fatal_error
                log.error("Home Assistant refused the token; not retrying",
                          extra={"url": self.url, "ha_message": str(exc)})
                return
            except InvalidURI as exc:
                self.state.fatal_error = f"invalid Home Assistant URL: {exc}"
                self.state.last_error = self.state.fatal_error
                log.error("invalid Home Assistant URL; not retrying", extra={"url": self.url})
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure means: reconnect
                self.state.last_error = describe(exc)
                log.warning("Home Assistant connection failed",
                            extra={"url": self.url, "error": self.state.last_error,
                                   "attempt": attempt})
            if self._stopping.is_set():
                return
            if self._reached_subscribed:
                attempt = 0  # a connection that worked: the next one is tried at once
            delay = self.backoff_base * BACKOFF_STEPS[min(attempt, len(BACKOFF_STEPS) - 1)]
            attempt += 1
            if delay and await wait_set(self._stopping, delay):
                return

    async def _connection(self) -> None:
        """One connection, from connect to close. Raises on failures; sets
        ``_reached_subscribed`` once events flow (the backoff then starts over)."""
        ws = await connect(
            self.url,
            compression=None,  # per-message deflate costs CPU on the hot path for nothing local
            max_size=self.max_frame,
            open_timeout=self.open_timeout,
            ping_interval=None,  # the app-level heartbeat below also sees a stalled HA
            close_timeout=1.0,
            user_agent_header=self.user_agent or USER_AGENT,
        )
        self._ws = ws
        self.state.connected = True
        conn = Connection(ws)
        reader: asyncio.Task[None] | None = None
        heartbeat: asyncio.Task[None] | None = None
        abort = False
        try:
            await self._authenticate(ws)
            self.state.authenticated = True
            reader = asyncio.create_task(self._read(conn), name="ha-client-reader")
            await self._set_up(conn)
            self._reached_subscribed = True
            self._conn = conn
            self.state.subscribed = True
            self.state.down_since = None
            self.state.connects += 1
            self._subscribed.set()
            if self._on_subscribed is not None:
                self._on_subscribed()
            log.info("subscribed to Home Assistant state_changed events",
                     extra={"url": self.url, "subscription": conn.subscription,
                            "ha_version": self.state.ha_version})
            heartbeat = asyncio.create_task(self._heartbeat(conn), name="ha-client-heartbeat")
            done, _ = await asyncio.wait({reader, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
            if heartbeat in done and heartbeat.exception() is None:
                abort = True  # half-open: no close handshake to wait for
                why = f"no pong within {self.pong_timeout} s: connection is half-open"
            else:
                for task in done:
                    task.result()  # the reader's error (an abnormal close), if any
                why = close_reason(ws)
            self.state.last_error = why
            if not self._stopping.is_set():
                log.warning("Home Assistant connection lost; reconnecting",
                            extra={"url": self.url, "reason": why})
        except (TimeoutError, NotConnected):
            abort = True
            raise
        finally:
            self._subscribed.clear()
            self._conn = None
            self._ws = None
            for running in (heartbeat, reader):
                if running is not None:
                    running.cancel()
            conn.fail_pending("connection closed")
            if abort:
                ws.transport.abort()
            else:
                try:
                    await within(ws.close(), 1.0)
                except (TimeoutError, OSError):
                    ws.transport.abort()
            await asyncio.gather(*(t for t in (heartbeat, reader) if t is not None),
                                 return_exceptions=True)
            self.state.connected = self.state.authenticated = self.state.subscribed = False
            if self.state.down_since is None:
                self.state.down_since = time.monotonic()

    async def _authenticate(self, ws: ClientConnection) -> None:
        await ws.send(orjson.dumps({"type": "auth", "access_token": self._token}), text=True)
        async with asyncio.timeout(self.command_timeout):
            while True:
                raw = await ws.recv()
                msg = orjson.loads(raw)
                kind = msg.get("type") if isinstance(msg, dict) else None
                if kind == "auth_required":
                    continue
                if kind == "auth_ok":
                    self.state.ha_version = msg.get("ha_version")
                    return
                if kind == "auth_invalid":
                    raise AuthInvalid(str(msg.get("message", "auth_invalid")))
                raise ConnectionError(f"unexpected message during auth: {clip(raw)}")

    async def _set_up(self, conn: Connection) -> None:
        try:
            await conn.command({"type": "supported_features",
                                "features": {"coalesce_messages": 1}}, self.command_timeout)
        except CommandFailed as exc:  # an older HA: frames simply stay one message each
            log.info("Home Assistant does not support coalescing", extra={"error": str(exc)})
        # The one subscription of this connection (FAILURE_MODES.md #6).
        if self._before_subscribe is not None:
            self._before_subscribe()
        await conn.command({"type": "subscribe_events", "event_type": "state_changed"},
                           self.command_timeout, subscription=True)

    async def _heartbeat(self, conn: Connection) -> None:
        """Returns (normally) when a ping went unanswered: the connection is half-open."""
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await conn.command({"type": "ping"}, self.pong_timeout)
            except TimeoutError:
                self.state.heartbeat_timeouts += 1
                log.warning("Home Assistant did not answer a ping; reconnecting",
                            extra={"url": self.url, "pong_timeout_s": self.pong_timeout})
                return
