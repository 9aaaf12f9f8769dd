"""The fake Home Assistant: a websocket server at ``/api/websocket`` that real clients cannot
tell from the real one, firing ``state_changed`` events from a fleet at a load profile's rate,
recording each in the ledger, and taking the faults the harness injects.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import secrets
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from . import compressed, protocol
from .config import ServerConfig
from .connection import BinaryFrame, Connection, RawFrame
from .events import StateChange, event_object
from .fleet import Fleet
from .ha_config import core_config
from .history import History
from .ledger import Ledger
from .malformed import MALFORMED_EVENTS, MALFORMED_FRAMES
from .pacer import Pacer, run_pacer
from .peers import user_agent, who_closed
from .profiles import LoadProfile, ReplayProfile
from .replay import ReplaySource


@dataclass(slots=True)
class ServerStats:
    """What the fake has done so far, for the harness's monitor and the bench."""

    fired: int
    clients: int
    subscribers: int
    messages_sent: int
    frames_sent: int
    backpressure_disconnects: int
    uptime_s: float


class FakeHomeAssistant:
    """Use as ``async with FakeHomeAssistant(config, fleet=..., ledger=...) as ha:``."""

    def __init__(self, config: ServerConfig, *, fleet: Fleet, ledger: Ledger,
                 profile: LoadProfile | None = None, seed: int = 1) -> None:
        self.config = config
        self.fleet = fleet
        self.ledger = ledger
        self.connections: dict[str, Connection] = {}
        self.frame_delay = 0.0
        self.fired = 0
        self.messages_sent = 0  # across all connections, closed ones included
        self.frames_sent = 0
        self.backpressure_disconnects = 0
        self._seed = seed
        self._states: dict[str, dict[str, Any]] = {s["entity_id"]: s for s in fleet.states()}
        self.history = History(max_states=config.history_max_states,
                               commit_lag=config.history_commit_lag)
        self.history.record_states(self._states.values())  # what the recorder has at start
        self.local_zone = ZoneInfo(config.time_zone)  # naive times in requests are local
        self._source: Any = fleet
        self._profile = profile
        self._pacer: Pacer | None = None
        self._pacer_task: asyncio.Task[None] | None = None
        self._pacer_stop = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._servers: list[Server] = []
        self._listening: Server | None = None
        self._conn_seq = 0
        self._last_fired_us = 0
        self._started = time.monotonic()
        self._timers: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.config.port}/api/websocket"

    async def start(self) -> None:
        await self._listen()
        self._started = time.monotonic()
        if self._profile is not None:
            self.set_profile(self._profile)

    async def stop(self) -> None:
        """Shut down like Home Assistant: every connection closed with 1000, no goodbye."""
        self._stop_pacer()
        for task in list(self._timers):
            task.cancel()
        self._running.set()
        await self._close_connections(reason="shutdown")
        await self._close_listeners()
        self.ledger.close()

    async def __aenter__(self) -> FakeHomeAssistant:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self) -> None:
        cfg = self.config
        ping_timeout = cfg.ping_interval / 2 if cfg.ping_interval else None
        server = await serve(
            self._handler, cfg.host, cfg.port,
            process_request=self._check_path,
            max_size=cfg.max_frame,
            ping_interval=cfg.ping_interval, ping_timeout=ping_timeout,
            server_header=f"Python/3.11 aiohttp/3.13.2 HomeAssistant/{cfg.ha_version}",
        )
        if cfg.port == 0:
            cfg.port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        self._listening = server

    async def _stop_listening(self) -> None:
        if self._listening is not None:
            self._listening.close(close_connections=False)
            self._listening = None

    async def _close_listeners(self) -> None:
        for server in self._servers:
            server.close(close_connections=True, code=1000)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._listening = None

    @staticmethod
    def _check_path(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] != "/api/websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "404: Not Found\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self._conn_seq += 1
        conn = Connection(self, ws, f"c{self._conn_seq}")
        self.connections[conn.id] = conn
        self.note(conn, "opened", remote=conn.remote, agent=user_agent(ws))
        try:
            await conn.serve()
        finally:
            self.connections.pop(conn.id, None)
            if not conn.closing:  # not one of our own closes (those note themselves)
                conn.closing = True
                self.note(conn, "closed", code=ws.close_code, **who_closed(ws))

    def note(self, conn: Connection, what: str, **info: Any) -> None:
        if what == "backpressure":
            self.backpressure_disconnects += 1
        self.ledger.record_connection(conn.id, what, time.time_ns(), **info)

    def token_valid(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.config.token.encode())

    async def gate(self) -> None:
        """Returns at once unless the server is stalled."""
        if not self._running.is_set():
            await self._running.wait()

    # -- what Home Assistant knows ------------------------------------------------------------

    def current_states(self) -> list[dict[str, Any]]:
        return list(self._states.values())

    def states_by_id(self) -> dict[str, dict[str, Any]]:
        """The current states by entity id (read-only)."""
        return self._states

    def ha_config(self) -> dict[str, Any]:
        return core_config(self.config, self._states)

    # -- firing events -------------------------------------------------------------------------

    def set_profile(self, profile: LoadProfile | None) -> None:
        """Change the load while the server runs; None stops firing (manual ``fire`` only).

        A stop fires first what the profile already owed: a pacer the event loop has not woken
        for a while (a busy machine) is behind, and its due events would otherwise be lost, so
        a run's count would depend on the machine's load rather than on its schedule."""
        self._profile = profile
        now = time.monotonic()
        if profile is None:
            self._fire_owed(now)
            self._stop_pacer()
            return
        self._source = (ReplaySource(profile, random.Random(self._seed))
                        if isinstance(profile, ReplayProfile) else self.fleet)
        if self._pacer is not None and self._pacer_task is not None \
                and not self._pacer_task.done():
            self._pacer.set_profile(profile, now)
            return
        self._pacer = Pacer(profile, now)
        self._pacer_stop = asyncio.Event()
        self._pacer_task = asyncio.create_task(
            run_pacer(self._pacer, self._fire_paced, stop=self._pacer_stop,
                      batch=lambda: self._source.group_left()),
            name="fake-ha-pacer")

    def _fire_owed(self, now: float) -> None:
        if self._pacer is None or self._pacer_task is None or self._pacer_task.done():
            return
        owed = self._pacer.due(now)  # 0 while paused: a stalled server owes nothing
        if owed:
            self.fire(owed)  # a cause cut here carries on in the next fire, as documented

    def _stop_pacer(self) -> None:
        self._pacer_stop.set()
        if self._pacer_task is not None:
            self._pacer_task.cancel()
        self._pacer_task = None
        self._pacer = None

    def _next_time_fired_ns(self) -> int:
        # time_fired travels with microsecond precision; keep it unique and increasing so two
        # events never share a timestamp (InfluxDB would merge them into one point).
        us = time.time_ns() // 1000
        if us <= self._last_fired_us:
            us = self._last_fired_us + 1
        self._last_fired_us = us
        return us * 1000

    def fire(self, n: int = 1) -> list[StateChange]:
        """Fire ``n`` events now: record them in the ledger, then queue them to subscribers.

        Exactly ``n``: a cause (several changes under one context) cut at ``n`` carries on
        at the start of the next call."""
        source, stamp = self._source, self._next_time_fired_ns
        changes = [source.next_change(stamp()) for _ in range(n)]
        self._deliver(changes)
        return changes

    def _fire_paced(self, n: int) -> int:
        """What the pacer fires: up to ``n`` events, whole causes only, so the changes of one
        cause are microseconds apart as in Home Assistant. Fewer than ``n`` (maybe none) when
        the next cause does not fit; the pacer fires it once enough is due. When the profile is
        over nothing more will come due, so it fires exactly ``n``."""
        if self._pacer is None or self._pacer.over(time.monotonic()):
            return len(self.fire(n))
        source, stamp = self._source, self._next_time_fired_ns
        changes: list[StateChange] = []
        left = n
        while (size := source.group_left()) <= left:
            for _ in range(size):
                changes.append(source.next_change(stamp()))
            left -= size
        if changes:
            self._deliver(changes)
        return len(changes)

    def _deliver(self, changes: list[StateChange]) -> None:
        """Apply fired changes to the state machine and the recorder, record them in the
        ledger, then queue them to subscribers."""
        listeners = [(c, c.subs.state_changed_ids(), c.subs.entities)
                     for c in self.connections.values() if c.authenticated and not c.closing]
        event_listeners = [(c, ids) for c, ids, _ in listeners if ids]
        entity_listeners = [(c, ents) for c, _, ents in listeners if ents]
        # A connection is listed once per subscription: one that subscribed twice gets every
        # event twice, and the ledger says so (FAILURE_MODES.md #6).
        recipients = tuple(c.id for c, ids in event_listeners for _ in ids)
        states = self._states
        encoded: list[bytes] = []
        for change in changes:
            if change.new_state is None:
                states.pop(change.entity_id, None)
            else:
                states[change.entity_id] = change.new_state
            encoded.append(orjson.dumps(event_object(change)))
        self.history.record_changes(changes)
        self.ledger.record_fired([(c, recipients) for c in changes], time.time_ns())
        self.fired += len(changes)
        for conn, ids in event_listeners:
            for event_json in encoded:
                for sid in ids:
                    conn.send(protocol.event_frame(event_json, sid))
        for conn, ents in entity_listeners:
            for change in changes:
                message = orjson.dumps(compressed.change_message(change))
                for sid, only in ents.items():
                    if only is None or change.entity_id in only:
                        conn.send(protocol.event_frame(message, sid))

    # -- faults ---------------------------------------------------------------------------------

    async def _close_connections(self, *, reason: str, abort: bool = False,
                                 only: list[Connection] | None = None) -> None:
        conns = only if only is not None else list(self.connections.values())
        await asyncio.gather(*(c.close(reason=reason, abort=abort) for c in conns),
                             return_exceptions=True)

    async def drop_connections(self, *, abort: bool = False) -> int:
        """Close every client: cleanly (1000) or by aborting the TCP connection (the client
        sees 1006)."""
        n = len(self.connections)
        await self._close_connections(reason="fault:drop_abort" if abort else "fault:drop",
                                      abort=abort)
        return n

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a reference to a background task until it ends (and cancel it on stop)."""
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _later(self, delay: float, action: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            result = action()
            if asyncio.iscoroutine(result):
                await result

        self.keep(asyncio.create_task(run()))

    async def refuse_connections(self, seconds: float) -> None:
        """Stop accepting new connections for a while (connect is refused); live ones stay."""
        await self._stop_listening()
        self._later(seconds, self._listen)

    async def restart(self, downtime: float = 0.0) -> None:
        """Restart on the same port: every client closed with 1000, nothing fired while down."""
        if self._pacer is not None:
            self._pacer.pause(time.monotonic())
        await self._close_connections(reason="restart")
        await self._close_listeners()
        if downtime:
            await asyncio.sleep(downtime)
        await self._listen()
        if self._pacer is not None:
            self._pacer.resume(time.monotonic())

    def stall(self, seconds: float) -> None:
        """Stop sending, answering and firing, without closing anything, for ``seconds``."""
        self._running.clear()
        if self._pacer is not None:
            self._pacer.pause(time.monotonic())

        def resume() -> None:
            self._running.set()
            if self._pacer is not None:
                self._pacer.resume(time.monotonic())

        self._later(seconds, resume)

    def send_malformed_frame(self, kind: str = "truncated") -> int:
        """Send a broken frame to every authenticated client; returns how many got it.

        It travels alone, never inside a coalesced array: Home Assistant never queues invalid
        JSON, so the fault must break one frame, not the events that share it.
        """
        if kind not in MALFORMED_FRAMES and kind not in MALFORMED_EVENTS:
            raise ValueError(f"malformed frame kind {kind!r}: expected one of "
                             f"{', '.join([*MALFORMED_FRAMES, *MALFORMED_EVENTS])}") from None
        conns = [c for c in self.connections.values() if c.authenticated]
        for conn in conns:
            if kind in MALFORMED_EVENTS:  # on each of the client's own subscriptions
                for sid in conn.subs.state_changed_ids():
                    conn.send(RawFrame(protocol.event_frame(MALFORMED_EVENTS[kind], sid)))
            elif kind == "binary":
                conn.send(BinaryFrame(MALFORMED_FRAMES[kind]))
            else:
                conn.send(RawFrame(MALFORMED_FRAMES[kind]))
        return len(conns)

    async def revoke_token(self, new_token: str | None = None) -> str:
        """Invalidate the token: live sockets that used it are closed; returns the new one."""
        old = self.config.token
        self.config.token = new_token or secrets.token_urlsafe(24)
        await self._close_connections(
            reason="fault:token_revoked",
            only=[c for c in self.connections.values() if c.token == old])
        return self.config.token

    def slow_down(self, frame_delay: float) -> None:
        """Delay every outgoing frame by ``frame_delay`` seconds (0 restores full speed)."""
        self.frame_delay = max(0.0, frame_delay)

    # -- observation ------------------------------------------------------------------------------

    def stats(self) -> ServerStats:
        conns = list(self.connections.values())
        return ServerStats(
            fired=self.fired,
            clients=len(conns),
            subscribers=sum(1 for c in conns if c.subs.events or c.subs.entities),
            messages_sent=self.messages_sent,
            frames_sent=self.frames_sent,
            backpressure_disconnects=self.backpressure_disconnects,
            uptime_s=time.monotonic() - self._started,
        )

