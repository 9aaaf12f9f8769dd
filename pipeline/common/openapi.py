"""OpenAPI fragments for routes that read their request body by hand.

Services parse ``POST /api/v1/events`` and the admin mutations themselves (per-event rejection,
authentication before the body), so FastAPI cannot infer their request schemas or their error
answers. These helpers declare them, so that the spec at ``/openapi.json`` says what a client
may send and what it gets back, and an API fuzzer (tests/fuzz) can hold each service to it:

- `json_body(schema)`: the ``openapi_extra`` declaring a required JSON request body;
- `responses(...)`: the ``responses`` of a route: its 200 body and the error answers of the
  bad-input policy (`pipeline.common.service`), each ``{"error": <reason>, "detail": <text>}``;
- `EVENT_BATCH`: ``{"events": [Event, ...]}``, the body services exchange.
"""

from __future__ import annotations

from typing import Any

from pipeline.common.events import Event

__all__ = ["ERROR_BODY", "EVENT", "EVENT_BATCH", "EVENT_BATCH_ANSWER", "HEALTH_BODY", "json_body",
           "responses"]

Schema = dict[str, Any]

#: Every refusal: a short machine-readable reason and a sentence naming what is wrong.
ERROR_BODY: Schema = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "minLength": 1, "description": "short reason, e.g. not_json"},
        "detail": {"type": "string", "minLength": 1, "description": "what is wrong, for humans"},
    },
}

HEALTH_BODY: Schema = {
    "type": "object",
    "required": ["service", "status", "healthy"],
    "properties": {
        "service": {"type": "string"},
        "status": {"enum": ["ok", "unhealthy"]},
        "healthy": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
        "details": {"type": "object"},
    },
}

_STATUS_TEXT = {
    400: "Not a usable request: body not JSON or not UTF-8, or a bad query parameter",
    401: "Missing or malformed 'Authorization: Bearer <token>'",
    403: "Wrong token",
    409: "Conflicts with the current state",
    413: "Request body larger than the service accepts",
    422: "Well-formed JSON of the wrong shape; detail names the field",
    502: "An upstream service did not answer usably",
    503: "Cannot do its job right now (the reason says why); nothing was accepted",
}


def _inline(model_schema: Schema) -> Schema:
    """A pydantic model's JSON schema without keys that only matter inside pydantic."""
    if "$defs" in model_schema:  # refs would point at the document root: not inlinable as is
        raise ValueError("model schema with $defs cannot be inlined")
    return model_schema


#: One event as services exchange it (pipeline.common.events.Event).
EVENT: Schema = _inline(Event.model_json_schema())

EVENT_BATCH: Schema = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {"events": {"type": "array", "items": EVENT}},
    "description": (
        "Each event is judged alone: an invalid event is listed in the answer's 'rejected' "
        "(index, the event's key entity_id@time_fired as far as it can be read, reason naming "
        "the field) and never fails the rest of the batch. "
        "Only a body that is not such an object is refused as a whole (4xx)."
    ),
}

EVENT_BATCH_ANSWER: Schema = {
    "type": "object",
    "required": ["accepted", "rejected", "duplicates"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "event", "reason"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "event": {"type": ["string", "null"]},
                    "reason": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


def json_body(schema: Schema) -> dict[str, Any]:
    """``openapi_extra`` for a route reading a required JSON body by hand."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def responses(ok: Schema | None = None, *errors: int,
              ok_description: str = "Successful Response") -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: 200 with ``ok`` (any JSON when None), then each error status
    with the common error body. Declaring 422 here also replaces FastAPI's default 422 schema,
    which does not describe what `make_app`'s handler answers."""
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": ok_description,
              "content": {"application/json": {"schema": ok if ok is not None else {}}}},
    }
    for status in errors:
        out[status] = {"description": _STATUS_TEXT[status],
                       "content": {"application/json": {"schema": ERROR_BODY}}}
    return out
