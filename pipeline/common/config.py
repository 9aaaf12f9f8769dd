"""Service configuration from environment variables, validated once at start.

Each service declares its settings as a pydantic model deriving from `EnvSettings`, with an
`env_prefix`; field `batch_size` is read from `{env_prefix}BATCH_SIZE`. A bad value stops the
service at start with one line naming the variable and what it expects, e.g.

    CUTOVER_BATCH_SIZE='abc': expected an integer >= 1

rather than a pydantic traceback, or worse a crash on the first event an hour later.
Secrets are typed `SecretStr`: their values are never echoed, neither in errors nor in a dump.
The environment is always passed in (no hidden read of os.environ), so tests need no patching.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TextIO, TypeVar

import annotated_types
import orjson
from pydantic import AnyUrl, BaseModel, ConfigDict, SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo

__all__ = ["ConfigError", "EnvSettings", "env_name", "load_settings", "settings_or_exit"]

S = TypeVar("S", bound="EnvSettings")

#: Longest slice of a bad value echoed back: an error line must stay one readable line.
_MAX_ECHO = 80


class ConfigError(Exception):
    """A setting is missing or malformed; str(error) is one line fit for stderr."""


class EnvSettings(BaseModel):
    """Base of every service's settings model."""

    # frozen: settings are read once; a service that mutates them later is a bug.
    # extra=forbid: only declared fields exist, so a typo in code fails loudly.
    model_config = ConfigDict(frozen=True, extra="forbid")

    env_prefix: ClassVar[str] = "CUTOVER_"

    def safe_dump(self) -> dict[str, Any]:
        """The settings as JSON-able values with secrets masked: fit for a start-up log line."""
        return self.model_dump(mode="json")


def env_name(model_cls: type[EnvSettings], field_name: str) -> str:
    return f"{model_cls.env_prefix}{field_name.upper()}"


def load_settings(model_cls: type[S], environ: Mapping[str, str]) -> S:
    """Build `model_cls` from `environ`; unset variables take the field defaults.

    Raises ConfigError (one line: every bad variable, `; `-separated) on any invalid value.
    """
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for name, field in model_cls.model_fields.items():
        var = env_name(model_cls, name)
        if var not in environ:
            continue
        value = environ[var]
        if _wants_json(field.annotation):
            # Lists and mappings cannot be spelled as a bare string; JSON is the one syntax.
            try:
                raw[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                problems.append(_problem(var, value, field))
                continue
        else:
            raw[name] = value
    if not problems:
        try:
            return model_cls.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe_errors(model_cls, exc, raw))
    raise ConfigError("; ".join(dict.fromkeys(problems)))  # dedupe, keep order


def settings_or_exit(
    model_cls: type[S], environ: Mapping[str, str], *, stderr: TextIO | None = None
) -> S:
    """load_settings, or print the one-line reason to stderr and exit with status 2."""
    try:
        return load_settings(model_cls, environ)
    except ConfigError as exc:
        _exit(str(exc), stderr if stderr is not None else sys.stderr)


def _exit(line: str, stream: TextIO) -> NoReturn:
    print(line, file=stream, flush=True)
    raise SystemExit(2)


def _describe_errors(
    model_cls: type[EnvSettings], exc: ValidationError, raw: Mapping[str, Any]
) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"]
        field_name = loc[0] if loc else None
        if isinstance(field_name, str) and field_name in model_cls.model_fields:
            field = model_cls.model_fields[field_name]
            var = env_name(model_cls, field_name)
            if field_name not in raw:
                problems.append(f"{var} is not set: expected {expectation(field)}")
            elif err["type"] in _OWN_MESSAGES and not _is_secret(field.annotation):
                # The field's own validator says what is wrong, more precisely than its type
                # could ("service 'x': scheme 'ftp' ..." rather than "expected a JSON object").
                problems.append(_problem(var, raw[field_name], field, _own_message(err["msg"])))
            else:
                problems.append(_problem(var, raw[field_name], field))
        else:
            # A model-level validator (a rule across fields): its message is ours, not input.
            msg = " ".join(str(err["msg"]).split())
            problems.append(f"{model_cls.env_prefix}*: {msg}")
    return problems


#: error types raised by a field's own validator: its message is ours, fit to show
_OWN_MESSAGES = frozenset({"value_error", "assertion_error"})


def _own_message(msg: str) -> str:
    msg = " ".join(msg.split())
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def _problem(var: str, value: Any, field: FieldInfo, reason: str | None = None) -> str:
    if _is_secret(field.annotation):
        shown = "<hidden>"
    else:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        if len(text) > _MAX_ECHO:
            text = text[:_MAX_ECHO] + "..."
        shown = repr(text)  # repr escapes newlines: the message stays one line
    return f"{var}={shown}: {reason or f'expected {expectation(field)}'}"


def expectation(field: FieldInfo) -> str:
    """What a field accepts, in words: 'an integer >= 1', "one of 'a', 'b'", ..."""
    annotation = field.annotation
    optional = False
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    text = _describe_type(annotation)
    bounds = _describe_bounds(field, annotation)
    if bounds:
        text = f"{text} {bounds}"
    if optional:
        text += " (or unset)"
    return text


def _describe_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if _wants_json(annotation):
        container = origin or annotation
        return "a JSON object" if issubclass(container, Mapping) else "a JSON list"
    if annotation is bool:
        return "a boolean (true/false, 1/0, yes/no, on/off)"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if _is_secret(annotation):
        return "a secret string"
    if annotation is str:
        return "a string"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "a path"
    if isinstance(annotation, type) and issubclass(annotation, AnyUrl):
        return "a URL"
    name = getattr(annotation, "__name__", None) or str(annotation)
    return f"a value of type {name}"


def _describe_bounds(field: FieldInfo, annotation: Any) -> str:
    parts: list[str] = []
    is_text = annotation is str or _is_secret(annotation)
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            parts.append(f">= {meta.ge}")
        elif isinstance(meta, annotated_types.Gt):
            parts.append(f"> {meta.gt}")
        elif isinstance(meta, annotated_types.Le):
            parts.append(f"<= {meta.le}")
        elif isinstance(meta, annotated_types.Lt):
            parts.append(f"< {meta.lt}")
        elif isinstance(meta, annotated_types.MinLen):
            unit = "character" if is_text else "item"
            plural = "" if meta.min_length == 1 else "s"
            parts.append(f"of at least {meta.min_length} {unit}{plural}")
        elif isinstance(meta, annotated_types.MaxLen):
            unit = "character" if is_text else "item"
            plural = "" if meta.max_length == 1 else "s"
            parts.append(f"of at most {meta.max_length} {unit}{plural}")
        else:
            pattern = getattr(meta, "pattern", None)
            if isinstance(pattern, str):
                parts.append(f"matching {pattern!r}")
    return " and ".join(parts)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_secret(annotation: Any) -> bool:
    if _is_union(annotation):
        return any(_is_secret(a) for a in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, (SecretStr, SecretBytes))


def _wants_json(annotation: Any) -> bool:
    if _is_union(annotation):
        return any(_wants_json(a) for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, (list, tuple, set, frozenset, Mapping))
