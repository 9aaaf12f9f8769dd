"""Home Assistant's recorder, read back: ``history/history_during_period`` as state changes.

Home Assistant never replays an event, but its recorder keeps every state (HA_PROTOCOL.md):
the answer is an object keyed by entity id, each a list of compressed states ``{"s": state,
"a": attributes, "lu": last_updated, "lc": last_changed}`` with times as float epoch seconds,
no context. A ``state_changed`` event's ``time_fired`` is its new state's ``last_updated`` (one
timestamp in Home Assistant's core), so a row turns back into the event it was, microsecond
exact, and the row before it gives the ``old_state``. The context is gone: such an event
carries `UNKNOWN_CONTEXT`.

Used by websocket-ingestion's gap recovery; the harness's witness reads its own gaps the same
way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.common.events import EVENT_TYPE, EventKey

__all__ = [
    "UNKNOWN_CONTEXT",
    "HistoryRow",
    "history_rows",
    "is_recovered",
    "iso_us",
    "ns_from_history_time",
    "read_history",
    "row_event",
]

#: The context of an event read back from history (the recorder's answer has none): a valid
#: 26-character id that no real ULID (time-prefixed) can equal.
UNKNOWN_CONTEXT = "0" * 26

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_recovered(context_id: str) -> bool:
    """A stored point read back from history (its context is gone). Its latency holds the gap
    it was missed in, so it is measured apart from the live path's (the latency SLOs)."""
    return context_id == UNKNOWN_CONTEXT


def recovered_rows(context_ids: Sequence[str]) -> list[int]:
    """The rows of ``is_recovered`` points among many (a verdict reads millions)."""
    return [i for i, c in enumerate(context_ids) if c == UNKNOWN_CONTEXT]

#: ``call(command_type, **fields)`` -> the command's ``result`` (HomeAssistantClient.call).
Call = Callable[..., Awaitable[Any]]


def ns_from_history_time(value: Any) -> int | None:
    """A compressed state's ``lu``/``lc`` (float epoch seconds) -> ns, to the microsecond Home
    Assistant writes in the event's ``time_fired``; None for anything else.

    Home Assistant keeps one float timestamp and turns it into the event's ISO time with
    ``datetime.fromtimestamp`` (exact round-half-even of the double); ``round(value * 1e6)``
    rounds the product instead and is a microsecond off now and then (seen against a real
    Home Assistant: 2 events in 675), so the same conversion is used here."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    delta = moment - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def iso_us(ns: int) -> str:
    """ISO 8601 with microseconds and +00:00, as Home Assistant writes times."""
    return (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One recorded state of one entity."""

    entity_id: str
    last_updated_ns: int
    state: Any
    attributes: Mapping[str, Any]
    last_changed_ns: int

    @property
    def key(self) -> EventKey:
        return EventKey(self.entity_id, self.last_updated_ns)

    def as_state(self) -> dict[str, Any]:
        """The row as a Home Assistant state object."""
        return {"entity_id": self.entity_id, "state": self.state,
                "attributes": dict(self.attributes),
                "last_changed": iso_us(self.last_changed_ns),
                "last_updated": iso_us(self.last_updated_ns),
                "context": {"id": UNKNOWN_CONTEXT, "parent_id": None, "user_id": None}}


def history_rows(answer: Any) -> Iterator[list[HistoryRow]]:
    """Each entity's rows, in time order, from a ``history_during_period`` result; rows with no
    usable time are skipped."""
    if not isinstance(answer, Mapping):
        return
    for entity_id, states in answer.items():
        if not isinstance(entity_id, str) or not isinstance(states, list):
            continue
        rows = []
        for state in states:
            if not isinstance(state, Mapping):
                continue
            updated = ns_from_history_time(state.get("lu"))
            if updated is None:
                continue
            changed = ns_from_history_time(state.get("lc"))
            attributes = state.get("a")
            rows.append(HistoryRow(entity_id, updated, state.get("s"),
                                   attributes if isinstance(attributes, Mapping) else {},
                                   updated if changed is None else changed))
        rows.sort(key=lambda row: row.last_updated_ns)
        yield rows


def row_event(row: HistoryRow, before: HistoryRow | None) -> dict[str, Any]:
    """The ``state_changed`` event a row was fired as (``before``: the entity's previous row)."""
    return {
        "event_type": EVENT_TYPE,
        "data": {"entity_id": row.entity_id,
                 "old_state": None if before is None else before.as_state(),
                 "new_state": row.as_state()},
        "origin": "LOCAL",
        "time_fired": iso_us(row.last_updated_ns),
        "context": {"id": UNKNOWN_CONTEXT, "parent_id": None, "user_id": None},
    }


async def read_history(call: Call, entity_ids: list[str], start_ns: int, end_ns: int | None, *,
                       with_start_state: bool, attributes: bool = True,
                       timeout: float = 30.0) -> Any:
    """Every recorded row of ``entity_ids`` with ``start < last_updated < end`` (``end`` None:
    up to now), plus, with ``with_start_state``, each one's state at ``start``."""
    fields: dict[str, Any] = {
        "start_time": iso_us(start_ns), "entity_ids": entity_ids,
        "include_start_time_state": with_start_state, "significant_changes_only": False,
        "minimal_response": False, "no_attributes": not attributes}
    if end_ns is not None:
        fields["end_time"] = iso_us(end_ns)
    return await call("history/history_during_period", timeout=timeout, **fields)
