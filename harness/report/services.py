"""What of a service's log and metrics the report shows, and how an error line is told apart.

The runner keeps a log excerpt and the final metric values of each service in run.json
(``ServiceReport``) by these rules, and the report flags lines by the same test, so the lines a
reader sees highlighted are the lines that were kept for being errors.

An error line is one a logger wrote at error level or above, not one that merely contains the
word: every uvicorn line comes from the logger ``uvicorn.error``, whatever its level.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# Level names at or above error, as JSON loggers (ours: "error"), Python ("ERROR", "CRITICAL"),
# Go and InfluxDB ("error", "fatal", "panic") and syslog ("crit", "alert", "emerg") write them.
_ERROR_LEVELS = frozenset({"error", "err", "critical", "crit", "fatal", "panic", "alert",
                           "emerg", "emergency"})
# The keys a structured logger puts its level under (ours: "level").
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl", "log.level")
# Plain text: a level token as Python's, uvicorn's or a Go logger's default format puts it
# ("ERROR:root:...", "ERROR:    Exception in ASGI application", "... [ERROR] ...",
# "2025-01-01 10:00:00 CRITICAL ..."), upper case and standing alone: "uvicorn.error" is not one.
_PLAIN_LEVEL = re.compile(r"(?:^|[\s\[(<|])(?:ERROR|CRITICAL|FATAL|PANIC)(?=$|[\s\]):>|,])")
# logfmt, as InfluxDB and Go services write it: "lvl=error", "level=error".
_LOGFMT_LEVEL = re.compile(r"(?:^|\s)(?:level|lvl|severity)=[\"']?(\w+)", re.IGNORECASE)
# What Python prints for an exception nobody caught (on stderr, before any logger ran): no
# level token, yet the most important error line a service can leave.
_TRACEBACK = "Traceback (most recent call last):"

EXCERPT_TAIL = 30  # the log's last lines: what the service was doing when the run ended
EXCERPT_ERRORS = 20  # at most this many earlier error lines, the latest ones
EXCERPT_GAP = "..."  # between the earlier error lines and the tail


def _json_level(line: str) -> str | None:
    """The level of a JSON log line, lower case; None when the line is not a JSON object with
    a level (then it is read as plain text)."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    for key in _LEVEL_KEYS:
        level = record.get(key)
        if isinstance(level, str):
            return level.strip().lower()
    return ""  # structured, with no level: nothing says it is an error


def is_error_line(line: str) -> bool:
    """True for a line logged at error level or above: a JSON line by its level field alone
    (any case), a plain line by a level token (``ERROR``, ``lvl=error``) or a traceback's
    first line; never by a logger's name or a message that mentions errors."""
    text = line.strip()
    level = _json_level(text)
    if level is not None:
        return level in _ERROR_LEVELS
    if text.startswith(_TRACEBACK) or _PLAIN_LEVEL.search(text):
        return True
    return any(m.group(1).lower() in _ERROR_LEVELS for m in _LOGFMT_LEVEL.finditer(text))


def log_excerpt(lines: list[str], tail: int = EXCERPT_TAIL,
                max_errors: int = EXCERPT_ERRORS) -> list[str]:
    """The lines run.json keeps of a service's log: the last ``max_errors`` error lines from
    before the tail, then ``EXCERPT_GAP``, then the last ``tail`` lines (which keep their own
    error lines in place, so no line is shown twice)."""
    last = lines[-tail:] if tail > 0 else []
    earlier = lines[:len(lines) - len(last)]
    errors = [line for line in earlier if is_error_line(line)][-max_errors:] if max_errors else []
    return [*errors, EXCERPT_GAP, *last] if errors else last


def error_count(lines: Iterable[str]) -> int:
    """Distinct error lines (a log line is timestamped, so a repeat is the same line kept
    twice by an older excerpt, not a second error)."""
    return len({line for line in lines if is_error_line(line)})


# -- metrics -----------------------------------------------------------------------------------

METRIC_PREFIX = "cutover_"  # our services' own metrics; the rest is the client library's
# Counters of events that did not go through, as the monitor counts them into the error rate
# (harness/runner/monitor.py's _ERROR_COUNTER; a test keeps the two equal): a value above 0 is
# evidence, drawn in red. Not the admin's own polling errors (cutover_upstream_errors_total),
# which every start-up has while the services come up.
BAD_COUNTER = re.compile(
    r"^cutover_(events_(rejected|dropped|dead_lettered)|forward_failures|"
    r"influx_write_(failures|errors)|outbox_commit_errors)_total$")


def report_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The final metric values run.json keeps for a service: every ``cutover_`` series,
    labelled ones too (``cutover_events_dropped_total{reason=buffer_full}``: legacy's drop
    counters are only labelled), in name order."""
    return {name: value for name, value in sorted(metrics.items())
            if name.startswith(METRIC_PREFIX)}


def metric_label(name: str) -> str:
    """A series as Prometheus writes it: ``name{reason=buffer_full}`` (the monitor's key) ->
    ``name{reason="buffer_full"}``. A name with no labels is returned as is."""
    base, brace, rest = name.partition("{")
    if not brace or not rest.endswith("}"):
        return name
    pairs: list[list[str]] = []
    for part in rest[:-1].split(","):
        key, eq, value = part.partition("=")
        if eq and key.isidentifier():
            pairs.append([key, value])
        elif pairs:  # a comma inside a label's value
            pairs[-1][1] += "," + part
        else:
            return name
    labels = ",".join(f'{key}="{value}"' for key, value in pairs)
    return f"{base}{{{labels}}}"


def is_bad_counter(name: str, value: float) -> bool:
    """A drop, rejection, dead letter or failure counter above zero."""
    return value > 0 and bool(BAD_COUNTER.match(name.partition("{")[0]))
