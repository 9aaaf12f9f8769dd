"""Reading a recorded Home Assistant event stream (JSONL) for replay.

A recording is streamed a line at a time (it may be gigabytes); only its
:class:`ReplayTimeline`, 8 bytes per event, is held in memory.
"""

from __future__ import annotations

import bisect
import json
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .timefmt import ns_from_iso

__all__ = ["ReplayTimeline", "recorded"]

_LINE_HINT = (
    'expected a Home Assistant event object ({"event_type": ..., "data": ..., "time_fired": ...}),'
    ' an event frame ({"type": "event", "event": {...}, "id": N}) or a JSON array of those'
)
_STATE_CHANGED_HINT = (
    "expected a state_changed event with data.entity_id, data.old_state, data.new_state"
    " (objects or null) and an ISO time_fired with an offset"
)


def _event_of(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    if "event_type" in item:
        return item
    event = item.get("event")
    if item.get("type") == "event" and isinstance(event, dict) and "event_type" in event:
        return event
    return None


def _state_changed(path: Path, lineno: int, raw: bytes) -> Iterator[tuple[dict[str, Any], int]]:
    """The line's state_changed events with their recorded time_fired (ns); others skipped."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            obj = json.loads(raw)  # orjson refuses integers beyond 64 bits; json does not
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {_LINE_HINT} (not JSON: {exc})") from None
    items = obj if isinstance(obj, list) else [obj]
    # A raw websocket capture also holds results, pongs and auth messages: skip them.
    items = [i for i in items if not (isinstance(i, dict) and "event_type" not in i
                                      and isinstance(i.get("type"), str) and i["type"] != "event")]
    events = [_event_of(item) for item in items]
    if any(event is None for event in events):
        raise ValueError(f"{path}:{lineno}: {_LINE_HINT}")
    for event in events:
        assert event is not None
        if event["event_type"] != "state_changed":
            continue
        data = event.get("data")
        fired = event.get("time_fired")
        if not (
            isinstance(data, dict)
            and isinstance(data.get("entity_id"), str)
            and isinstance(data.get("old_state", None), dict | None)
            and isinstance(data.get("new_state", None), dict | None)
            and isinstance(fired, str)
        ):
            raise ValueError(f"{path}:{lineno}: {_STATE_CHANGED_HINT}")
        try:
            fired_ns = ns_from_iso(fired)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {_STATE_CHANGED_HINT} ({exc})") from None
        yield event, fired_ns


def recorded(path: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """Stream a recording's state_changed events, one line at a time."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if raw.strip():
                yield from _state_changed(path, lineno, raw)


@dataclass(frozen=True, slots=True)
class ReplayTimeline:
    """When each recorded state_changed event fired: seconds since the first, in file order.

    8 bytes per event, so millions of events are fine. An event recorded earlier than its
    predecessor is due together with it: the schedule must not run backwards.
    """

    path: Path
    offsets: array[float]  # array('d'), non-decreasing

    @classmethod
    def scan(cls, path: Path) -> ReplayTimeline:
        offsets = array("d")
        first: int | None = None
        last = 0.0
        for _, fired_ns in recorded(path):
            if first is None:
                first = fired_ns
            last = max(last, (fired_ns - first) / 1e9)
            offsets.append(last)
        if not offsets:
            raise ValueError(f"{path}: no state_changed events to replay")
        return cls(path, offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def period(self) -> float:
        """One loop's length: the recording's span plus its mean gap, so a loop's last and
        the next loop's first event are spaced like the rest (1 s if all are simultaneous)."""
        n, span = len(self.offsets), self.offsets[-1]
        return span * n / (n - 1) if n > 1 and span > 0 else 1.0

    def events_until(self, t: float, *, loop: bool) -> int:
        """Events due by ``t`` seconds of recording time."""
        if t < 0:
            return 0
        if not loop:
            return bisect.bisect_right(self.offsets, t)
        cycles = math.floor(t / self.period)
        rest = t - cycles * self.period
        return cycles * len(self.offsets) + bisect.bisect_right(self.offsets, rest)
