"""The timeline chart, as a plotly.js figure (plain dicts, serialised to JSON for the page).

Four stacked panels share one time axis, so a person reads cause and effect top to bottom:
what happened (a lane of markers), what the pipeline did (throughput, with the traffic share
as a step line on its own axis), how fast (p95) and how well (error rate). Phases are shaded
bands behind every panel; markers are vertical lines through all of them.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.results import Drain, Marker, PhaseSpan, RunResult, Sample

# A browser draws a few thousand points per line without strain; a simulated 8-day plan has
# hundreds of thousands of one-second samples, so longer timelines are bucketed.
MAX_POINTS = 3000

INK = "#24292f"
MUTED = "#57606a"
BLUE = "#0969da"
AMBER = "#bf8700"
RED = "#cf222e"
GREEN = "#1a7f37"
GREY = "#8c959f"

# The error rate of a Sample is the monitor's 10-second window (Monitor.scrape's
# ``self.window(10.0).error_rate``, and the simulator's the same), not a running total: errors
# before a rollback stay in it for 10 s, so the line can still rise after one.
ERROR_WINDOW_S = 10
ERROR_RATE_NAME = f"error rate (% of events received, last {ERROR_WINDOW_S} s)"
ERROR_RATE_MEANS = (
    f"The error rate is not cumulative: at each second it is the failed or refused event "
    f"handlings of every service, legacy and new (events rejected, dropped or dead-lettered, "
    f"failed forwards and writes, events refused by an open circuit breaker), per event "
    f"received by legacy and ingestion, over the {ERROR_WINDOW_S} seconds before it. Errors "
    f"stay in it for {ERROR_WINDOW_S} s, and a new pipeline still retrying what it holds "
    f"keeps adding to it, so the line can rise for a while after a rollback.")

# Light, neutral tints so bands never compete with the lines drawn over them.
_BAND_COLOURS = ("rgba(9,105,218,0.07)", "rgba(191,135,0,0.08)", "rgba(26,127,55,0.07)",
                 "rgba(130,80,223,0.07)")


@dataclass(frozen=True)
class MarkerStyle:
    title: str
    colour: str
    dash: str  # plotly line dash
    width: float
    symbol: str  # plotly marker symbol in the lane
    glyph: str = ""  # the symbol in text, for the key under the chart


# Fault and rollback are what a reader hunts for: red, and the rollback the heaviest line.
MARKER_STYLES: dict[str, MarkerStyle] = {
    "fault": MarkerStyle("fault", RED, "dash", 1.5, "x", "✕"),
    "rollback": MarkerStyle("rollback", RED, "solid", 3.0, "triangle-down", "▼"),
    "trigger": MarkerStyle("trigger", AMBER, "dot", 2.0, "diamond", "◆"),
    "traffic": MarkerStyle("traffic", BLUE, "dashdot", 1.0, "triangle-up", "▲"),
    "check": MarkerStyle("check", MUTED, "dot", 1.0, "circle-open", "○"),
    "service": MarkerStyle("service", MUTED, "longdash", 1.0, "square-open", "□"),
    "phase": MarkerStyle("phase", GREY, "solid", 0.5, "line-ns-open", "|"),
    "note": MarkerStyle("note", GREY, "dot", 1.0, "star-open", "☆"),
}

# A service marker's label starts with what was done to it ("kill storage", "start legacy",
# "healthy: ..."): a kill and a start are opposite events and must not look alike.
SERVICE_STYLES: dict[str, MarkerStyle] = {
    "start": MarkerStyle("start", GREEN, "dot", 1.0, "triangle-right", "▶"),
    "healthy": MarkerStyle("healthy", GREEN, "dot", 1.0, "circle-open", "○"),
    "stop": MarkerStyle("stop", MUTED, "longdash", 1.0, "square", "■"),
    "kill": MarkerStyle("kill", RED, "dash", 1.5, "x-thin-open", "✕"),
    "restart": MarkerStyle("restart", AMBER, "longdash", 1.0, "circle-cross-open", "⊕"),
    "pause": MarkerStyle("pause", AMBER, "dot", 1.0, "square-x-open", "⊠"),
    "resume": MarkerStyle("resume", GREEN, "dot", 1.0, "triangle-right-open", "▷"),
}
# The note the runner marks when the load stops and it waits for the pipeline to store what it
# holds ("load stopped; draining", or "interrupted by ...: load stopped; draining for ...").
# (A bowtie: the glyphs of plotly's hourglass are missing from common fonts.)
DRAIN_STYLE = MarkerStyle("drain", AMBER, "dot", 1.5, "bowtie", "⧓")
_DRAIN_NOTE = "draining"
_DRAIN_BAND = "rgba(154,103,0,0.10)"


def marker_style(marker: Marker) -> tuple[str, MarkerStyle]:
    """The key and look of one marker: its kind's, or for a service marker its action's, or
    the drain's for the note that starts the drain."""
    if marker.kind == "service":
        verb = marker.label.split(maxsplit=1)[0].rstrip(":") if marker.label.strip() else ""
        if verb in SERVICE_STYLES:
            return f"service-{verb}", SERVICE_STYLES[verb]
    if marker.kind == "note" and _DRAIN_NOTE in marker.label:
        return "drain", DRAIN_STYLE
    return marker.kind, MARKER_STYLES.get(marker.kind, MARKER_STYLES["note"])


def marker_keys(markers: list[Marker]) -> list[tuple[str, str, MarkerStyle]]:
    """(key, kind, style) of every look the markers use, in the lane's order: by kind, then
    as first seen."""
    seen: dict[str, tuple[str, MarkerStyle]] = {}
    for marker in markers:
        key, style = marker_style(marker)
        seen.setdefault(key, (marker.kind, style))
    order = list(MARKER_STYLES)
    ranked = sorted(seen.items(), key=lambda item: order.index(item[1][0])
                    if item[1][0] in order else len(order))
    return [(key, kind, style) for key, (kind, style) in ranked]

# Panel heights in pixels, top to bottom: the lane grows with the kinds of marker it shows, so
# each kind keeps a readable row (plotly drops category labels that would overlap).
_LANE_ROW_PX = 20
_PANELS_PX = (("y2", 250), ("y3", 120), ("y4", 100))  # throughput, p95, error rate
_GAP_PX = 26


def _domains(lane_kinds: int) -> tuple[dict[str, list[float]], int]:
    """Each y axis's domain on the paper, and the plot area's height in pixels."""
    lane_px = lane_kinds * _LANE_ROW_PX
    stack = ([("y", lane_px)] if lane_px else []) + list(_PANELS_PX)
    total = sum(px for _, px in stack) + _GAP_PX * (len(stack) - 1)
    domains, top = {}, float(total)
    for axis, px in stack:
        domains[axis] = [max(0.0, (top - px) / total), top / total]
        top -= px + _GAP_PX
    domains.setdefault("y", [1.0, 1.0])
    return domains, total


@dataclass(frozen=True)
class _Point:
    t_s: float
    phase: str
    throughput_eps: float
    p95_ms: float | None
    error_rate: float


def plot_text(text: str) -> str:
    """Text for plotly, which reads a subset of HTML in labels: escape it so it shows as is."""
    return html.escape(text, quote=False)


def downsample(samples: list[Sample], max_points: int = MAX_POINTS) -> list[_Point]:
    """At most ``max_points`` points; a bucket keeps its worst p95 and error rate (a spike is
    the thing to see) and its mean throughput."""
    size = max(1, math.ceil(len(samples) / max_points))
    points = []
    for start in range(0, len(samples), size):
        bucket = samples[start:start + size]
        p95s = [s.p95_ms for s in bucket if s.p95_ms is not None]
        points.append(_Point(
            t_s=bucket[0].t_s,
            phase=bucket[0].phase,
            throughput_eps=sum(s.throughput_eps for s in bucket) / len(bucket),
            p95_ms=max(p95s) if p95s else None,
            error_rate=max(s.error_rate for s in bucket),
        ))
    return points


def traffic_steps(samples: list[Sample]) -> tuple[list[float], list[int]]:
    """The traffic share only where it changes (plus the last sample), exact however long the
    run: bucketing would smear a rollback to 0% into its neighbours."""
    xs: list[float] = []
    ys: list[int] = []
    for sample in samples:
        if not ys or sample.new_percent != ys[-1]:
            xs.append(sample.t_s)
            ys.append(sample.new_percent)
    if samples and xs[-1] != samples[-1].t_s:
        xs.append(samples[-1].t_s)
        ys.append(samples[-1].new_percent)
    return xs, ys


def _line(name: str, xs: list[float], ys: Sequence[float | None], yaxis: str, colour: str,
          hover: str, **extra: object) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": xs, "y": ys, "yaxis": yaxis,
            "xaxis": "x", "line": {"color": colour, "width": 1.6}, "hovertemplate": hover,
            "connectgaps": False, **extra}


def _data_traces(samples: list[Sample]) -> list[dict[str, Any]]:
    points = downsample(samples)
    xs = [p.t_s for p in points]
    phases = [plot_text(p.phase) for p in points]
    steps_x, steps_y = traffic_steps(samples)
    return [
        _line("throughput (events/s)", xs, [round(p.throughput_eps, 3) for p in points], "y2",
              INK, "%{y:.1f} events/s · %{customdata}<extra></extra>", customdata=phases),
        _line("traffic to new (%)", steps_x, steps_y, "y5", BLUE,
              "%{y}% to new<extra></extra>",
              line={"color": BLUE, "width": 2, "shape": "hv"}),
        _line("p95 latency (ms)", xs, [p.p95_ms for p in points], "y3", AMBER,
              "p95 %{y:.1f} ms<extra></extra>"),
        _line(ERROR_RATE_NAME, xs, [round(p.error_rate * 100, 4) for p in points], "y4", RED,
              f"errors %{{y:.2f}}% of events received in the last {ERROR_WINDOW_S} s"
              "<extra></extra>"),
    ]


def _lane_row(kind: str) -> str:
    """The lane's row for a kind of marker: one row per kind, whatever the symbols in it."""
    return MARKER_STYLES.get(kind, MARKER_STYLES["note"]).title


def _lane_traces(markers: list[Marker], drain: Drain | None) -> list[dict[str, Any]]:
    """One trace per look (`marker_keys`) in the top lane: the points carry the hover labels
    that plotly's shapes (the vertical lines) cannot."""
    traces = []
    for key, kind, style in marker_keys(markers):
        mine = [m for m in markers if marker_style(m)[0] == key]
        traces.append({
            "type": "scatter", "mode": "markers", "name": style.title, "showlegend": False,
            "x": [m.t_s for m in mine], "y": [_lane_row(kind)] * len(mine), "xaxis": "x",
            "yaxis": "y",
            "text": [plot_text(m.label) for m in mine],
            "marker": {"symbol": style.symbol, "size": 11, "color": style.colour,
                       "line": {"width": 1.5, "color": style.colour}},
            "hovertemplate": f"<b>{style.title}</b> at %{{x:.1f}}s: %{{text}}<extra></extra>",
        })
    if drain is not None:
        # Its end (the start is the runner's note, above), and what it left unstored written
        # in the lane left of its start: the drain is at the right edge, where plotly's mode
        # bar covers the top margin.
        row = _lane_row("note")
        traces.append({
            "type": "scatter", "mode": "markers", "name": "drain end", "showlegend": False,
            "x": [drain.end_s], "y": [row], "xaxis": "x", "yaxis": "y",
            "text": [plot_text(drain_words(drain))],
            "marker": {"symbol": "bowtie-open", "size": 11, "color": DRAIN_STYLE.colour,
                       "line": {"width": 1.5, "color": DRAIN_STYLE.colour}},
            "hovertemplate": "<b>drain end</b> at %{x:.1f}s: %{text}<extra></extra>",
        })
        colour = DRAIN_STYLE.colour if drain.unstored_end == 0 and drain.settled else RED
        traces.append({
            "type": "scatter", "mode": "text", "name": "drain label", "showlegend": False,
            "x": [drain.start_s], "y": [row], "xaxis": "x", "yaxis": "y",
            "text": [plot_text(f"drain: {drain.unstored_start:,} → {drain.unstored_end:,} "
                               "unstored\u2003")],  # an em space: clear of the symbol
            "textposition": "middle left", "textfont": {"size": 10, "color": colour},
            "hoverinfo": "skip",
        })
    return traces


def drain_words(drain: Drain) -> str:
    """The drain in one sentence: how long, and what production still lacked."""
    length = max(0.0, drain.end_s - drain.start_s)
    how = (f"settled after {length:.1f} s" if drain.settled else
           f"not settled: its timeout passed after {length:.1f} s")
    return (f"{how}; {drain.unstored_start:,} event(s) unstored when it began, "
            f"{drain.unstored_end:,} when it ended")


def _drain_band(drain: Drain | None) -> list[dict[str, Any]]:
    if drain is None:
        return []
    return [{"type": "rect", "xref": "x", "yref": "paper", "x0": drain.start_s,
             "x1": max(drain.end_s, drain.start_s), "y0": 0, "y1": 1, "layer": "below",
             "line": {"width": 0}, "fillcolor": _DRAIN_BAND}]


def _phase_shapes(phases: list[PhaseSpan]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shapes, labels = [], []
    for i, phase in enumerate(phases):
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": phase.start_s,
                       "x1": phase.end_s, "y0": 0, "y1": 1, "layer": "below",
                       "line": {"width": 0}, "fillcolor": _BAND_COLOURS[i % len(_BAND_COLOURS)]})
        labels.append({"xref": "x", "yref": "paper", "x": (phase.start_s + phase.end_s) / 2,
                       "y": 1.0, "yanchor": "bottom", "showarrow": False,
                       "text": plot_text(phase.name), "font": {"size": 11, "color": MUTED}})
    return shapes, labels


def _marker_lines(markers: list[Marker]) -> list[dict[str, Any]]:
    lines = []
    for marker in markers:
        _, style = marker_style(marker)
        lines.append({"type": "line", "xref": "x", "yref": "paper", "x0": marker.t_s,
                      "x1": marker.t_s, "y0": 0, "y1": 1, "layer": "below",
                      "line": {"color": style.colour, "width": style.width,
                               "dash": style.dash}})
    return lines


def _axis(title: str, domain: list[float], **extra: object) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 11}}, "domain": domain,
            "anchor": "x", "zeroline": False, "gridcolor": "#eaeef2", "rangemode": "tozero",
            "tickfont": {"size": 10}, **extra}


def _x_end(result: RunResult) -> float:
    ends = [result.duration_s, *(s.t_s for s in result.timeline),
            *(p.end_s for p in result.phases), *(m.t_s for m in result.markers),
            *([result.drain.end_s] if result.drain else [])]
    return max(ends) or 1.0  # a zero-length range would hide everything


def _layout(result: RunResult) -> dict[str, Any]:
    band_shapes, band_labels = _phase_shapes(result.phases)
    kinds = {m.kind for m in result.markers} | ({"note"} if result.drain else set())
    lane_kinds = [s.title for k, s in MARKER_STYLES.items() if k in kinds]
    domains, plot_px = _domains(len(lane_kinds))
    # The top margin holds the phase names, below plotly's mode bar.
    margin = {"l": 64, "r": 56, "t": 46, "b": 40}
    return {
        "height": plot_px + margin["t"] + margin["b"],
        "margin": margin,
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                 "color": INK, "size": 12},
        "hovermode": "x unified",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": -0.08, "yanchor": "top",
                   "font": {"size": 11}},
        "xaxis": {"title": {"text": "seconds since start", "font": {"size": 11}},
                  "anchor": "y4", "range": [0, _x_end(result)], "gridcolor": "#eaeef2",
                  "zeroline": False, "showspikes": True, "spikemode": "across",
                  "spikethickness": 1, "spikecolor": GREY},
        "yaxis": {"domain": domains["y"], "anchor": "x", "type": "category",
                  "categoryorder": "array", "categoryarray": lane_kinds, "fixedrange": True,
                  "autorange": "reversed",
                  "showgrid": True, "gridcolor": "#eaeef2", "tickfont": {"size": 10},
                  "visible": bool(lane_kinds)},
        "yaxis2": _axis("events/s", domains["y2"]),
        "yaxis3": _axis("p95 ms", domains["y3"]),
        "yaxis4": _axis(f"errors %<br>last {ERROR_WINDOW_S} s", domains["y4"]),
        "yaxis5": {"title": {"text": "% to new", "font": {"size": 11, "color": BLUE}},
                   "overlaying": "y2", "side": "right", "anchor": "x", "range": [0, 105],
                   "showgrid": False, "zeroline": False,
                   "tickfont": {"size": 10, "color": BLUE}, "tickvals": [0, 25, 50, 75, 100]},
        "shapes": band_shapes + _drain_band(result.drain) + _marker_lines(result.markers),
        "annotations": band_labels,
    }


def timeline_figure(result: RunResult) -> dict[str, Any] | None:
    """The figure, or None when the run recorded no samples (the page says so instead)."""
    if not result.timeline:
        return None
    return {
        "data": _lane_traces(result.markers, result.drain) + _data_traces(result.timeline),
        "layout": _layout(result),
        "config": {"displaylogo": False, "responsive": True,
                   "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    }


def _finite(value: object) -> object:
    """NaN and infinity are not JSON: a measurement that went NaN is drawn as a gap."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def figure_json(figure: dict[str, Any]) -> str:
    """JSON safe to place inside a <script> element: '<', '>' and '&' are written as escapes
    so no label can close the element, and the line separators JavaScript rejects are too."""
    text = json.dumps(_finite(figure), separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text
