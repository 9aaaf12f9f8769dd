"""Render a run's ``run.json`` as one self-contained HTML page, and an index of several runs.

Self-contained means it opens from disk on a machine with no network: the CSS is inline and
plotly.js (the basic bundle vendored in ``vendor/``, 1.2 MB: the timeline draws only scatter
traces) is embedded once in the page, never fetched. All text from the run goes through Jinja's
autoescaping; the only unescaped insertions are plotly.js itself and the chart's JSON, which is
escaped for a <script> element (see timeline.py).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
import pydantic
from markupsafe import Markup

from harness.errors import ReportError
from harness.report import formatting as fmt
from harness.report import services as svc_rules
from harness.report.timeline import (
    ERROR_RATE_MEANS,
    drain_words,
    figure_json,
    marker_keys,
    marker_style,
    timeline_figure,
)
from harness.results import EventFinding, LatencyStats, Marker, RunResult

RUN_FILE = "run.json"
REPORT_FILE = "report.html"
_TEMPLATES = Path(__file__).parent / "templates"
# plotly.js-basic-dist-min, unchanged (vendor/README.md says where from and how to update).
PLOTLY_JS = Path(__file__).parent / "vendor" / "plotly-basic.min.js"
PLOTLY_VERSION = "4.1.1"

# Paths in the order a reader compares them; any other key follows, alphabetically.
_PATH_ORDER = ("legacy", "new", "shadow", "all")


# -- what the templates are given ------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str = ""
    alarm: bool = False  # drawn in red: the number is evidence of a failure


@dataclass(frozen=True)
class SloRow:
    threshold: str
    target: str
    measured: str
    passed: bool
    note: str


@dataclass(frozen=True)
class FindingsTable:
    key: str
    title: str
    meaning: str
    rows: list[EventFinding]
    total: int  # from the counts, which are never capped
    truncated: bool

    @property
    def shown(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class MetricCell:
    text: str
    bad: bool = False  # a drop, rejection or failure counter above zero: drawn in red


@dataclass(frozen=True)
class ServiceTable:
    metric_names: list[str]  # the series as run.json names them
    services: list[str]
    labels: dict[str, str] = field(default_factory=dict)  # name -> as Prometheus writes it
    cells: dict[str, dict[str, MetricCell]] = field(default_factory=dict)  # metric -> service


@dataclass(frozen=True)
class ServiceLog:
    name: str
    lines: list[tuple[str, bool]]  # (line, is an error line: highlighted)

    @property
    def errors(self) -> int:
        return svc_rules.error_count(line for line, is_error in self.lines if is_error)


@dataclass(frozen=True)
class VerdictLook:
    """How the page states the verdict: a word, a glyph, and the tone (CSS class)."""

    word: str  # PASSED / FAILED / INTERRUPTED
    glyph: str
    tone: str  # pass / fail / interrupted


@dataclass(frozen=True)
class MarkerRow:
    marker: Marker
    what: str  # its kind, and for a service or the drain the action too: "service · kill"


# -- the environment ---------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        # Always on: select_autoescape() goes by the name's last suffix, which here is '.j2'.
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the render, loudly
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(integer=fmt.count, number=fmt.number, ms=fmt.ms, percent=fmt.percent,
                       rate=fmt.rate, duration=fmt.duration, timestamp=fmt.timestamp)
    return env


@functools.cache
def _plotly_js() -> Markup:
    """The vendored plotly.js basic bundle (read once per process), for pages with a chart."""
    js = PLOTLY_JS.read_text(encoding="utf-8")
    # It goes inline in a <script> element, which the first '</script' would end.
    if "</script" in js.lower():
        raise RuntimeError("this plotly.min.js contains '</script' and cannot be inlined")
    return Markup(js)  # noqa: S704 - our own vendored plotly.js, checked just above


# -- the run page ------------------------------------------------------------------------------


def _cards(result: RunResult) -> list[tuple[str, list[Card]]]:
    """The headline numbers in three rows: where events went, what is wrong with the stored
    data (red when anything is), and how the service behaved."""
    c = result.counts
    accounting = [
        Card("emitted", fmt.count(c.emitted), "events Home Assistant fired"),
        Card("expected", fmt.count(c.expected),
             f"{fmt.count(c.unsubscribed)} fired with no subscriber, "
             f"{fmt.count(c.recovered)} of them recovered from history" if c.unsubscribed else
             "what production must hold"),
        Card("stored · production", fmt.count(c.stored_production), "distinct event ids"),
        Card("stored · shadow", fmt.count(c.stored_shadow), "new pipeline, parallel run"),
    ]
    wrong = [
        Card("lost", fmt.count(c.lost), "expected, not in production", alarm=c.lost > 0),
        Card("duplicated", fmt.count(c.duplicated), "stored more than once",
             alarm=c.duplicated > 0),
        Card("unexpected", fmt.count(c.unexpected), "stored, never emitted",
             alarm=c.unexpected > 0),
        Card("inconsistent", fmt.count(c.inconsistent), "production and shadow differ",
             alarm=c.inconsistent > 0),
    ]
    service = [
        Card("throughput", fmt.rate(result.throughput_eps), "stored per second"),
        Card("availability", fmt.percent(result.availability), "of the run"),
        Card("error rate", fmt.percent(result.error_rate), "of events handled"),
    ]
    return [("Where the events went", accounting), ("What is wrong with the stored data", wrong),
            ("How the service behaved", service)]


def _slo_rows(result: RunResult) -> list[SloRow]:
    return [SloRow(threshold=s.threshold,
                   target=fmt.slo_value(s.metric, s.target),
                   measured=fmt.slo_value(s.metric, s.measured),
                   passed=s.passed, note=s.note) for s in result.slos]


def _latency_rows(result: RunResult) -> list[tuple[str, LatencyStats]]:
    def order(path: str) -> tuple[int, str]:
        return (_PATH_ORDER.index(path) if path in _PATH_ORDER else len(_PATH_ORDER), path)

    return [(path, result.latency[path]) for path in sorted(result.latency, key=order)]


_FINDING_KINDS = (
    ("lost", "Lost", "Fired by Home Assistant (sent to a subscriber, or fired while nobody was "
                     "subscribed and not recovered from its history), never stored in production."),
    ("duplicated", "Duplicated", "Stored in production more than once."),
    ("unexpected", "Unexpected", "Stored in production, never emitted by Home Assistant."),
    ("inconsistent", "Inconsistent", "Production and shadow disagree about the event."),
)


def _findings(result: RunResult) -> list[FindingsTable]:
    tables = []
    for key, title, meaning in _FINDING_KINDS:
        rows = getattr(result.findings, key)
        # The counts are the truth; a list longer than its count means the counts are stale,
        # and the larger number is the honest one to show.
        total = max(getattr(result.counts, key), len(rows))
        tables.append(FindingsTable(key=key, title=title, meaning=meaning, rows=rows,
                                    total=total, truncated=len(rows) < total))
    return tables


def _service_table(result: RunResult) -> ServiceTable:
    """Every series each service reported, labelled ones included (``name{reason="..."}``
    sorts after ``name``), a non-zero drop or failure counter in red."""
    names = sorted({name for svc in result.services for name in svc.metrics})
    cells = {name: {svc.name: MetricCell(fmt.number(svc.metrics[name]),
                                         svc_rules.is_bad_counter(name, svc.metrics[name]))
                    for svc in result.services if name in svc.metrics} for name in names}
    return ServiceTable(metric_names=names, services=[s.name for s in result.services],
                        labels={name: svc_rules.metric_label(name) for name in names},
                        cells=cells)


def _service_logs(result: RunResult) -> list[ServiceLog]:
    return [ServiceLog(svc.name, [(line, svc_rules.is_error_line(line))
                                  for line in svc.log_excerpt])
            for svc in result.services]


def _verdict(result: RunResult) -> VerdictLook:
    # getattr: a RunResult from before the field existed reads as not interrupted.
    if getattr(result, "interrupted", False):
        return VerdictLook("INTERRUPTED", "■", "interrupted")
    if result.verdict.passed:
        return VerdictLook("PASSED", "✔", "pass")
    return VerdictLook("FAILED", "✘", "fail")


def _marker_rows(result: RunResult) -> list[MarkerRow]:
    rows = []
    for marker in sorted(result.markers, key=lambda m: m.t_s):
        key, style = marker_style(marker)
        what = marker.kind if key == marker.kind else f"{marker.kind} · {style.title}"
        rows.append(MarkerRow(marker, what))
    return rows


def _drain_note(result: RunResult) -> str:
    """The drain in words under the chart, or what run.json lacks to say more about it."""
    if result.drain is not None:
        d = result.drain
        return (f"Drain from {fmt.number(d.start_s)}s to {fmt.number(d.end_s)}s: "
                f"{drain_words(d)}.")
    start = next((m for m in result.markers if marker_style(m)[0] == "drain"), None)
    if start is None:
        return ""
    return (f"The drain began at {fmt.number(start.t_s)}s (\"{start.label}\"); this run.json "
            "does not record when it ended, whether it settled, or how many events were "
            "still unstored.")


def _observed_rollback(result: RunResult) -> str:
    rb = result.rollback
    if not rb.triggered:
        return "no rollback"
    when = f" at {fmt.number(rb.at_s)}s" if rb.at_s is not None else ""
    return f"rollback triggered by {rb.trigger or 'an unnamed trigger'}{when}"


def _run_context(result: RunResult) -> dict[str, object]:
    figure = timeline_figure(result)
    return {
        "r": result,
        "verdict": _verdict(result),
        "observed": _observed_rollback(result),
        "cards": _cards(result),
        "slos": _slo_rows(result),
        "latency": _latency_rows(result),
        "findings": _findings(result),
        "service_table": _service_table(result),
        "service_logs": _service_logs(result),
        # Only the looks that occur get a key under the chart.
        "marker_keys": [(kind, style) for _, kind, style in marker_keys(result.markers)],
        "markers": _marker_rows(result),
        "drain_note": _drain_note(result),
        "error_rate_means": ERROR_RATE_MEANS,
        # The chart's data as escaped JSON; plotly.js only on pages that draw a chart.
        "figure_json": Markup(figure_json(figure)) if figure else None,  # noqa: S704 - escaped
        "plotly_js": _plotly_js() if figure else None,
    }


def render_run_html(result: RunResult) -> str:
    """The report page as a string (render_run writes it)."""
    return _environment().get_template("run.html.j2").render(_run_context(result))


def render_run(result: RunResult, out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` for one run and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(render_run_html(result), encoding="utf-8")
    return path


# -- the index ---------------------------------------------------------------------------------


def _report_href(report: Path, index_dir: Path) -> str:
    """A link relative to the index, so a reports folder still works when moved or zipped.
    ``report`` may be the report file or the run directory holding it."""
    target = report / REPORT_FILE if report.is_dir() or not report.suffix else report
    relative = os.path.relpath(target.resolve(), index_dir.resolve())
    return quote(Path(relative).as_posix())


def render_index(results: list[tuple[RunResult, Path]], out_path: Path) -> Path:
    """Write an index page at ``out_path`` linking each run's report (given as the report file
    or its run directory) with its verdict; return ``out_path``."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    runs = [(result, _report_href(Path(report), out_path.parent)) for result, report in results]
    passed = sum(1 for result, _ in runs if result.verdict.passed)
    html = _environment().get_template("index.html.j2").render(
        runs=[(result, href, _verdict(result)) for result, href in runs], passed=passed,
        all_passed=passed == len(runs))
    out_path.write_text(html, encoding="utf-8")
    return out_path


# -- from a run directory ----------------------------------------------------------------------


def _describe_validation(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = exc.error_count() - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"not a valid run result: {where}: {first['msg']}{tail}"


def load_run(run_file: Path) -> RunResult:
    """Read a run.json, raising ReportError naming the file and what is wrong with it."""
    try:
        text = run_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{run_file}: no such file (a run directory holds the run.json "
                          "that `cutover run` writes)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{run_file}: cannot be read: {exc}") from None
    try:
        return RunResult.model_validate_json(text)
    except pydantic.ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ReportError(f"{run_file}: not valid JSON: {exc.errors()[0]['msg']}") from None
        raise ReportError(f"{run_file}: {_describe_validation(exc)}") from None


def render_run_dir(run_dir: Path) -> Path:
    """Load ``run_dir/run.json`` and write ``run_dir/report.html`` (``cutover report RUN_DIR``).
    A path to the run.json itself is accepted too."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_file, run_dir = run_dir, run_dir.parent
    elif not run_dir.exists():
        raise ReportError(f"{run_dir}: no such run directory")
    else:
        run_file = run_dir / RUN_FILE
    return render_run(load_run(run_file), run_dir)
