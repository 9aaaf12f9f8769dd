"""Which log lines are errors, what of a log and of the metrics run.json keeps for the report
(harness.report.services): tested on lines in the formats real runs write."""

from __future__ import annotations

import pytest

from harness.report.services import (
    BAD_COUNTER,
    EXCERPT_GAP,
    error_count,
    is_bad_counter,
    is_error_line,
    log_excerpt,
    metric_label,
    report_metrics,
)

UVICORN_INFO = ('{"time":"2026-12-05T07:16:05.462560+00:00","level":"info","service":"admin",'
                '"logger":"uvicorn.error","message":"Started server process [25380]"}')


def _json(level: str, message: str = "m", logger: str = "pipeline.storage.store") -> str:
    return (f'{{"time":"2026-12-05T07:16:05+00:00","level":"{level}","service":"storage",'
            f'"logger":"{logger}","message":"{message}"}}')


@pytest.mark.parametrize("line", [
    _json("error"), _json("ERROR"), _json("Error"), _json("critical"), _json("CRITICAL"),
    _json("fatal"),
    '{"levelname": "ERROR", "msg": "x"}',
    "ERROR:    Exception in ASGI application",  # uvicorn's plain format
    "ERROR:root:could not connect",  # Python's basicConfig
    "2026-12-05 07:16:05,123 CRITICAL [storage] disk full",
    "[ERROR] write failed",
    'ts=2026-12-05T07:16:05Z lvl=error msg="write failed" service=influxdb',
    "level=fatal msg=boom",
    "Traceback (most recent call last):",
])
def test_error_lines(line):
    assert is_error_line(line)


@pytest.mark.parametrize("line", [
    UVICORN_INFO,  # every uvicorn line is logged by "uvicorn.error", whatever its level
    _json("warning", "write error, retrying"),
    _json("info", "errors: 0", logger="uvicorn.error"),
    _json("debug", "ERROR in the message is not a level"),
    '{"message": "no level at all: ERROR"}',
    "INFO:     uvicorn.error: Started server process",
    "fake weather API on http://127.0.0.1:39347 (seed 7)",
    "faultproxy: storage-influxdb 127.0.0.1:45577 -> 127.0.0.1:34585",
    "ts=2026-12-05T07:16:05Z lvl=info msg=\"retrying after error\"",
    "processed 10 events, 0 errors",
    "",
])
def test_not_error_lines(line):
    assert not is_error_line(line)


def test_the_excerpt_keeps_earlier_lower_case_error_lines():
    error = _json("error", "could not queue accepted events durably")
    lines = [_json("info", f"line {i}") for i in range(200)]
    lines[10] = error
    lines[190] = _json("ERROR", "late error")
    excerpt = log_excerpt(lines, tail=30)
    assert excerpt[0] == error  # before the tail, kept for being an error
    assert excerpt[1] == EXCERPT_GAP
    assert excerpt[2:] == lines[-30:]
    assert excerpt.count(lines[190]) == 1  # in the tail: not repeated above it
    assert error_count(excerpt) == 2


def test_the_excerpt_of_a_clean_log_is_its_tail():
    lines = [UVICORN_INFO] * 3 + [_json("info", f"line {i}") for i in range(50)]
    assert log_excerpt(lines, tail=30) == lines[-30:]


def test_the_excerpt_keeps_the_latest_errors_at_most():
    lines = [_json("error", f"e{i}") for i in range(100)] + [_json("info")] * 30
    excerpt = log_excerpt(lines, tail=30, max_errors=20)
    assert excerpt[:20] == lines[80:100] and excerpt[20] == EXCERPT_GAP


def test_labelled_metrics_are_kept():
    metrics = {"cutover_events_dropped_total{reason=buffer_full}": 3.0,
               "cutover_events_received_total": 10.0,
               "cutover_service_healthy{service=legacy}": 1.0,
               "process_cpu_seconds_total": 2.0,
               "python_gc_objects_collected_total{generation=0}": 1.0}
    kept = report_metrics(metrics)
    assert list(kept) == ["cutover_events_dropped_total{reason=buffer_full}",
                          "cutover_events_received_total",
                          "cutover_service_healthy{service=legacy}"]


@pytest.mark.parametrize("name, label", [
    ("cutover_events_dropped_total{reason=buffer_full}",
     'cutover_events_dropped_total{reason="buffer_full"}'),
    ("cutover_x{a=1,b=two}", 'cutover_x{a="1",b="two"}'),
    ("cutover_x{path=/a,b}", 'cutover_x{path="/a,b"}'),  # a comma inside a value
    ("cutover_events_received_total", "cutover_events_received_total"),
])
def test_metric_labels_read_as_prometheus_writes_them(name, label):
    assert metric_label(name) == label


def test_bad_counters():
    assert is_bad_counter("cutover_events_dropped_total{reason=buffer_full}", 1)
    assert is_bad_counter("cutover_forward_failures_total", 2)
    assert not is_bad_counter("cutover_events_dropped_total{reason=buffer_full}", 0)
    assert not is_bad_counter("cutover_events_received_total", 5)
    # the admin's polling of services still starting: every green run has some
    assert not is_bad_counter("cutover_upstream_errors_total{target=storage}", 3)


def test_bad_counters_are_the_monitors_error_counters():
    from harness.runner.monitor import _ERROR_COUNTER

    assert BAD_COUNTER.pattern == _ERROR_COUNTER.pattern
