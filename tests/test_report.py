"""The HTML report: rendered from a RunResult alone, self-contained, escaped, readable.

RunResults are built by hand here (a passing run with a full timeline, a failing one with
findings and a rollback, one with no timeline, one simulated), so the report is tested without
running a scenario.
"""

from __future__ import annotations

import html
import json
import math
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from harness.report import ReportError, render_index, render_run, render_run_dir
from harness.report import formatting as fmt
from harness.report.render import PLOTLY_JS, PLOTLY_VERSION
from harness.report.timeline import (
    ERROR_WINDOW_S,
    MARKER_STYLES,
    downsample,
    figure_json,
    timeline_figure,
    traffic_steps,
)
from harness.results import (
    Counts,
    Drain,
    EventFinding,
    Findings,
    LatencyStats,
    Marker,
    PhaseSpan,
    Rollback,
    RunResult,
    Sample,
    ServiceReport,
    SloResult,
    Verdict,
)

XSS = "<script>alert(1)</script>"
PLOTLY_HEADER = "plotly.js (basic - minified) v"  # the vendored bundle's first comment
CHROMIUM = Path("/usr/bin/chromium")

# -- building runs by hand ---------------------------------------------------------------------

PHASES = [PhaseSpan(name="foundation", start_s=0, end_s=10),
          PhaseSpan(name="parallel", start_s=10, end_s=40),
          PhaseSpan(name="traffic switch", start_s=40, end_s=100),
          PhaseSpan(name="cleanup", start_s=100, end_s=120)]

SCENARIO_YAML = """\
name: traffic-switch
description: step the traffic 10..100% & check <everything>
phases:
  - traffic: {steps: [10, 25, 50, 75, 90, 100], hold: 5m, gate: ["p(95) < 100ms"]}
"""


def _phase_at(t: float) -> str:
    return next((p.name for p in PHASES if p.start_s <= t < p.end_s), PHASES[-1].name)


def _percent_at(t: float, rollback_at: float | None = None) -> int:
    if rollback_at is not None and t >= rollback_at:
        return 0
    if t < 40:
        return 0
    steps = [10, 25, 50, 75, 90, 100]
    return steps[min(int((t - 40) // 10), len(steps) - 1)] if t < 100 else 100


def _timeline(seconds: int, rollback_at: float | None = None) -> list[Sample]:
    samples = []
    for t in range(seconds):
        spike = rollback_at is not None and rollback_at - 8 <= t < rollback_at
        samples.append(Sample(
            t_s=float(t), phase=_phase_at(t), new_percent=_percent_at(t, rollback_at),
            shadow=10 <= t < 100, emitted=50 * (t + 1), stored=50 * t,
            throughput_eps=50.0 + 5 * math.sin(t / 5) - (30 if spike else 0),
            p95_ms=None if t == 0 else (180.0 if spike else 40.0 + (t % 7)),
            error_rate=0.08 if spike else 0.0005, queue_depth=0,
            healthy={"storage": not spike, "legacy": True}))
    return samples


def _slos(passing: bool) -> list[SloResult]:
    return [
        SloResult(threshold="p(95) < 100ms", metric="p95", target=0.1,
                  measured=0.046 if passing else 0.183, passed=passing),
        SloResult(threshold="error_rate < 1%", metric="error_rate", target=0.01,
                  measured=0.0005 if passing else 0.08, passed=passing),
        SloResult(threshold="loss == 0", metric="loss", target=0, measured=0 if passing else 250,
                  passed=passing),
        SloResult(threshold="availability >= 99.9%", metric="availability", target=0.999,
                  measured=1.0, passed=True),
        SloResult(threshold="throughput >= 10/s", metric="throughput", target=10,
                  measured=None, passed=False, note="no samples in the window"),
    ]


def _services(log_line: str = "") -> list[ServiceReport]:
    return [
        ServiceReport(name="storage", metrics={"events_written_total": 5950, "queue_depth": 0},
                      log_excerpt=['{"level": "INFO", "msg": "started"}',
                                   '{"level": "ERROR", "msg": "influx write failed"}',
                                   *([log_line] if log_line else [])]),
        ServiceReport(name="legacy", metrics={"events_written_total": 3000, "buffer_size": 12.5},
                      log_excerpt=['{"level": "INFO", "msg": "subscribed"}']),
    ]


def passing_run() -> RunResult:
    return RunResult(
        scenario="traffic-switch", description="Step the traffic 10..100% with no fault.",
        scenario_file="scenarios/traffic-switch.yaml", scenario_text=SCENARIO_YAML,
        runtime="process", started_at="2025-03-01T10:00:00+00:00", duration_s=120.0,
        time_scale=0.01,
        verdict=Verdict(passed=True, summary="Every one of 6,000 events was stored exactly once; "
                        "every SLO held.", reasons=[]),
        expected="pass",
        counts=Counts(emitted=6000, expected=6000, stored_production=6000, stored_shadow=4500),
        findings=Findings(), slos=_slos(passing=True),
        latency={"new": LatencyStats(count=3500, p50_ms=21.0, p95_ms=46.2, p99_ms=71.9,
                                     max_ms=130.4),
                 "legacy": LatencyStats(count=2500, p50_ms=12.3, p95_ms=30.0, p99_ms=44.1,
                                        max_ms=90.0)},
        error_rate=0.0005, availability=1.0, throughput_eps=50.0, phases=PHASES,
        markers=[Marker(t_s=0, kind="phase", label="foundation"),
                 *[Marker(t_s=40 + 10 * i, kind="traffic", label=f"traffic -> {p}%")
                   for i, p in enumerate([10, 25, 50, 75, 90, 100])],
                 Marker(t_s=38, kind="check", label="shadow consistent: 1,500 of 1,500"),
                 Marker(t_s=100, kind="service", label="stop legacy")],
        timeline=_timeline(120), services=_services())


LOST = [EventFinding(context_id=f"01JLOST{i:019d}", entity_id=f"sensor.temp_{i}",
                     time_fired=f"2025-03-01T10:01:0{i}.000+00:00", phase="traffic switch",
                     path="new", detail="not in production") for i in range(3)]
DUPLICATED = [EventFinding(context_id=f"01JDUP{i:020d}", entity_id="light.kitchen",
                           time_fired="2025-03-01T10:00:50.500+00:00", phase="traffic switch",
                           path="legacy", detail="stored 2 times") for i in range(2)]
INCONSISTENT = [EventFinding(context_id="01JINCONSISTENT00000000000", entity_id=f"switch.{XSS}",
                             time_fired="2025-03-01T10:00:20+00:00", phase="parallel",
                             path="shadow", detail="state 'on' stored as 'True'")]


def failing_run() -> RunResult:
    return RunResult(
        scenario="kill-storage-mid-switch", description=f"SIGKILL data-storage at 50% {XSS}",
        scenario_file="scenarios/kill-storage.yaml", scenario_text=SCENARIO_YAML + f"# {XSS}\n",
        runtime="process", started_at="2025-03-01T10:00:00Z", duration_s=120.0, time_scale=0.01,
        verdict=Verdict(passed=False, summary="250 events were lost after data-storage was "
                        "killed at 50% traffic; the loss trigger rolled back.",
                        reasons=["loss == 0: 250 events lost", "p(95) < 100ms: measured 183 ms",
                                 f"unsafe {XSS} reason"]),
        expected="pass",
        counts=Counts(emitted=6000, expected=5990, unsubscribed=10, stored_production=5742,
                      stored_shadow=4480, lost=250, duplicated=2, unexpected=0, inconsistent=1),
        findings=Findings(lost=LOST, duplicated=DUPLICATED, inconsistent=INCONSISTENT),
        findings_truncated=True, slos=_slos(passing=False),
        latency={"new": LatencyStats(count=3200, p50_ms=25.0, p95_ms=183.0, p99_ms=410.0,
                                     max_ms=2200.0)},
        error_rate=0.08, availability=0.981, throughput_eps=47.9, phases=PHASES,
        markers=[Marker(t_s=40, kind="traffic", label="traffic -> 10%"),
                 Marker(t_s=60, kind="traffic", label="traffic -> 50%"),
                 Marker(t_s=62, kind="fault", label="kill -9 storage"),
                 Marker(t_s=70, kind="trigger", label=f"loss > 0 fired {XSS}"),
                 Marker(t_s=70.5, kind="rollback", label="traffic -> 0%"),
                 Marker(t_s=90, kind="check", label="zero loss: FAILED")],
        timeline=_timeline(120, rollback_at=70.5),
        rollback=Rollback(triggered=True, trigger="loss", at_s=70.5,
                          evidence="250 events lost (threshold: loss > 0)"),
        services=_services(log_line=f'{{"level": "WARNING", "msg": "{XSS}"}}'))


def empty_timeline_run() -> RunResult:
    result = passing_run().model_copy(update={"timeline": [], "scenario": "no-samples"})
    return result


def simulated_run() -> RunResult:
    return passing_run().model_copy(update={
        "scenario": "eight-day-plan-100x", "runtime": "simulated", "simulated": True,
        "time_scale": 1.0, "duration_s": 8 * 86400.0, "timeline": _timeline(120),
    })


def render(result: RunResult, tmp_path: Path) -> str:
    return render_run(result, tmp_path).read_text(encoding="utf-8")


# -- reading the page back ---------------------------------------------------------------------


class _Page(HTMLParser):
    """Tags with their attributes, and what each <script> holds (HTMLParser reads script
    bodies as raw text, so a string inside plotly.js is never mistaken for a tag)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data


def parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    return parsed


def _is_external(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


# -- the run page ------------------------------------------------------------------------------


def test_a_passing_run_shows_its_verdict_slos_latency_and_chart(tmp_path):
    page = render(passing_run(), tmp_path)
    assert (tmp_path / "report.html").exists()
    assert "PASSED" in page and "FAILED" not in page
    assert "Every one of 6,000 events was stored exactly once" in page
    # SLO rows: the threshold as written (escaped), target and measured with units, a mark
    for threshold in ("p(95) &lt; 100ms", "error_rate &lt; 1%", "loss == 0",
                      "availability &gt;= 99.9%", "throughput &gt;= 10/s"):
        assert threshold in page
    assert "100 ms" in page and "46 ms" in page  # latency targets are stored in seconds
    assert "0.05%" in page and "10/s" in page and "not measured" in page
    assert page.count("✔ pass") == 4 and page.count("✘ fail") == 1
    for cell in ("21 ms", "46 ms", "72 ms", "130 ms", "3,500"):
        assert cell in page
    assert 'id="timeline-chart"' in page and "Plotly.newPlot" in page
    assert "time_scale" not in page and "×0.01" in page
    assert "SIMULATED" not in page


def test_a_failing_run_shows_reasons_findings_and_the_rollback(tmp_path):
    page = render(failing_run(), tmp_path)
    assert "FAILED" in page and "PASSED" not in page
    assert "loss == 0: 250 events lost" in page
    assert "p(95) &lt; 100ms: measured 183 ms" in page
    for finding in LOST + DUPLICATED + INCONSISTENT:
        assert finding.context_id in page
    assert "sensor.temp_2" in page and "stored 2 times" in page
    # capped lists say so, against the uncapped counts
    assert "showing 3 of 250" in page and "showing 2 of 2" not in page
    assert "The lists below are capped" in page
    assert 'id="rollback"' in page and "250 events lost (threshold: loss &gt; 0)" in page
    assert "rollback triggered by loss at 70.5s" in page
    assert "183 ms" in page and "8%" in page  # measured p95 and error rate, with units
    assert 'class="card alarm"' in page


def test_run_text_is_escaped_everywhere(tmp_path):
    page = render(failing_run(), tmp_path)
    assert XSS not in page
    assert html.escape(XSS, quote=False) in page  # log line, description, reason, entity, YAML
    parsed = parse(page)
    # no script element came from the run's text: ours are the print helper, plotly.js,
    # the chart's JSON and the call that draws it
    assert not any(s.strip().startswith("alert(") for s in parsed.scripts)
    assert len(parsed.scripts) == 4
    data = next(s for s in parsed.scripts if s.lstrip().startswith('{"data"'))
    # plotly reads HTML in labels, so they are entity-escaped, then JSON-escaped for <script>
    assert "<" not in data and "\\u0026lt;script\\u0026gt;alert(1)" in data
    assert "&lt;everything&gt;" in page  # the scenario file, in its <pre>


def test_the_page_fetches_nothing_and_embeds_plotly_once(tmp_path):
    page = render(failing_run(), tmp_path)
    parsed = parse(page)
    urls = [value for _, attrs in parsed.tags for key, value in attrs.items()
            if key in ("src", "href", "srcset", "data", "action") and value]
    assert not [u for u in urls if _is_external(u)]
    assert not [t for t, _ in parsed.tags if t in ("link", "iframe", "img", "object")]
    assert all("url(" not in css and "@import" not in css for css in parsed.styles)
    assert sum(PLOTLY_HEADER in s[:200] for s in parsed.scripts) == 1
    assert page.count(PLOTLY_HEADER) == 1


def test_an_empty_timeline_gets_a_message_not_an_empty_chart(tmp_path):
    page = render(empty_timeline_run(), tmp_path)
    assert "No timeline was recorded" in page
    assert 'id="timeline-chart"' not in page and "Plotly.newPlot" not in page
    assert PLOTLY_HEADER not in page  # no chart, so no 1 MB of library
    assert "foundation" in page and "traffic -&gt; 50%" in page  # phases and events, listed


def test_a_simulated_run_says_so_prominently(tmp_path):
    page = render(simulated_run(), tmp_path)
    assert 'class="badge sim">SIMULATED' in page
    assert 'class="simulated">SIMULATED' in page
    assert "8d 00h" in page


def test_findings_with_no_cap_show_no_cap_note(tmp_path):
    result = failing_run().model_copy(update={
        "findings_truncated": False,
        "counts": failing_run().counts.model_copy(update={"lost": 3})})
    page = render(result, tmp_path)
    assert 'class="capped"' not in page
    assert "Lost: 3" in page


# -- the index ---------------------------------------------------------------------------------


def test_the_index_links_every_run_with_its_verdict(tmp_path):
    runs = [(passing_run(), "a"), (failing_run(), "b"), (simulated_run(), "c")]
    entries = []
    for result, name in runs:
        report = render_run(result, tmp_path / "runs" / name)
        # one run is given by its directory, the others by their report file
        entries.append((result, report.parent if name == "b" else report))
    index = render_index(entries, tmp_path / "index.html")
    page = index.read_text(encoding="utf-8")
    hrefs = [attrs["href"] for tag, attrs in parse(page).tags if tag == "a"]
    assert hrefs == ["runs/a/report.html", "runs/b/report.html", "runs/c/report.html"]
    assert all((tmp_path / href).exists() for href in hrefs)
    rows = page[page.index("<tbody>"):]
    assert rows.count("✔ PASSED") == 2 and rows.count("✘ FAILED") == 1
    assert "2 of 3 passed" in page and "✘ FAILED" in page[:page.index("<tbody>")]
    assert "kill-storage-mid-switch" in page
    assert XSS not in page


# -- from a run directory ----------------------------------------------------------------------


def test_render_run_dir_renders_run_json(tmp_path):
    (tmp_path / "run.json").write_text(failing_run().model_dump_json(indent=2))
    out = render_run_dir(tmp_path)
    assert out == tmp_path / "report.html"
    assert "kill-storage-mid-switch" in out.read_text(encoding="utf-8")


def test_render_run_dir_takes_the_run_json_itself_too(tmp_path):
    (tmp_path / "run.json").write_text(passing_run().model_dump_json())
    assert render_run_dir(tmp_path / "run.json") == tmp_path / "report.html"


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ('{"scenario": "x"}', "not a valid run result: runtime: Field required"),
    ('{"scenario": 1}', "and "),
])
def test_render_run_dir_names_the_file_and_the_fault(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(ReportError) as err:
        render_run_dir(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "run.json") in message
    assert expected in message
    assert "\n" not in message
    assert not (tmp_path / "report.html").exists()


def test_render_run_dir_on_a_missing_directory(tmp_path):
    with pytest.raises(ReportError, match="no such run directory"):
        render_run_dir(tmp_path / "nope")


# -- formatting and the chart's data -----------------------------------------------------------


@pytest.mark.parametrize("metric, value, text", [
    ("p95", 0.1, "100 ms"), ("p99.9", 0.0042, "4.2 ms"), ("error_rate", 0.001, "0.1%"),
    ("availability", 0.999, "99.90%"), ("availability", 1.0, "100%"),
    ("throughput", 12.5, "12.5/s"), ("loss", 1234, "1,234"), ("perf_drop", 0.2, "20.00%"),
    ("p95", None, "not measured"),
])
def test_slo_values_read_in_their_units(metric, value, text):
    assert fmt.slo_value(metric, value) == text


@pytest.mark.parametrize("seconds, text", [
    (4.25, "4.25s"), (92.5, "1m 32.5s"), (120, "2m 00s"), (7260, "2h 01m"), (8 * 86400, "8d 00h")])
def test_durations(seconds, text):
    assert fmt.duration(seconds) == text


def test_long_timelines_are_bucketed_keeping_spikes_and_exact_traffic_steps():
    samples = _timeline(120, rollback_at=70.5) * 100  # 12,000 samples
    samples = [s.model_copy(update={"t_s": float(i)}) for i, s in enumerate(samples)]
    points = downsample(samples, max_points=1000)
    assert len(points) <= 1000
    assert max(p.p95_ms or 0 for p in points) == 180.0
    assert max(p.error_rate for p in points) == 0.08
    xs, ys = traffic_steps(_timeline(120, rollback_at=70.5))
    # each change once, then the last sample so the line reaches the end of the run
    assert ys == [0, 10, 25, 50, 75, 0, 0]
    assert xs == [0, 40, 50, 60, 70, 71, 119]


def test_chart_json_cannot_close_its_script_element():
    result = failing_run()
    result.timeline[5].throughput_eps = float("nan")
    text = figure_json(timeline_figure(result))
    assert "<" not in text and ">" not in text and "NaN" not in text
    assert timeline_figure(empty_timeline_run()) is None


# -- size and offline -------------------------------------------------------------------------

REPORT_LIMIT_BYTES = 1_500_000


def test_a_green_report_is_small_and_fetches_nothing(tmp_path):
    # A long green run: as many chart points as the timeline ever draws (MAX_POINTS).
    result = passing_run().model_copy(update={"timeline": _timeline(3000)})
    report = render_run(result, tmp_path)
    page = report.read_text(encoding="utf-8")
    assert report.stat().st_size < REPORT_LIMIT_BYTES, report.stat().st_size
    assert "Plotly.newPlot" in page and PLOTLY_HEADER + PLOTLY_VERSION in page
    assert '<script src="http' not in page.lower()
    assert not [attrs for tag, attrs in parse(page).tags if tag == "script" and "src" in attrs]


def test_the_timeline_uses_only_trace_types_the_basic_bundle_has():
    # plotly.js-basic-dist-min holds bar, pie and scatter; any other type draws nothing.
    result = failing_run().model_copy(update={"drain": _drain(), "interrupted": True})
    figure = timeline_figure(result)
    assert {trace["type"] for trace in figure["data"]} <= {"scatter", "bar", "pie"}
    assert PLOTLY_JS.is_file() and (PLOTLY_JS.parent / "plotly-LICENSE").is_file()
    assert f"v{PLOTLY_VERSION}" in PLOTLY_JS.read_text(encoding="utf-8")[:200]


# -- what the charts and markers mean ----------------------------------------------------------


def test_the_error_rate_says_what_it_measures(tmp_path):
    figure = timeline_figure(failing_run())
    errors = next(t for t in figure["data"] if t.get("yaxis") == "y4")
    assert "last 10 s" in errors["name"] and "of events received" in errors["name"]
    assert "last 10 s" in figure["layout"]["yaxis4"]["title"]["text"]
    assert "last 10 s" in errors["hovertemplate"]
    page = render(failing_run(), tmp_path)
    assert "The error rate is not cumulative" in page
    assert "after a rollback" in page


def test_the_error_window_is_the_monitors():
    # The label says 10 s because both monitors sample the error rate over window(10.0).
    for module in ("harness/runner/monitor.py", "simulators/des/monitor.py"):
        source = (Path(__file__).parents[1] / module).read_text(encoding="utf-8")
        assert f"window({float(ERROR_WINDOW_S)})" in source, module


def _lane(figure: dict) -> dict[str, dict]:
    return {t["name"]: t for t in figure["data"] if t.get("yaxis") == "y"}


def test_kill_and_start_have_distinct_markers(tmp_path):
    result = passing_run().model_copy(update={"markers": [
        Marker(t_s=1, kind="service", label="start storage"),
        Marker(t_s=30, kind="service", label="kill storage"),
        Marker(t_s=31, kind="service", label="healthy: storage"),
        Marker(t_s=32, kind="service", label="restart legacy")]})
    lane = _lane(timeline_figure(result))
    symbols = {name: trace["marker"]["symbol"] for name, trace in lane.items()}
    assert set(symbols) == {"start", "kill", "healthy", "restart"}
    assert len(set(symbols.values())) == 4
    assert lane["kill"]["marker"]["color"] != lane["start"]["marker"]["color"]
    assert {tuple(t["y"]) for t in lane.values()} == {("service",)}  # still one lane row
    lines = [s for s in timeline_figure(result)["layout"]["shapes"] if s["type"] == "line"]
    assert lines[0]["line"] != lines[1]["line"]
    page = render(result, tmp_path)
    assert "service · kill" in page and "service · start" in page
    assert "▶</b> start" in page and "✕</b> kill" in page


def _drain(unstored_end: int = 0, settled: bool = True) -> Drain:
    return Drain(start_s=110.0, end_s=116.5, unstored_start=12, unstored_end=unstored_end,
                 settled=settled)


def _with_drain_marker(result: RunResult) -> RunResult:
    return result.model_copy(update={
        "markers": [*result.markers, Marker(t_s=110.0, kind="note",
                                            label="load stopped; draining")]})


def test_the_drain_is_drawn_with_what_it_left_unstored(tmp_path):
    result = _with_drain_marker(passing_run()).model_copy(
        update={"drain": _drain(unstored_end=3, settled=False)})
    figure = timeline_figure(result)
    bands = [s for s in figure["layout"]["shapes"]
             if s["type"] == "rect" and (s["x0"], s["x1"]) == (110.0, 116.5)]
    assert len(bands) == 1
    lane = _lane(figure)
    assert lane["drain"]["x"] == [110.0] and lane["drain end"]["x"] == [116.5]
    assert lane["drain label"]["text"] == ["drain: 12 → 3 unstored\u2003"]  # beside it
    assert lane["drain label"]["x"] == [110.0]
    assert "12 event(s) unstored when it began, 3 when it ended" in \
        lane["drain end"]["text"][0]  # and on hover
    assert figure["layout"]["xaxis"]["range"][1] >= 116.5
    page = render(result, tmp_path)
    assert 'class="drain bad-drain"' in page
    assert "not settled: its timeout passed after 6.5 s" in page


def test_a_drain_run_json_does_not_record_is_named_not_invented(tmp_path):
    result = _with_drain_marker(passing_run())
    assert result.drain is None
    lane = _lane(timeline_figure(result))
    assert lane["drain"]["x"] == [110.0] and "drain end" not in lane
    assert lane["drain"]["marker"]["symbol"] != MARKER_STYLES["note"].symbol
    page = render(result, tmp_path)
    assert "The drain began at 110s" in page
    assert "does not record when it ended, whether it settled, or how many events" in page
    assert "drain:" not in json.dumps(timeline_figure(result))


# -- service logs and metrics ------------------------------------------------------------------

UVICORN_INFO = ('{"time":"2026-12-05T07:16:05.462560+00:00","level":"info","service":"admin",'
                '"logger":"uvicorn.error","message":"Started server process [25380]"}')
REAL_ERROR = ('{"time":"2026-12-05T05:25:30.379227+00:00","level":"error","service":"storage",'
              '"logger":"pipeline.storage.store","message":"could not queue accepted events"}')


def _logs(summary_of: str, page: str) -> str:
    start = page.index(f"<summary>{summary_of} ")
    return page[start:page.index("</details>", start)]


def test_only_real_error_lines_are_flagged(tmp_path):
    result = passing_run().model_copy(update={"services": [
        ServiceReport(name="admin", log_excerpt=[UVICORN_INFO] * 4),
        ServiceReport(name="storage", log_excerpt=[UVICORN_INFO, REAL_ERROR])]})
    page = render(result, tmp_path)
    admin, storage = _logs("admin", page), _logs("storage", page)
    assert "error" not in admin.split("</summary>")[0]  # no badge on a green service
    assert 'class="err"' not in admin
    assert "1 error<" in storage.split("</summary>")[0]
    assert f'<span class="err">{escape(REAL_ERROR)}</span>' in storage  # as autoescape writes it
    assert f'<span class="err">{escape(UVICORN_INFO)}' not in storage


def test_a_green_runs_logs_show_no_error_badge(tmp_path):
    page = render(passing_run().model_copy(update={"services": [
        ServiceReport(name=name, log_excerpt=[UVICORN_INFO, UVICORN_INFO.replace(
            "Started server process", "Application startup complete")])
        for name in ("admin", "legacy", "storage", "ingestion")]}), tmp_path)
    services = page[page.index('<section id="services">'):]
    assert 'class="bad"' not in services and 'class="err"' not in services


def test_labelled_metrics_are_shown(tmp_path):
    result = passing_run().model_copy(update={"services": [ServiceReport(
        name="legacy", metrics={"cutover_events_received_total": 100.0,
                                "cutover_events_dropped_total{reason=buffer_full}": 7.0,
                                "cutover_events_dropped_total{reason=shutdown}": 0.0})]})
    page = render(result, tmp_path)
    services = html.unescape(page[page.index('<section id="services">'):])
    assert 'cutover_events_dropped_total{reason="buffer_full"}' in services
    assert 'cutover_events_dropped_total{reason="shutdown"}' in services
    assert '<span class="bad">7</span>' in services  # a drop is evidence
    assert '<span class="bad">0</span>' not in services


# -- an interrupted run ------------------------------------------------------------------------


def interrupted_run() -> RunResult:
    return passing_run().model_copy(update={
        "interrupted": True,
        "verdict": Verdict(passed=False, summary="INTERRUPTED: by Ctrl-C (SIGINT) at 61.0 s in "
                           "phase traffic switch, before the plan finished. So far 3,000 events "
                           "fired.", reasons=["interrupted by Ctrl-C (SIGINT)"])})


def test_an_interrupted_run_says_so_and_that_its_figures_are_partial(tmp_path):
    page = render(interrupted_run(), tmp_path)
    verdict = page[page.index('<section id="verdict"'):page.index("</section>")]
    assert 'class="verdict interrupted"' in verdict
    assert "INTERRUPTED</p>" in verdict and "Partial figures" in verdict
    assert "PASSED" not in page and "FAILED" not in page
    assert page.count('class="badge interrupted"') == 1
    assert "<title>INTERRUPTED" in page
    index = render_index([(interrupted_run(), render_run(interrupted_run(), tmp_path / "i"))],
                         tmp_path / "index.html").read_text(encoding="utf-8")
    rows = index[index.index("<tbody>"):]
    assert "INTERRUPTED" in rows and "FAILED" not in rows


def test_a_run_without_the_interrupted_flag_is_not_interrupted(tmp_path):
    page = render(passing_run(), tmp_path)
    assert "INTERRUPTED" not in page and "Partial figures" not in page


# -- in a real browser -------------------------------------------------------------------------


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    # Everything that would reach the network in the background is off, and every host name
    # fails to resolve: a page that tried to fetch something would log a load error.
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={user_data}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is missing: install Debian's chromium "
                           "(apt-get install -y chromium) to run this browser test")
def test_the_report_renders_in_headless_chromium(tmp_path):
    # First a page that throws, so a silent stderr below means "no error", not "no logging".
    canary = tmp_path / "canary.html"
    canary.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    seen = _chromium("--dump-dom", canary.as_uri(), user_data=tmp_path / "profile")
    assert "Uncaught ReferenceError" in seen.stderr, "Chromium no longer logs the console"

    report = render_run(failing_run(), tmp_path / "run")
    result = _chromium("--dump-dom", report.as_uri(), user_data=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line], console
    assert not [line for line in console if "Failed to load resource" in line], console
    assert "FAILED" in dom and "kill-storage-mid-switch" in dom
    assert 'class="main-svg"' in dom  # plotly drew the timeline
    assert "traffic to new (%)" in dom  # its legend, so the traces are there too
    assert "<script>alert(1)</script>" not in dom
