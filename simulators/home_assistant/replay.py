"""Replaying a recording: its events fired again now, re-stamped so they read as fresh.

Times that equaled the recorded ``time_fired`` and every context id are renewed (shared
contexts stay shared); entities, states and attributes are kept as recorded.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .events import StateChange
from .profiles import ReplayProfile
from .recording import recorded
from .timefmt import iso_from_ns, ns_from_iso, ulid

__all__ = ["ReplaySource"]

_STAMPS = ("last_changed", "last_updated", "last_reported")
_FRESH_IDS_KEPT = 10_000  # recorded context ids remembered by a replay (see ReplaySource)


@dataclass(slots=True)
class _Fired:
    """What was emitted for an entity last, so its next old_state can match it."""

    recorded_key: tuple[Any, ...]
    new_state: dict[str, Any]
    stamps: dict[int, str] = field(default_factory=dict)  # recorded ns -> emitted ISO


def _state_key(state: dict[str, Any]) -> tuple[Any, ...]:
    context = state.get("context")
    context_id = context.get("id") if isinstance(context, dict) else None
    return (state.get("state"), state.get("last_updated"), context_id)


def _ns_or_none(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return ns_from_iso(value)
    except ValueError:
        return None


class ReplaySource:
    """Events from a recorded JSONL file, re-stamped so they can be fired again.

    It is the replay's :class:`Schedule` too (delegating to the profile), and reads the file
    lazily; only the timeline is held in memory.
    """

    def __init__(self, profile: ReplayProfile, rng: random.Random) -> None:
        self.profile = profile
        self._rng = rng
        self._timeline = profile.timeline()  # scan now: a malformed file fails here, not mid-run
        self._events: Iterator[tuple[dict[str, Any], int]] | None = None
        self._last: dict[str, _Fired] = {}
        # Recorded context id -> the fresh one it was replaced by: events that shared a
        # context in the recording (one service call, one automation run) share it again, and
        # a parent_id still names its parent. Contexts are shared by events close together,
        # so the most recent ids are enough.
        self._fresh: OrderedDict[str, str] = OrderedDict()
        self.emitted = 0

    def group_left(self) -> int:
        """A recording's events are fired one at a time (their contexts are the recording's)."""
        return 1

    def expected(self, t: float) -> float:
        return self.profile.expected(t)

    def rate_at(self, t: float) -> float:
        return self.profile.rate_at(t)

    def finished(self, t: float) -> bool:
        return self.profile.finished(t)

    def close(self) -> None:
        """Close the recording (it is reopened if :meth:`next_change` is called again)."""
        if self._events is not None:
            self._events.close()  # type: ignore[attr-defined]
            self._events = None

    def next_change(self, now_ns: int) -> StateChange:
        """The next recorded event fired at ``now_ns``: EOFError once a non-looping file is done.

        time_fired, the state timestamps that equaled it, and context ids become ``now_ns``
        and fresh ULIDs (one per recorded id, so the recording's shared contexts and parents
        stay as recorded); entity, states and attributes are kept.
        """
        if self._events is None:
            self._events = recorded(self.profile.path)
        try:
            event, recorded_ns = next(self._events)
        except StopIteration:
            if not self.profile.loop:
                raise EOFError(f"{self.profile.path}: all {self.emitted} events replayed") from None
            self._last.clear()  # a recording's end does not lead into its start
            self._fresh.clear()  # and a new pass is new causes: new contexts
            self._events = recorded(self.profile.path)
            event, recorded_ns = next(self._events)  # the timeline scan proved there is one
        self.emitted += 1
        return self._restamp(event, recorded_ns, now_ns)

    def _restamp(self, event: dict[str, Any], recorded_ns: int, now_ns: int) -> StateChange:
        data = event["data"]
        entity_id: str = data["entity_id"]
        old_state: dict[str, Any] | None = data.get("old_state")
        new_state: dict[str, Any] | None = data.get("new_state")
        previous = self._last.get(entity_id)
        stamps = {recorded_ns: iso_from_ns(now_ns)}
        if previous is not None:
            # A last_changed that equaled an earlier event's time follows that event's re-stamp,
            # so an attribute-only change still has last_changed == old_state's last_changed.
            stamps = {**previous.stamps, **stamps}

        context_id = self._renew(event.get("context"), now_ns)
        if old_state is not None:
            if previous is not None and _state_key(old_state) == previous.recorded_key:
                # The recorded old_state is the entity's previous new_state: hand back what was
                # fired for it, so the replayed chain old -> new stays intact.
                old_state = previous.new_state
            else:
                self._restamp_times(old_state, stamps)
        if new_state is not None:
            recorded_key = _state_key(new_state)
            used = self._restamp_times(new_state, stamps)
            context = new_state.get("context")
            if isinstance(context, dict):
                context["id"] = self._renew(context, now_ns)
                parent = context.get("parent_id")
                if isinstance(parent, str):
                    context["parent_id"] = self._fresh_id(parent, now_ns)
            # Only the new state's own stamps carry on: the memory per entity stays bounded.
            self._last[entity_id] = _Fired(recorded_key, new_state, used)
        else:
            self._last.pop(entity_id, None)
        return StateChange(entity_id, old_state, new_state, context_id, now_ns)

    def _renew(self, context: Any, now_ns: int) -> str:
        """The fresh id of a recorded context (a new one when it has none)."""
        old = context.get("id") if isinstance(context, dict) else None
        if not isinstance(old, str):
            return ulid(now_ns, self._rng)
        return self._fresh_id(old, now_ns)

    def _fresh_id(self, old: str, now_ns: int) -> str:
        fresh = self._fresh
        new = fresh.get(old)
        if new is None:
            new = fresh[old] = ulid(now_ns, self._rng)
            if len(fresh) > _FRESH_IDS_KEPT:
                fresh.popitem(last=False)
        else:
            fresh.move_to_end(old)
        return new

    @staticmethod
    def _restamp_times(state: dict[str, Any], stamps: dict[int, str]) -> dict[int, str]:
        """Re-stamp ``state`` in place; return the mappings it used."""
        used: dict[int, str] = {}
        for key in _STAMPS:
            ns = _ns_or_none(state.get(key))
            if ns is not None and ns in stamps:
                state[key] = used[ns] = stamps[ns]
        return used
