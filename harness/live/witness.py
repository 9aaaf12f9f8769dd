"""The witness: the harness's own subscription to a live Home Assistant, kept as the ledger.

Against the fake, the ledger is written by the server that fires the events. Against a Home
Assistant the harness did not start, the only ground truth is what that server tells a client
that is not under test: the witness subscribes to ``state_changed`` before any service starts
and records every event it receives (entity, time_fired, state, context) in a `Ledger`.

The witness is a client too, so it can miss events while it reconnects (Home Assistant never
replays). After every resubscription it asks the recorder for the gap
(``history/history_during_period``), waiting out the recorder's commit lag first, and records
what it had not seen. History has no context ids: those entries carry `UNKNOWN_CONTEXT`.

The books: the ledger holds what Home Assistant fired from the moment the pipeline's own clients
are subscribed (`open_books`) to the end of the plan (`close_books`); before, the pipeline did
not exist yet, and after, it is not bound to store anything. Those are counted
(``outside_books``), not judged. Who received an event is not visible from outside Home
Assistant: every entry is recorded with ``("live",)``, and zero loss means the pipeline stored
every one, including what it missed while reconnecting and had to read back from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from harness.errors import WitnessError
from pipeline.common.events import BadEvent, EventKey
from pipeline.common.ha_history import UNKNOWN_CONTEXT, ns_from_history_time
from pipeline.common.normalise import parse_time
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.timefmt import iso_from_ns

__all__ = ["DELIVERED", "UNKNOWN_CONTEXT", "Witness", "WitnessError"]

log = logging.getLogger(__name__)

#: The ledger's connection for an event fired while the pipeline's clients were subscribed.
DELIVERED = ("live",)
#: How long the recorder may take to commit a state (it commits in the background, ~1 s).
RECORDER_LAG_S = 3.0
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class Witness:
    """A subscription that records every ``state_changed`` into ``ledger``; see the module."""

    def __init__(self, url: str, token: str, ledger: Ledger, *,
                 recorder_lag_s: float = RECORDER_LAG_S) -> None:
        self.url = url
        self._token = token  # never logged, never in an error message
        self.ledger = ledger
        self.recorder_lag_s = recorder_lag_s
        self.received = 0  # events from the subscription
        self.outside_books = 0  # fired before the books opened or after they closed
        self.recovered = 0  # events filled in from history after a gap
        self.reconnects = 0
        self.ha_version = "?"
        self._entities: set[str] = set()
        self._last_ns: int | None = None  # time_fired of the newest event seen
        # The books, in Home Assistant's time: events after _books_from_ns, up to
        # _books_until_ns (None: still open). _books_from_ns None: not opened yet.
        self._books_from_ns: int | None = None
        self._books_until_ns: int | None = None
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._fills: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._sub_id = 0
        self._closing = False

    # -- the books --------------------------------------------------------------------------

    @property
    def books_open(self) -> bool:
        return self._books_from_ns is not None and self._books_until_ns is None

    def open_books(self) -> None:
        """From the newest event seen on (Home Assistant's clock), every event is judged."""
        self._books_from_ns = self._last_ns if self._last_ns is not None else time.time_ns()
        self._books_until_ns = None
        self.ledger.record_books(self._books_from_ns, None)

    def close_books(self) -> None:
        """Events fired after the newest one seen are no longer judged."""
        if self._books_from_ns is not None and self._books_until_ns is None:
            self._books_until_ns = self._last_ns if self._last_ns is not None else time.time_ns()
            self.ledger.record_books(self._books_from_ns, self._books_until_ns)

    def _in_books(self, t_ns: int) -> bool:
        start, until = self._books_from_ns, self._books_until_ns
        return start is not None and t_ns > start and (until is None or t_ns <= until)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, timeout: float = 20.0) -> None:
        """Connect and subscribe; `WitnessError` (saying why, without the token) otherwise."""
        self._task = asyncio.get_running_loop().create_task(self._run_first())
        waiter = asyncio.ensure_future(self._subscribed.wait())
        done, _ = await asyncio.wait({self._task, waiter}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task in done:
                self._task.result()  # raises the WitnessError
            await self.stop()
            raise WitnessError(f"Home Assistant at {self.url} did not accept a subscription "
                               f"within {timeout:g} s")

    async def stop(self) -> None:
        self._closing = True
        for task in [self._task, *self._fills]:
            if task is not None:
                task.cancel()
        for task in [self._task, *self._fills]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            await self._ws.close()

    async def _run_first(self) -> None:
        # The first connection must work (bad URL, bad token: the run cannot start); later
        # ones are retried for as long as the run lasts.
        await self._session(first=True)
        failures = 0
        while not self._closing:
            await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
            log.warning("witness lost its subscription; reconnecting")
            try:
                await self._session(first=False)
                failures = 0
            except (OSError, WitnessError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                failures += 1
                log.warning("witness could not reconnect", extra={"error": str(exc)})

    async def _session(self, *, first: bool) -> None:
        try:
            ws = await connect(self.url, max_size=None, open_timeout=10, ping_interval=20)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            if first:
                raise WitnessError(f"cannot connect to Home Assistant at {self.url}: {exc}") \
                    from None
            raise
        self._ws = ws
        try:
            await self._authenticate(ws)
            reader = asyncio.get_running_loop().create_task(self._read(ws))
            try:
                self._sub_id = await self._subscribe(ws)
                states = await self._command(ws, {"type": "get_states"})
                self._entities.update(s["entity_id"] for s in states if isinstance(s, dict))
                gap_from = self._last_ns
                if not first:
                    self.reconnects += 1
                    if gap_from is not None:
                        self._spawn_fill(gap_from, time.time_ns())
                self._subscribed.set()
                await reader
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await reader
        except ConnectionClosed:
            if first and not self._subscribed.is_set():
                raise WitnessError(f"Home Assistant at {self.url} closed the connection "
                                   "before the witness was subscribed") from None
        finally:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            await ws.close()

    async def _authenticate(self, ws: ClientConnection) -> None:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if hello.get("type") != "auth_required":
            raise WitnessError(f"{self.url} is not a Home Assistant websocket API "
                               f"(first message type {hello.get('type')!r})")
        self.ha_version = str(hello.get("ha_version", "?"))
        await ws.send(orjson.dumps({"type": "auth", "access_token": self._token}).decode())
        answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer.get("type") != "auth_ok":
            raise WitnessError(f"Home Assistant at {self.url} refused the token: "
                               f"{answer.get('message', answer.get('type'))}")

    async def _subscribe(self, ws: ClientConnection) -> int:
        sub_id = next(self._ids)
        await self._command(ws, {"type": "subscribe_events", "event_type": "state_changed"},
                            msg_id=sub_id)
        return sub_id

    async def _command(self, ws: ClientConnection, command: dict[str, Any], *,
                       msg_id: int | None = None, timeout: float = 30.0) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await ws.send(orjson.dumps({"id": msg_id, **command}).decode())
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(msg_id, None)

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            doc = orjson.loads(frame)
            for msg in doc if isinstance(doc, list) else [doc]:  # coalesced frames are arrays
                self._dispatch(msg)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "event" and msg.get("id") == self._sub_id:
            self._record([msg.get("event")])
            self.received += 1
        elif kind == "result":
            future = self._pending.get(msg.get("id", -1))
            if future is not None and not future.done():
                if msg.get("success"):
                    future.set_result(msg.get("result"))
                else:
                    future.set_exception(WitnessError(f"Home Assistant refused a command: "
                                                      f"{msg.get('error')}"))

    # -- recording ---------------------------------------------------------------------------

    def _record(self, events: Iterable[Any]) -> None:
        batch = []
        for event in events:
            change = _change(event)
            if change is None:
                continue
            self._entities.add(change.entity_id)
            if self._last_ns is None or change.time_fired_ns > self._last_ns:
                self._last_ns = change.time_fired_ns
            if self._in_books(change.time_fired_ns):
                batch.append((change, DELIVERED))
            else:
                self.outside_books += 1
        self.ledger.record_fired(batch, emitted_ns=time.time_ns())

    def _spawn_fill(self, start_ns: int, end_ns: int) -> None:
        task = asyncio.get_running_loop().create_task(self._fill(start_ns, end_ns))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _fill(self, start_ns: int, end_ns: int) -> None:
        """Record from history what was fired in [start, end] and the witness did not see."""
        await asyncio.sleep(self.recorder_lag_s)
        ws = self._ws
        if ws is None or not self._entities:
            return
        try:
            answer = await self._command(ws, {
                "type": "history/history_during_period",
                "start_time": iso_from_ns(start_ns), "end_time": iso_from_ns(end_ns),
                "entity_ids": sorted(self._entities), "include_start_time_state": False,
                "significant_changes_only": False, "minimal_response": False,
                "no_attributes": True})
        except (WitnessError, ConnectionClosed, TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and self._closing:
                raise
            log.error("witness could not read Home Assistant's history for its gap",
                      extra={"start": iso_from_ns(start_ns), "end": iso_from_ns(end_ns),
                             "error": str(exc)})
            return
        missed = []
        for entity_id, states in (answer or {}).items():
            for state in states:
                t_ns = ns_from_history_time(state.get("lu"))
                if t_ns is None or not start_ns <= t_ns <= end_ns:
                    continue
                if self.ledger.find(EventKey(entity_id, t_ns)) is not None:
                    continue
                if not self._in_books(t_ns):
                    self.outside_books += 1
                    continue
                missed.append((StateChange(entity_id, None, {"state": state.get("s")},
                                           UNKNOWN_CONTEXT, t_ns), DELIVERED))
        missed.sort(key=lambda pair: pair[0].time_fired_ns)
        self.ledger.record_fired(missed, emitted_ns=time.time_ns())
        self.recovered += len(missed)
        log.info("witness filled its gap from history",
                 extra={"start": iso_from_ns(start_ns), "end": iso_from_ns(end_ns),
                        "recovered": len(missed)})


def _change(event: Any) -> StateChange | None:
    """A state_changed event as the ledger records it; None for anything it cannot name."""
    try:
        data = event["data"]
        entity_id = data["entity_id"]
        time_fired_ns = parse_time(event["time_fired"], "event.time_fired")
        context_id = (event.get("context") or {}).get("id") or UNKNOWN_CONTEXT
    except (KeyError, TypeError, AttributeError, BadEvent):
        log.warning("witness got an event it cannot read", extra={"event": str(event)[:200]})
        return None
    if len(context_id) != 26:
        context_id = UNKNOWN_CONTEXT
    return StateChange(entity_id, data.get("old_state"), data.get("new_state"), context_id,
                       time_fired_ns)
