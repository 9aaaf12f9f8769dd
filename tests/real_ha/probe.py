"""One websocket probe, run unchanged against the fake and against a real Home Assistant.

A raw ``websockets`` client (not the pipeline's) that walks the protocol HA_PROTOCOL.md
describes and records, per aspect, the SHAPE of what came back: key order, value kinds
(``iso8601-us-utc``, ``ulid``, ``str``, ``float``...), error codes and messages, close codes.
Values that differ between two servers by nature (versions, states, timestamps, ids of
contexts) are reduced to their kind, so the two reports compare with ``==`` aspect by aspect.

The probe only reads events; the caller says how they come: a real HA makes them itself (its
automations), the fake fires them when asked (``EventSource.produce``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

ISO_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
RECV_TIMEOUT_S = 5.0
# Keys whose values say what they are (types, codes, messages): kept verbatim in shapes.
LITERAL_KEYS = frozenset({"type", "success", "code", "message", "event_type", "origin", "id"})
# Entity-specific payloads: only their kind is compared.
OPAQUE_KEYS = frozenset({"attributes", "a"})
NEVER_FIRED = "ha_cutover_probe_never_fired"  # an event type nothing fires: a quiet subscription

# Auth messages sent instead of a good one, each on its own connection: name -> frame.
BAD_AUTH: dict[str, Any] = {
    "bad_token": {"type": "auth", "access_token": "not-a-valid-token"},
    "auth_with_id": {"type": "auth", "access_token": "<token>", "id": 1},
    "auth_without_token": {"type": "auth"},
    "auth_wrong_type": {"type": "login", "access_token": "<token>"},
    "auth_token_not_str": {"type": "auth", "access_token": 42},
    "auth_not_object": [],
    "auth_invalid_json": b"{not json",  # sent as a text frame
    "auth_binary_frame": bytearray(b"\x00\x01"),  # sent as a binary frame
}

# Commands that fail before any handler runs: name -> frame.
MALFORMED_COMMANDS: dict[str, Any] = {
    "no_id": {"type": "ping"},
    "id_str": {"id": "7", "type": "ping"},
    "id_bool": {"id": True, "type": "ping"},
    "id_zero": {"id": 0, "type": "ping"},
    "id_negative": {"id": -1, "type": "ping"},
    "no_type": {"id": 7},
    "type_not_str": {"id": 7, "type": 5},
    "not_object": 42,
}


class EventSource(Protocol):
    """How the server under probe comes to fire state changes."""

    async def produce(self, n: int) -> None:
        """Make about ``n`` state changes happen soon (a real HA makes its own: no-op)."""


class SelfFiring:
    """A real Home Assistant: its automations fire several state changes per second."""

    async def produce(self, n: int) -> None:
        return None


@dataclass
class ProbeReport:
    aspects: dict[str, Any] = field(default_factory=dict)  # compared between servers
    stats: dict[str, Any] = field(default_factory=dict)  # measured, not compared


def kind(value: Any) -> str:
    """What a JSON value is, without what it says."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        if ISO_US.match(value):
            return "iso8601-us-utc"
        return "ulid" if ULID.match(value) else "str"
    return "list" if isinstance(value, list) else "object"


def shape(value: Any, literal: frozenset[str] = LITERAL_KEYS) -> Any:
    """Key order and kinds of a JSON value; the values of ``literal`` keys kept as they are.

    A context's ``parent_id`` / ``user_id`` are set or not depending on what caused a change,
    so they read ``null-or-<kind>``: the probe compares their presence and type, not which
    events happened to be caused by something.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in ("state", "s") and isinstance(v, str):
                out[k] = "str"  # a scene's state is a timestamp: still just a state string
            elif k == "parent_id" and (v is None or kind(v) == "ulid"):
                out[k] = "null-or-ulid"
            elif k == "user_id" and (v is None or isinstance(v, str)):
                out[k] = "null-or-str"
            elif k in OPAQUE_KEYS:
                out[k] = kind(v)
            elif (k in literal and not isinstance(v, dict | list)
                  and kind(v) not in ("ulid", "iso8601-us-utc")):
                out[k] = v
            else:
                out[k] = shape(v, literal)
        return out
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:  # distinct item shapes, in first-seen order
            if (s := shape(item, literal)) not in shapes:
                shapes.append(s)
        return shapes
    return kind(value)


def shapes_of(values: Iterable[Any]) -> list[Any]:
    """The distinct shapes of many values, in a stable order (for set-like comparison)."""
    distinct = {orjson.dumps(shape(v)).decode() for v in values}
    return [orjson.loads(s) for s in sorted(distinct)]


async def _recv(ws: ClientConnection, timeout: float = RECV_TIMEOUT_S) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _send(ws: ClientConnection, message: Any) -> None:
    if isinstance(message, bytearray):
        await ws.send(bytes(message))  # bytes: websockets sends a binary frame
    elif isinstance(message, bytes):
        await ws.send(message.decode(errors="replace"))  # raw text, not JSON
    else:
        await ws.send(orjson.dumps(message).decode())


async def _until_closed(ws: ClientConnection, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
    """Frames the server still sends, then how it closes (or that it kept the line open)."""
    frames: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            frames.append(await _recv(ws, left))
    except websockets.ConnectionClosed:
        return {"frames_then": [shape(f) for f in frames], "close_code": ws.close_code,
                "close_reason": ws.close_reason}
    except TimeoutError:
        pass
    return {"frames_then": [shape(f) for f in frames], "close_code": "still open"}


async def _connect(url: str) -> ClientConnection:
    return await websockets.connect(url, open_timeout=10.0, max_size=None)


async def _authed(url: str, token: str) -> ClientConnection:
    ws = await _connect(url)
    await _recv(ws)  # auth_required
    await _send(ws, {"type": "auth", "access_token": token})
    reply = await _recv(ws)
    if reply.get("type") != "auth_ok":
        raise AssertionError(f"auth refused: {reply}")
    return ws


class Replies:
    """Reads one authenticated connection: replies by id, events kept aside, arrays unpacked."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.frames: list[str] = []  # "object" / "array(n)" per frame received, in order
        self._pending: list[Any] = []

    async def next(self, timeout: float = RECV_TIMEOUT_S) -> Any:
        while not self._pending:  # (an empty array frame holds nothing: read on)
            frame = await _recv(self.ws, timeout)
            if isinstance(frame, list):
                self.frames.append(f"array({len(frame)})")
                self._pending.extend(frame)
            else:
                self.frames.append("object")
                self._pending.append(frame)
        return self._pending.pop(0)

    async def reply(self, msg_id: int | None, timeout: float = RECV_TIMEOUT_S) -> Any:
        """The next message that is not an event (an event is kept in ``events``); with
        ``msg_id`` None, whatever id it echoes (a malformed command's may be anything)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(message, dict) and message.get("type") == "event":
                self.events.append(message)
                continue
            if msg_id is not None and isinstance(message, dict) and message.get("id") != msg_id:
                raise AssertionError(f"expected the reply to {msg_id}, got {message}")
            return message

    async def event(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        while True:
            message = await self.next(timeout)
            if isinstance(message, dict) and message.get("type") == "event":
                return message

    async def command(self, message: dict[str, Any]) -> Any:
        await _send(self.ws, message)
        return await self.reply(message["id"])


async def probe(url: str, token: str, source: EventSource, *, context_window_s: float = 6.0,
                context_events: int = 60) -> ProbeReport:
    """Walk the protocol against the server at ``url``; see the module docstring."""
    report = ProbeReport()
    started = datetime.now(UTC)
    await _probe_auth(url, token, report)
    await _probe_commands(url, token, source, report, started)
    await _probe_coalescing(url, token, report)
    await _probe_contexts(url, token, source, report, context_window_s, context_events)
    return report


async def _probe_auth(url: str, token: str, report: ProbeReport) -> None:
    ws = await _connect(url)
    report.aspects["auth_required"] = shape(await _recv(ws))
    await _send(ws, {"type": "auth", "access_token": token})
    report.aspects["auth_ok"] = shape(await _recv(ws))
    await ws.close()
    for name, message in BAD_AUTH.items():
        if isinstance(message, dict):
            message = {k: token if v == "<token>" else v for k, v in message.items()}
        ws = await _connect(url)
        await _recv(ws)
        await _send(ws, message)
        report.aspects[f"auth:{name}"] = await _until_closed(ws)
        await ws.close()
    # A client may send auth before auth_required arrives (the JS client does).
    ws = await _connect(url)
    await _send(ws, {"type": "auth", "access_token": token})
    report.aspects["auth_before_auth_required"] = [shape(await _recv(ws)), shape(await _recv(ws))]
    await ws.close()
    # After auth, invalid JSON ends the connection without an error message.
    ws = await _authed(url, token)
    await _send(ws, BAD_AUTH["auth_invalid_json"])
    report.aspects["after_auth:invalid_json"] = await _until_closed(ws)
    await ws.close()
    # A binary frame goes to the binary handler its first byte names (assist audio): an empty
    # one ends the connection; one naming no handler is ignored (HA only logs it).
    ws = await _authed(url, token)
    await _send(ws, bytearray())
    report.aspects["after_auth:empty_binary_frame"] = await _until_closed(ws)
    await ws.close()
    ws = await _authed(url, token)
    await _send(ws, bytearray(b"\x00\x01"))
    after = await _until_closed(ws, timeout=1.5)
    if after["close_code"] == "still open":
        await _send(ws, {"id": 1, "type": "ping"})
        after["then_ping"] = await _recv(ws)
    await ws.close()
    report.aspects["after_auth:binary_frame_for_no_handler"] = after


async def _probe_commands(url: str, token: str, source: EventSource, report: ProbeReport,
                          started: datetime) -> None:
    ws = await _authed(url, token)
    r = Replies(ws)
    a = report.aspects
    a["ping"] = await r.command({"id": 1, "type": "ping"})
    a["id_reuse"] = await r.command({"id": 1, "type": "ping"})
    a["unknown_command"] = await r.command({"id": 2, "type": "no_such_command"})
    a["unknown_command:then_same_id"] = await r.command({"id": 2, "type": "ping"})
    for name, message in MALFORMED_COMMANDS.items():
        await _send(ws, message)
        a[f"invalid_format:{name}"] = await r.reply(None)
    # {"id": 7} above failed the envelope: 7 must not have become the last id.
    a["invalid_format:envelope_then_lower_id"] = await r.command({"id": 3, "type": "ping"})
    # Fails the command's own schema (the handler's voluptuous schema, not the envelope), and
    # then the same id again: does a schema error use up its id?
    a["invalid_format:schema_event_type"] = await r.command(
        {"id": 4, "type": "subscribe_events", "event_type": 42})
    a["invalid_format:schema_then_same_id"] = await r.command({"id": 4, "type": "ping"})
    a["invalid_format:schema_extra_key"] = await r.command({"id": 5, "type": "ping", "x": 1})
    a["invalid_format:schema_missing_key"] = await r.command(
        {"id": 6, "type": "unsubscribe_events"})

    states = (await r.command({"id": 10, "type": "get_states"}))
    a["get_states:reply"] = shape({k: v for k, v in states.items() if k != "result"})
    a["get_states:state_key_orders"] = sorted({tuple(s) for s in states["result"]})
    a["get_states:state_shapes"] = shapes_of(states["result"])
    config = await r.command({"id": 11, "type": "get_config"})
    a["get_config:reply"] = shape({k: v for k, v in config.items() if k != "result"})
    a["get_config:keys"] = {k: kind(v) for k, v in sorted(config["result"].items())}
    a["get_config:state"] = config["result"].get("state")

    a["subscribe_events:result"] = await r.command(
        {"id": 12, "type": "subscribe_events", "event_type": "state_changed"})
    await source.produce(10)
    events = [await r.event() for _ in range(8)]
    a["event:frame_shapes"] = shapes_of(events)
    a["event:frame_key_order"] = sorted({tuple(e) for e in events})
    a["event:event_key_order"] = sorted({tuple(e["event"]) for e in events})
    a["event:data_key_order"] = sorted({tuple(e["event"]["data"]) for e in events})
    a["event:state_key_order"] = sorted({tuple(e["event"]["data"][s]) for e in events
                                         for s in ("old_state", "new_state")
                                         if e["event"]["data"][s] is not None})
    a["event:context_shape"] = shapes_of(e["event"]["context"] for e in events)
    a["event:time_fired_kind"] = sorted({kind(e["event"]["time_fired"]) for e in events})
    a["event:context_is_new_state_context"] = all(
        e["event"]["context"] == e["event"]["data"]["new_state"]["context"] for e in events)
    a["event:time_fired_is_new_state_last_updated"] = all(
        e["event"]["time_fired"] == e["event"]["data"]["new_state"]["last_updated"]
        for e in events)
    a["event:subscription_id"] = sorted({e["id"] for e in events})

    a["unsubscribe_events"] = await r.command(
        {"id": 13, "type": "unsubscribe_events", "subscription": 12})
    a["unsubscribe_events:again"] = await r.command(
        {"id": 14, "type": "unsubscribe_events", "subscription": 12})
    a["unsubscribe_events:never_subscribed"] = await r.command(
        {"id": 15, "type": "unsubscribe_events", "subscription": 999})

    entity_ids = sorted({e["event"]["data"]["entity_id"] for e in events})[:3]
    await asyncio.sleep(1.5)  # the recorder commits every second: let the events land
    base = {"type": "history/history_during_period", "start_time": started.isoformat(),
            "end_time": datetime.now(UTC).isoformat(), "include_start_time_state": False,
            "significant_changes_only": False, "minimal_response": False,
            "no_attributes": False}
    a["history:missing_entity_ids"] = await r.command({"id": 16, **base})
    a["history:bad_start_time"] = await r.command(
        {"id": 17, **base, "start_time": "yesterday", "entity_ids": entity_ids})
    answer = await r.command({"id": 18, **base, "entity_ids": entity_ids})
    a["history:reply"] = shape({k: v for k, v in answer.items() if k != "result"})
    result = answer.get("result")
    if isinstance(result, dict):
        a["history:result_keys_are_asked_entities"] = (
            set(result) <= set(entity_ids) and bool(result)
        )
        rows = [s for states_of_one in result.values() for s in states_of_one]
        a["history:compressed_state_shapes"] = shapes_of(rows)
        # HA leaves lc out when it equals lu (the state itself did not change).
        a["history:lc_only_when_it_differs_from_lu"] = all(
            ("lc" in s) == (s.get("lc", s.get("lu")) != s.get("lu")) for s in rows)
        report.stats["history_rows"] = {k: len(v) for k, v in result.items()}
    else:
        a["history:result_keys_are_asked_entities"] = f"result is {kind(result)}"
        a["history:compressed_state_shapes"] = f"result is {kind(result)}"
        a["history:lc_only_when_it_differs_from_lu"] = f"result is {kind(result)}"
    a["coalesced_without_the_feature"] = any(f != "object" for f in r.frames)
    await ws.close()


async def _send_together(ws: ClientConnection, *messages: Any) -> None:
    """Several text frames in ONE transport write, so the server reads them in one go.

    Sent by separate ``send`` calls, two frames reach Home Assistant in one read or in two
    depending on timing, and HA's writer only coalesces what is queued when it runs: measured
    on 2025.4.4, 21-22 of 50 such pairs came back as one array. One write makes it certain.
    """
    for message in messages:
        ws.protocol.send_text(orjson.dumps(message))
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


async def _probe_coalescing(url: str, token: str, report: ProbeReport,
                            separate_tries: int = 10) -> None:
    ws = await _authed(url, token)
    r = Replies(ws)
    report.aspects["supported_features"] = await r.command(
        {"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
    # subscribe_events then get_states, back to back, as the JS client does after auth.
    await _send_together(ws, {"id": 2, "type": "subscribe_events", "event_type": NEVER_FIRED},
                         {"id": 3, "type": "get_states"})
    first, second = await r.reply(2), await r.reply(3)
    report.aspects["coalescing:frames"] = r.frames[1:]  # after supported_features' own reply
    report.aspects["coalescing:replies"] = [shape({k: v for k, v in m.items() if k != "result"})
                                           for m in (first, second)]
    # The same pair by two separate sends: how often it still comes back as one array.
    together = 0
    for i in range(separate_tries):
        msg_id = 10 + 2 * i
        before = len(r.frames)
        await _send(ws, {"id": msg_id, "type": "subscribe_events", "event_type": NEVER_FIRED})
        await _send(ws, {"id": msg_id + 1, "type": "get_states"})
        await r.reply(msg_id)
        await r.reply(msg_id + 1)
        together += r.frames[before:] == ["array(2)"]
    report.stats["coalesced_pairs_sent_separately"] = f"{together} of {separate_tries}"
    await ws.close()


async def _probe_contexts(url: str, token: str, source: EventSource, report: ProbeReport,
                          window_s: float, n: int) -> None:
    """How state changes share contexts: measured on a real HA, compared on the fake."""
    ws = await _authed(url, token)
    r = Replies(ws)
    await r.command({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    t0 = time.monotonic()
    await source.produce(n)
    events: list[dict[str, Any]] = []
    try:
        while (left := t0 + window_s - time.monotonic()) > 0:
            events.append((await r.event(timeout=left))["event"])
    except TimeoutError:
        pass
    elapsed = time.monotonic() - t0
    await ws.close()
    groups: dict[str, list[str]] = defaultdict(list)
    parents: dict[str, str | None] = {}
    for event in events:
        groups[event["context"]["id"]].append(event["data"]["entity_id"])
        parents[event["context"]["id"]] = event["context"]["parent_id"]
    shared = sum(len(g) for g in groups.values() if len(g) > 1)
    # An automation run: its own entity changes exactly twice, plus what its actions change.
    runs = [g for g in groups.values()
            if any(e.startswith("automation.") and c == 2 for e, c in Counter(g).items())
            and any(not e.startswith("automation.") for e in g)]
    report.stats["contexts"] = {
        "events": len(events), "seconds": round(elapsed, 2),
        "events_per_s": round(len(events) / elapsed, 2) if elapsed else 0.0,
        "distinct_contexts": len(groups),
        "share_of_events_in_a_shared_context": round(shared / len(events), 3) if events else 0.0,
        "largest_context": max((len(g) for g in groups.values()), default=0),
        "automation_runs": len(runs),
        "example_run": runs[0] if runs else None,
        "child_contexts_with_a_parent_seen": sum(1 for p in parents.values() if p in groups),
    }
    report.aspects["contexts:events_share_a_context"] = shared > 0
    # Triggered work (the chain automation on a real HA) runs in a child context.
    report.aspects["contexts:parent_id_kinds"] = sorted({kind(p) for p in parents.values()})
    report.aspects["contexts:an_automation_run_changes_its_entity_twice_under_one_context"] = (
        bool(runs))
