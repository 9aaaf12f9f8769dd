"""The one reader of a Home Assistant websocket: frames in, events and replies dispatched.

Per message it dispatches and never awaits: Home Assistant drops a client whose queue reaches
4,096 messages, so a slow step here loses events (FAILURE_MODES.md #13). Command replies
(``result``, ``pong``) are matched by id to the futures of the same connection: a second reader
on the socket would steal events it does not expect (FAILURE_MODES.md #5).

`FrameReader` is a base of `pipeline.common.ha_client.HomeAssistantClient`; its methods are the
client's, so a subclass can still wrap ``_read`` or ``_dispatch``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.common.ha_protocol import Connection, EventCallback, clip
from pipeline.common.ha_state import HAClientState

__all__ = ["FrameReader"]

log = logging.getLogger(__name__)

_LOG_EVERY = 1000  # repeated per-message problems: log the 1st, then every 1000th


class FrameReader:
    """Reads one connection's frames into ``state`` and the ``on_event`` callback."""

    state: HAClientState
    _on_event: EventCallback
    _wall_clock_ns: Callable[[], int]

    async def _read(self, conn: Connection) -> None:
        """The only reader of the socket. Per message: dispatch, never await."""
        state = self.state
        try:
            async for raw in conn.ws:
                now = self._wall_clock_ns()
                state.frames += 1
                if isinstance(raw, bytes):
                    self._bad_frame("binary frame", raw)
                    continue
                try:
                    msg = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    self._bad_frame(f"not JSON: {exc}", raw)
                    continue
                if type(msg) is list:  # coalesced frame
                    for item in msg:
                        self._dispatch(conn, item, now)
                else:
                    self._dispatch(conn, msg, now)
        finally:
            conn.fail_pending("connection closed")

    def _dispatch(self, conn: Connection, msg: Any, now: int) -> None:
        if type(msg) is not dict:
            self._bad_frame("message is not an object", msg)
            return
        kind = msg.get("type")
        if kind == "event":
            if conn.subscription is not None and msg.get("id") == conn.subscription:
                state = self.state
                state.events += 1
                state.last_event_ns = now
                try:
                    self._on_event(msg.get("event"), now)
                except Exception:  # noqa: BLE001 - one bad event must not end the connection
                    state.callback_errors += 1
                    if state.callback_errors % _LOG_EVERY == 1:
                        log.exception("event callback failed",
                                      extra={"callback_errors": state.callback_errors})
                return
        elif kind in ("result", "pong"):
            # Whatever id the server sent: only one of our int ids finds a future.
            msg_id: Any = msg.get("id")
            future = conn.pending.get(msg_id)
            if future is not None and not future.done():
                future.set_result(msg)
                return
        self.state.unexpected += 1
        if self.state.unexpected % _LOG_EVERY == 1:
            log.warning("unexpected message from Home Assistant",
                        extra={"type": kind, "id": msg.get("id"),
                               "unexpected": self.state.unexpected})

    def _bad_frame(self, why: str, raw: object) -> None:
        self.state.bad_frames += 1
        if self.state.bad_frames % _LOG_EVERY == 1:
            log.warning("bad frame from Home Assistant",
                        extra={"reason": why, "frame": clip(raw),
                               "bad_frames": self.state.bad_frames})
