r"""InfluxDB line protocol, as 1.x reads it back: escaping that never alters a value.

Line protocol cannot carry every string in a tag: 1.x has no escape for a newline; a tag value
ending in a backslash escapes the separator after it; and a backslash right before a space is
read differently by 1.x's two scanners (the line splitter skips backslash *pairs*, the tag parser
only looks at the previous byte), which can make the splitter misread quotes and cut or merge
lines. `tag_problem` says which strings those are; the escapes refuse them with
`LineProtocolError` rather than write them altered.

Escapes per InfluxDB 1.x models/points.go: tag keys/values and field keys escape ',', '='
and ' '; the measurement escapes ',' and ' '; string field values escape '"' and '\'.
A backslash is NOT unescaped in tags, so it is written as is: the value  a\,b  is written
a\\,b  which 1.x scans as an escaped comma and unescapes back to  a\,b
(see `pipeline.common.events.entity_id_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

__all__ = [
    "LineProtocolError",
    "attributes_json",
    "clip",
    "escape_measurement",
    "escape_tag",
    "string_field",
    "tag_problem",
    "utf8_ok",
]


class LineProtocolError(ValueError):
    """A value cannot be written as InfluxDB line protocol without being altered."""


def tag_problem(value: str) -> str | None:
    """Why ``value`` cannot be a tag (or key) exactly, or None when it can."""
    if "\n" in value:
        return "contains a newline"
    if value.endswith("\\"):
        # 1.x treats any byte after a backslash as escaped and never unescapes a double
        # backslash in tags, so a final backslash would swallow the ',' or ' ' ending the value.
        return "ends with a backslash"
    if "\\ " in value:
        # Written as backslash + escaped space; the line splitter pairs the two backslashes
        # and sees a bare space: it then counts quotes wrongly (found by the property test).
        return "has a backslash before a space"
    if not utf8_ok(value):
        return "is not valid UTF-8 (lone surrogate)"
    return None


def utf8_ok(text: str) -> bool:
    if text.isascii():  # nearly every value: no copy made to find out
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def clip(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})


# Tag values are entity ids and domains, keys a fixed few: a bounded set, seen again with every
# event of the entity. Remembered, each costs one lookup instead of four scans (a failure,
# raised, is not remembered).
@lru_cache(maxsize=65536)
def escape_tag(value: str) -> str:
    """A tag key or value (or a field key); raises `LineProtocolError` if it cannot be exact."""
    problem = tag_problem(value)
    if problem:
        raise LineProtocolError(f"tag/key {clip(value)} {problem}")
    # Chained replace beats str.translate by ~5x here (translate with a dict is slow, worse on
    # non-ASCII text), and this runs for every tag of every point.
    if "," in value or "=" in value or " " in value:
        value = value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")
    return value


def escape_measurement(value: str) -> str:
    problem = tag_problem(value)
    if problem or not value:
        raise LineProtocolError(f"measurement {clip(value)} {problem or 'is empty'}")
    return value.translate(_MEASUREMENT_ESCAPES)


def string_field(value: str) -> str:
    """A quoted string field value. Newlines need no escape: 1.x reads them inside quotes."""
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value + '"'


def attributes_json(attributes: Mapping[str, Any]) -> str:
    """The ``attributes`` field: compact JSON with sorted keys, so equal dicts give equal
    strings."""
    return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode()
