"""``history/history_during_period``, answered from the fake's recorder (:mod:`.history`).

The semantics follow Home Assistant 2025.4 (``components/history/websocket_api.py`` and
``components/recorder/history/modern.py``):

- rows are ``last_updated > start_time`` and ``< end_time``, per entity in time order, keyed
  by entity id in the order asked; an entity with no row is left out;
- ``significant_changes_only`` (default true) keeps only rows whose state changed, except for
  the domains whose attributes matter (climate, device_tracker, ...);
- ``include_start_time_state`` (default true) puts the state in force at ``start_time`` first,
  its ``lu`` clamped to ``start_time``, when the recorder holds anything older than that;
- a row is ``{"s", "a", "lu"}``; ``"lc"`` only without ``significant_changes_only`` and when
  last_changed differs; ``no_attributes`` empties ``"a"``; ``minimal_response`` gives the first
  row in full and then only ``{"s", "lu"}`` for each change of state;
- the recorder does not store every attribute (``supported_features`` everywhere, and what each
  integration marks unrecorded, e.g. a light's brightness or an automation's ``current``);
- the recorder commits in the background: rows younger than ``commit_lag`` are not there yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import orjson

from .history import History, Row, us_from_iso

# homeassistant/components/recorder/history/const.py
SIGNIFICANT_DOMAINS = frozenset({"climate", "device_tracker", "humidifier", "thermostat",
                                 "water_heater"})
NEED_ATTRIBUTE_DOMAINS = frozenset({"climate", "humidifier", "input_datetime", "thermostat",
                                    "water_heater"})
# What the recorder never stores (recorder ALL_DOMAIN_EXCLUDE_ATTRS), and per domain what the
# entity components mark unrecorded (_entity_component_unrecorded_attributes).
_EXCLUDED_EVERYWHERE = frozenset({"attribution", "restored", "supported_features"})
_UNRECORDED: dict[str, frozenset[str]] = {
    "light": frozenset({
        "supported_color_modes", "effect_list", "min_mireds", "max_mireds",
        "min_color_temp_kelvin", "max_color_temp_kelvin", "brightness", "color_mode",
        "color_temp", "color_temp_kelvin", "effect", "hs_color", "rgb_color", "rgbw_color",
        "rgbww_color", "xy_color"}),
    "climate": frozenset({
        "hvac_modes", "fan_modes", "swing_modes", "min_temp", "max_temp", "min_humidity",
        "max_humidity", "target_temp_step", "preset_modes"}),
    "media_player": frozenset({
        "entity_picture_local", "entity_picture", "source_list", "media_position_updated_at",
        "media_position", "sound_mode_list"}),
    "automation": frozenset({"last_triggered", "mode", "current", "max", "id"}),
    "sensor": frozenset({"options"}),
    "person": frozenset({"device_trackers"}),
}

# homeassistant/core.py valid_entity_id
_VALID_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")
# homeassistant/util/dt.py: what parse_datetime accepts when ciso8601 does not
_DATETIME_RE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:\.(?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$"
)

class CommandError(Exception):
    """A request Home Assistant answers with an error result (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_datetime(text: str) -> datetime | None:
    """Home Assistant's ``dt_util.parse_datetime``: None when not a date/time at all; a
    ValueError when shaped like one but impossible (31 February), which Home Assistant does
    not catch (the client gets ``unknown_error``)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _DATETIME_RE.match(text)
    if match is None:
        return None
    parts: dict[str, Any] = match.groupdict()
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    zone_text = parts.pop("tzinfo")
    zone: tzinfo | None = None
    if zone_text == "Z":
        zone = UTC
    elif zone_text is not None:
        minutes = int(zone_text[-2:]) if len(zone_text) > 3 else 0
        offset = timedelta(hours=int(zone_text[1:3]), minutes=minutes)
        zone = timezone(-offset if zone_text[0] == "-" else offset)
    values = {k: int(v) for k, v in parts.items() if v is not None}
    return datetime(**values, tzinfo=zone)


def _as_utc_us(text: str, local: tzinfo, bad: CommandError) -> int:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        raise CommandError("unknown_error", "Unknown error") from None
    if parsed is None:
        raise bad
    if parsed.tzinfo is None:  # Home Assistant reads a naive time in its own time zone
        parsed = parsed.replace(tzinfo=local)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def during_period(msg: Mapping[str, Any], history: History,
                  states: Mapping[str, Mapping[str, Any]], local: tzinfo) -> dict[str, Any]:
    """The ``result`` of a (schema-valid) ``history/history_during_period`` command, or
    :class:`CommandError`. ``states`` are the current states (Home Assistant's state machine)."""
    start_us = _as_utc_us(msg["start_time"], local,
                          CommandError("invalid_start_time", "Invalid start_time"))
    end_us: int | None = None
    if msg.get("end_time"):
        end_us = _as_utc_us(msg["end_time"], local,
                            CommandError("invalid_end_time", "Invalid end_time"))
    if start_us > history.now_us():
        return {}
    entity_ids: list[str] = msg["entity_ids"]
    for entity_id in entity_ids:
        if entity_id not in states and not _VALID_ENTITY_ID.match(entity_id):
            raise CommandError("invalid_entity_ids", "Invalid entity_ids")
    with_start = msg.get("include_start_time_state", True)
    no_attributes = msg.get("no_attributes", False)
    oldest = history.oldest_us()
    if end_us is not None and (oldest is None or end_us < oldest):
        return {}  # the recorder holds nothing that old
    if not with_start and entity_ids and not _may_have_changed(entity_ids, states, start_us,
                                                               no_attributes):
        return {}
    if not entity_ids:  # the recorder raises ValueError, which Home Assistant does not catch
        raise CommandError("unknown_error", "Unknown error")
    # A start state only when the recorder holds something older than start_time.
    with_start = with_start and oldest is not None and oldest < start_us
    significant_only = msg.get("significant_changes_only", True)
    minimal = msg.get("minimal_response", False)
    result: dict[str, Any] = {}
    for entity_id in dict.fromkeys(entity_ids):
        found = history.rows(entity_id, start_us, end_us, with_start)
        if found is None:
            continue
        before, rows = found
        domain = entity_id.split(".", 1)[0]
        if significant_only and domain not in SIGNIFICANT_DOMAINS:
            rows = [r for r in rows if r[1] is None or r[1] == r[0]]
        compressed = _compress(domain, before, rows, start_us, no_attributes=no_attributes,
                               with_changed=not significant_only,
                               minimal=minimal and domain not in NEED_ATTRIBUTE_DOMAINS)
        if compressed:
            result[entity_id] = compressed
    return result


def _may_have_changed(entity_ids: list[str], states: Mapping[str, Mapping[str, Any]],
                      start_us: int, no_attributes: bool) -> bool:
    """Home Assistant's shortcut: an entity whose current state is older than start_time has
    no rows after it (an unknown entity might)."""
    key = "last_changed" if no_attributes else "last_updated"
    for entity_id in entity_ids:
        state = states.get(entity_id)
        if state is None or us_from_iso(state[key]) > start_us:
            return True
    return False


def _compress(domain: str, before: Row | None, rows: list[Row], start_us: int, *,
              no_attributes: bool, with_changed: bool, minimal: bool) -> list[dict[str, Any]]:
    excluded = _EXCLUDED_EVERYWHERE | _UNRECORDED.get(domain, frozenset())
    cache: dict[bytes, dict[str, Any]] = {}  # rows share their JSON when attributes did not move

    def recorded(blob: bytes) -> dict[str, Any]:
        kept = cache.get(blob)
        if kept is None:
            attrs = orjson.loads(blob)
            kept = cache[blob] = {k: v for k, v in attrs.items() if k not in excluded}
        return kept

    def full(row: Row, at_start: bool, attributes: bool) -> dict[str, Any]:
        lu, lc, state, attrs = row
        out: dict[str, Any] = {"s": state}
        if attributes:  # without no_attributes' column the recorder decodes nothing: {}
            out["a"] = {} if no_attributes else recorded(attrs)
        if at_start:  # the start state's time is start_time itself, and it has no lc
            out["lu"] = start_us / 1e6
            return out
        out["lu"] = us_from_iso(lu) / 1e6
        if with_changed and lc is not None and lc != lu:
            out["lc"] = us_from_iso(lc) / 1e6
        return out

    every = [(before, True)] if before is not None else []
    every += [(row, False) for row in rows]
    if not every:
        return []
    if not minimal:
        return [full(row, at_start, True) for row, at_start in every]
    # minimal_response: the first state in full, then only changes of the state string.
    first_row, first_at_start = every[0]
    out = [full(first_row, first_at_start, not no_attributes)]
    previous = first_row[2]
    for row, _ in every[1:]:
        if row[2] != previous:
            previous = row[2]
            out.append({"s": row[2], "lu": us_from_iso(row[0]) / 1e6})
    return out
