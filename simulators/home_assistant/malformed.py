"""The broken frames and events the ``ha_malformed`` fault sends, by kind.

Each is what a buggy integration, proxy or network could put on the wire; clients must
survive all of them without losing the good events around them.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MALFORMED_EVENTS", "MALFORMED_FRAMES"]

MALFORMED_FRAMES: dict[str, bytes] = {
    "truncated": b'{"type":"event","event":{"event_type":"state_changed","data":{"entity_id":',
    "not_json": b"<html>502 Bad Gateway</html>",
    "unknown_type": b'{"type":"mystery_message","payload":{"x":1}}',
    # Over the 4 MiB a client should accept, and an event type nobody subscribed to.
    "oversized": b'{"type":"event","event":{"event_type":"blob","data":{"blob":"'
                 + b"x" * (5 * 1024 * 1024) + b'"}},"id":0}',
    "binary": b"\x00\x01\x02\xff\xfe binary, not text",  # sent as a binary frame
}

# A camera whose snapshot attribute alone is 5 MiB: the state of the oversized event below.
_BLOB_STATE: dict[str, Any] = {
    "entity_id": "camera.blob", "state": "idle",
    "attributes": {"snapshot": "x" * (5 * 1024 * 1024)},
    "last_changed": "2026-06-25T21:20:05.162552+00:00",
    "last_reported": "2026-06-25T21:20:05.162552+00:00",
    "last_updated": "2026-06-25T21:20:05.162552+00:00",
    "context": {"id": "01JZ0000000000000000000BLB", "parent_id": None, "user_id": None},
}

#: Broken events delivered on each client's own state_changed subscription (so they reach its
#: event handling, unlike the frames above): what a buggy integration or proxy could produce.
#: None of them is in the ledger: they are not events Home Assistant fired.
MALFORMED_EVENTS: dict[str, bytes] = {
    "missing_fields": orjson.dumps({  # no old_state, no state, no time_fired, no context
        "event_type": "state_changed", "origin": "LOCAL",
        "data": {"entity_id": "sensor.broken", "new_state": {"entity_id": "sensor.broken"}}}),
    "wrong_types": orjson.dumps({
        "event_type": "state_changed", "origin": "LOCAL", "time_fired": 1782422405,
        "data": {"entity_id": ["sensor", "x"], "old_state": None, "new_state": {"state": 21.5}},
        "context": {"id": 42}}),
    "unknown_event_type": orjson.dumps({
        "event_type": "call_service", "origin": "LOCAL",
        "time_fired": "2026-06-25T21:20:05.162552+00:00",
        "data": {"domain": "light", "service": "turn_on"},
        "context": {"id": "01JZ00000000000000000CALLS", "parent_id": None, "user_id": None}}),
    "not_an_object": b'"state_changed"',
    # Shaped like a real state change, but 5 MiB of attributes: over Home Assistant's 4 MiB.
    "oversized_event": orjson.dumps({
        "event_type": "state_changed", "origin": "LOCAL",
        "time_fired": "2026-06-25T21:20:05.162552+00:00",
        "data": {"entity_id": "camera.blob", "old_state": None, "new_state": _BLOB_STATE},
        "context": _BLOB_STATE["context"]}),
}

