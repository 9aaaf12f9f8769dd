"""Messages of Home Assistant's websocket API, byte for byte, and the validation of commands.

Messages are built as bytes with orjson (dict key order is kept, so the key order matches
Home Assistant's). Event frames are assembled by concatenation so an event is serialised once
however many subscribers it goes to, and ``id`` comes last as Home Assistant writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import orjson

HA_VERSION = "2026.11.0"

# Error codes Home Assistant uses (homeassistant/components/websocket_api/const.py).
ERR_ID_REUSE = "id_reuse"
ERR_INVALID_FORMAT = "invalid_format"
ERR_NOT_ALLOWED = "not_allowed"
ERR_NOT_FOUND = "not_found"
ERR_NOT_SUPPORTED = "not_supported"
ERR_HOME_ASSISTANT_ERROR = "home_assistant_error"
ERR_SERVICE_VALIDATION_ERROR = "service_validation_error"
ERR_UNKNOWN_COMMAND = "unknown_command"
ERR_UNKNOWN_ERROR = "unknown_error"
ERR_UNAUTHORIZED = "unauthorized"
ERR_TIMEOUT = "timeout"
ERR_TEMPLATE_ERROR = "template_error"

MATCH_ALL = "*"
FEATURE_COALESCE_MESSAGES = "coalesce_messages"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def auth_required(version: str) -> bytes:
    return dumps({"type": "auth_required", "ha_version": version})


def auth_ok(version: str) -> bytes:
    return dumps({"type": "auth_ok", "ha_version": version})


def auth_invalid(message: str) -> bytes:
    return dumps({"type": "auth_invalid", "message": message})


def result(msg_id: int, value: Any = None) -> bytes:
    return dumps({"id": msg_id, "type": "result", "success": True, "result": value})


def error(msg_id: Any, code: str, message: str) -> bytes:
    return dumps({"id": msg_id, "type": "result", "success": False,
                  "error": {"code": code, "message": message}})


def pong(msg_id: int) -> bytes:
    return dumps({"id": msg_id, "type": "pong"})


def event_frame(event_json: bytes, subscription: int) -> bytes:
    """``{"type":"event","event":<event>,"id":N}`` around an already serialised event."""
    return b'{"type":"event","event":' + event_json + b',"id":' + str(subscription).encode() + b"}"


def coalesce(messages: list[bytes]) -> bytes:
    """Several queued messages as one JSON-array frame (the ``coalesce_messages`` feature)."""
    return b"[" + b",".join(messages) + b"]"


# -- validation errors, in voluptuous' words ----------------------------------------------------

_MAX_GOT = 500  # voluptuous' MAX_VALIDATION_ERROR_ITEM_LENGTH


def _got(message: str, value: Any) -> str:
    """voluptuous' humanize_error: the error, then the offending value's repr (capped)."""
    shown = repr(value)
    if len(shown) > _MAX_GOT:
        shown = shown[: _MAX_GOT - 3] + "..."
    return f"{message}. Got {shown}"


# -- auth ------------------------------------------------------------------------------------


def auth_format_error(msg: Any) -> str | None:
    """Why an auth message is malformed, in voluptuous' words as Home Assistant words them
    (every error, sorted, one a line), or None when it is well formed.

    Home Assistant's schema: ``type`` must be ``"auth"`` plus at most one of ``access_token`` /
    ``api_password`` (strings); any other key, ``id`` included, is rejected.
    """
    if not isinstance(msg, dict):
        return _got("expected a dictionary", msg)
    errors = [_got(f"extra keys not allowed @ data[{key!r}]", value) for key, value in msg.items()
              if key not in ("type", "access_token", "api_password")]
    if "type" not in msg:
        errors.append(_got("required key not provided @ data['type']", None))
    elif msg["type"] != "auth":
        errors.append(_got("not a valid value for dictionary value @ data['type']", msg["type"]))
    if "access_token" in msg and "api_password" in msg:
        errors.append(_got("two or more values in the same group of exclusion 'auth' @ "
                           "data[<auth>]", None))
    for key in ("access_token", "api_password"):
        if key in msg and not isinstance(msg[key], str):
            errors.append(_got(f"expected str for dictionary value @ data[{key!r}]", msg[key]))
    return "\n".join(sorted(errors)) if errors else None


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: type | tuple[type, ...]
    required: bool = False
    type_name: str = ""


_COMMON = {"id", "type"}

# The commands the fake serves, with the schema each accepts beyond id/type (extra keys are
# rejected, as Home Assistant's command schemas do).
COMMAND_SCHEMAS: dict[str, tuple[Field, ...]] = {
    "subscribe_events": (Field("event_type", str, type_name="str"),),
    "unsubscribe_events": (Field("subscription", int, required=True, type_name="int"),),
    "get_states": (),
    "get_config": (),
    "ping": (),
    "supported_features": (Field("features", dict, required=True, type_name="dict"),),
    "subscribe_entities": (Field("entity_ids", list, type_name="list"),),
    # homeassistant/components/history/websocket_api.py (defaults: see history.py)
    "history/history_during_period": (
        Field("start_time", str, required=True, type_name="str"),
        Field("end_time", str, type_name="str"),
        Field("entity_ids", list, required=True, type_name="list"),
        Field("include_start_time_state", bool, type_name="bool"),
        Field("significant_changes_only", bool, type_name="bool"),
        Field("minimal_response", bool, type_name="bool"),
        Field("no_attributes", bool, type_name="bool"),
    ),
}


def command_format_error(msg: dict[str, Any]) -> str | None:
    """Validate a known command's fields: None when valid, else Home Assistant's message
    (voluptuous' words, every error found, sorted, one a line; no prefix)."""
    schema = COMMAND_SCHEMAS[msg["type"]]
    if not schema:
        # A command with no fields of its own is registered without a schema: Home Assistant
        # checks only that nothing else came, and names the whole message.
        return _got("extra keys not allowed", msg) if len(msg) > 2 else None
    allowed = _COMMON | {f.name for f in schema}
    errors = [_got(f"extra keys not allowed @ data[{key!r}]", value)
              for key, value in msg.items() if key not in allowed]
    for field in schema:
        where = f"data[{field.name!r}]"
        if field.name not in msg:
            if field.required:
                errors.append(_got(f"required key not provided @ {where}", None))
            continue
        value = msg[field.name]
        if not isinstance(value, field.kind) or isinstance(value, bool) and field.kind is int:
            errors.append(_got(f"expected {field.type_name} for dictionary value @ {where}",
                               value))
        elif msg["type"] == "history/history_during_period" and field.name == "entity_ids":
            # entity_ids' kind is list: the isinstance check above has passed
            errors += [_got(f"expected str @ {where}[{i}]", e)
                       for i, e in enumerate(cast("list[Any]", value)) if not isinstance(e, str)]
        elif msg["type"] == "subscribe_entities" and field.name == "entity_ids" \
                and not all(isinstance(e, str) for e in cast("list[Any]", value)):
            errors.append("expected str @ data['entity_ids']")
    return "\n".join(sorted(errors)) if errors else None


def command_id(msg: Any) -> int | None:
    """The id of a well-formed command (a positive int, not a bool), else None."""
    if not isinstance(msg, dict):
        return None
    cur = msg.get("id")
    if type(cur) is not int or cur < 1 or type(msg.get("type")) is not str:
        return None
    return cur
