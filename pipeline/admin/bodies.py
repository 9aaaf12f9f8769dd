"""Request bodies of the migration endpoints, and parsing that explains what is wrong.

Bodies are parsed by hand (not as FastAPI body parameters) so that authentication is checked
first: a caller without the token learns nothing about the body it should send.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.common.bad_input import BadRequest

#: The latest boundary a change may name: 2255-03-14, inside InfluxDB's time range (which ends
#: in 2262) and, unlike that range's end, exact as the JSON number the OpenAPI spec states.
MAX_BOUNDARY_NS = 9 * 10**18

__all__ = ["ChangeRequest", "RollbackRequest", "parse_body"]

M = TypeVar("M", bound=BaseModel)


def _non_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty: say why the migration changes")
    return value


class _Body(BaseModel):
    # strict: 150 or "10" or 10.5 or "yes" are mistakes to report, not values to coerce.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # The pattern only documents _non_blank in the spec; the validator gives the message.
    reason: str = Field(max_length=2000, json_schema_extra={"pattern": r"\S"})
    actor: str = Field("api", min_length=1, max_length=200)
    shadow: bool | None = None

    _reason = field_validator("reason")(_non_blank)


class ChangeRequest(_Body):
    # Spec only: what _something_to_change checks (new_percent and/or shadow, not null).
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["new_percent"], "properties": {"new_percent": {"type": "integer"}}},
        {"required": ["shadow"], "properties": {"shadow": {"type": "boolean"}}},
    ]})

    new_percent: int | None = Field(None, ge=0, le=100)
    # Bounded: a boundary is an event time, and past year 9999 it is no date at all (the
    # change record could not even write it as ISO 8601: that was a 500).
    effective_from_ns: int | None = Field(None, ge=0, le=MAX_BOUNDARY_NS)

    @model_validator(mode="after")
    def _something_to_change(self) -> ChangeRequest:
        if self.new_percent is None and self.shadow is None:
            raise ValueError("nothing to change: give new_percent (0..100) and/or shadow")
        return self


class RollbackRequest(_Body):
    pass


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def parse_body(model: type[M], raw: bytes) -> M:
    """`model` from a JSON body, or BadRequest (400 not JSON, 422 invalid) saying what to fix."""
    if not raw.strip():
        raise BadRequest("empty_body", "request body is empty: expected a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        for err in errors:
            if err["type"] == "json_invalid":
                cause = (err.get("ctx") or {}).get("error", "syntax error")
                raise BadRequest("not_json", f"request body is not valid JSON: {cause}") from exc
        summary = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise BadRequest("validation", f"invalid request: {summary}{more}", 422) from exc
