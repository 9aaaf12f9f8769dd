"""Calibration: the model's figures fitted from a real run's directory, as a versioned JSON file.

What is fitted, and from what:

- ``latency``: each path's unloaded latency (``stored_at - time_fired``) as a shifted
  log-normal through the run's p50 / p95 / p99 (``run.json`` ``latency``: legacy, new, shadow;
  the new path falls back on shadow when the run wrote nothing to production through it);
- ``services``: service time per batch, ``per_batch + per_event * n``: ingestion's group
  commit from ``cutover_ingest_durable_delay_seconds`` and enrichment's POST handling from
  ``cutover_intake_seconds`` (both ``_sum``/``_count``, second by second in ``metrics.jsonl``,
  against the events received in the same second). Where the batch sizes vary enough, a least-
  squares line; otherwise the mean, split with the default per-event cost. Storage's handling
  and InfluxDB's writes are not exposed by the services and keep their defaults (said so in
  ``notes``);
- ``batches``: mean events per commit and per POST;
- ``hops_ms``: mean time per hop of the new path, for the reader (the model uses ``latency``);
- ``startup_s`` / ``restart_s``: from the run's markers (``start X`` ... ``healthy: X``);
- ``reliability``: MTBF / MTTR per service; empty from a run, written by hand or by
  ``cutover simulate --mtbf/--mttr``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .latency import ShiftedLogNormal
from .params import ModelParams, Reliability, ServiceTime

__all__ = ["CALIBRATION_VERSION", "Calibration", "CalibrationError", "fit_run_dir",
           "load_calibration"]

CALIBRATION_VERSION = 1
_PATHS = ("legacy", "new", "shadow")


class CalibrationError(ValueError):
    """A run directory or calibration file that cannot be used; the message says what to do."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quantiles(_Model):
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


class PathLatency(_Model):
    """``shift + exp(mu + sigma * Z)`` milliseconds, fitted to ``fitted_from``."""

    shift_ms: float
    mu: float  # of the log of (latency - shift) in seconds
    sigma: float
    fitted_from: Quantiles | None = None

    def dist(self) -> ShiftedLogNormal:
        return ShiftedLogNormal(self.shift_ms / 1000.0, self.mu, self.sigma)


class ServiceFit(_Model):
    per_batch_ms: float = Field(ge=0)
    per_event_ms: float = Field(ge=0)
    cv: float = Field(0.3, ge=0)
    method: str
    seconds_used: int = 0

    def service_time(self) -> ServiceTime:
        return ServiceTime(self.per_batch_ms / 1000.0, self.per_event_ms / 1000.0, self.cv)


class RelFit(_Model):
    mtbf_s: float = Field(gt=0)
    mttr_s: float = Field(gt=0)


class Source(_Model):
    run_dir: str
    scenario: str
    runtime: str
    time_scale: float
    started_at: str
    events: int


class Calibration(_Model):
    kind: Literal["ha-cutover-calibration"] = "ha-cutover-calibration"
    version: int = CALIBRATION_VERSION
    source: Source | None = None
    latency: dict[str, PathLatency]
    services: dict[str, ServiceFit] = Field(default_factory=dict)
    batches: dict[str, float] = Field(default_factory=dict)
    hops_ms: dict[str, float] = Field(default_factory=dict)
    startup_s: dict[str, float] = Field(default_factory=dict)
    restart_s: dict[str, float] = Field(default_factory=dict)
    reliability: dict[str, RelFit] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    def dists(self) -> dict[str, ShiftedLogNormal]:
        return {path: fit.dist() for path, fit in self.latency.items()}

    def apply(self, params: ModelParams) -> ModelParams:
        times = dict(params.service_times)
        for name, fit in self.services.items():
            times[name] = fit.service_time()
        startup = {**params.startup_s, **self.startup_s}
        restart = {**params.restart_s, **self.restart_s}
        reliability = {**params.reliability,
                       **{k: Reliability(v.mtbf_s, v.mttr_s) for k, v in self.reliability.items()}}
        return params.with_(service_times=times, startup_s=startup, restart_s=restart,
                            reliability=reliability)

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_calibration(path: Path | str) -> Calibration:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{path}: no such calibration file; make one with "
                               "`cutover calibrate RUN_DIR -o calibration.json`") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path}: not a JSON calibration file ({exc}); make one with "
                               "`cutover calibrate RUN_DIR -o calibration.json`") from None
    if isinstance(data, dict) and data.get("version") not in (None, CALIBRATION_VERSION):
        raise CalibrationError(f"{path}: calibration version {data.get('version')!r}; this "
                               f"cutover reads version {CALIBRATION_VERSION}: calibrate again "
                               "from the run directory")
    try:
        cal = Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CalibrationError(f"{path}: {where}: {first['msg']} (a file written by "
                               "`cutover calibrate` has the expected shape)") from None
    missing = [p for p in ("legacy", "new") if p not in cal.latency]
    if missing:
        raise CalibrationError(f"{path}: latency for {', '.join(missing)} is missing; the "
                               "model needs the legacy and new paths (shadow is optional)")
    return cal


# -- fitting --------------------------------------------------------------------------------------


def _path_fit(stats: dict[str, Any]) -> PathLatency:
    q = Quantiles(count=int(stats["count"]), p50_ms=float(stats["p50_ms"]),
                  p95_ms=float(stats["p95_ms"]), p99_ms=float(stats["p99_ms"]))
    dist = ShiftedLogNormal.fit(q.p50_ms / 1000, q.p95_ms / 1000, q.p99_ms / 1000)
    return PathLatency(shift_ms=dist.shift * 1000, mu=dist.mu, sigma=dist.sigma, fitted_from=q)


def _series(lines: list[dict[str, Any]], service: str, *keys: str) -> list[tuple[float, ...]]:
    out = []
    for rec in lines:
        metrics = (rec.get("metrics") or {}).get(service)
        if not metrics:
            continue
        if all(k in metrics for k in keys):
            out.append((float(rec.get("t_s", 0.0)), *(float(metrics[k]) for k in keys)))
    return out


def _fit_service(lines: list[dict[str, Any]], service: str, hist: str, events: str,
                 default: ServiceTime) -> tuple[ServiceFit, float] | None:
    """Per-second (mean events per batch, mean seconds per batch) -> a + b n."""
    rows = _series(lines, service, f"{hist}_sum", f"{hist}_count", events)
    points: list[tuple[float, float, float]] = []  # (n per batch, seconds per batch, batches)
    for prev, cur in zip(rows, rows[1:], strict=False):
        d_sum, d_count, d_events = cur[1] - prev[1], cur[2] - prev[2], cur[3] - prev[3]
        if d_count >= 3 and d_sum >= 0 and d_events >= d_count:
            points.append((d_events / d_count, d_sum / d_count, d_count))
    if not points:
        return None
    w = sum(p[2] for p in points)
    n_bar = sum(p[0] * p[2] for p in points) / w
    t_bar = sum(p[1] * p[2] for p in points) / w
    var_n = sum(p[2] * (p[0] - n_bar) ** 2 for p in points) / w
    if len(points) >= 5 and var_n > 0.05 * max(1.0, n_bar) ** 2:
        cov = sum(p[2] * (p[0] - n_bar) * (p[1] - t_bar) for p in points) / w
        b = max(0.0, cov / var_n)
        a = max(0.0, t_bar - b * n_bar)
        method = "least squares over seconds with different batch sizes"
    else:
        b = min(default.per_event, t_bar / max(n_bar, 1.0) * 0.5)
        a = max(0.0, t_bar - b * n_bar)
        method = "mean; per-event cost from the defaults (batch sizes did not vary)"
    # Spread: how much the per-second means vary around the line.
    resid = [(p[1] - (a + b * p[0])) / max(1e-9, a + b * p[0]) for p in points]
    cv = min(1.0, max(0.1, math.sqrt(sum(r * r for r in resid) / len(resid))))
    return ServiceFit(per_batch_ms=a * 1000, per_event_ms=b * 1000, cv=round(cv, 3),
                      method=method, seconds_used=len(points)), n_bar


def _startups(markers: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """(first start -> healthy, later start -> healthy) per service, from the markers."""
    started: dict[str, float] = {}
    seen: set[str] = set()
    first: dict[str, float] = {}
    later: dict[str, float] = {}
    for m in markers:
        label = m.get("label", "")
        if m.get("kind") != "service":
            continue
        if label.startswith("start "):
            name = label.split(" ", 1)[1]
            started[name] = float(m["t_s"])
        elif label.startswith("healthy: "):
            for name in label.split(": ", 1)[1].split(", "):
                if name in started:
                    took = round(float(m["t_s"]) - started.pop(name), 3)
                    into = later if name in seen else first
                    into[name] = min(into.get(name, took), took)
                    seen.add(name)
    return first, later


def fit_run_dir(run_dir: Path | str) -> Calibration:
    """Fit a calibration from a real run's directory (run.json and metrics.jsonl)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CalibrationError(f"{run_dir}: not a directory; give the directory of a real run "
                               "(reports/<scenario>-<time>/, made by `cutover run`)")
    run_file, metrics_file = run_dir / "run.json", run_dir / "metrics.jsonl"
    for f, what in ((run_file, "the run's result"), (metrics_file, "the monitor's scrapes")):
        if not f.exists():
            raise CalibrationError(f"{run_dir}: {f.name} ({what}) is missing; calibrate from "
                                   "the directory of a completed `cutover run`")
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{run_file}: not JSON ({exc})") from None
    if run.get("simulated"):
        raise CalibrationError(f"{run_file}: this is a simulated run; calibrate from a real one "
                               "(`cutover run SCENARIO --runtime process`)")
    latency = run.get("latency") or {}
    fits: dict[str, PathLatency] = {}
    notes: list[str] = []
    for path in _PATHS:
        stats = latency.get(path)
        if stats and stats.get("count", 0) >= 20 and stats.get("p50_ms", 0) > 0:
            fits[path] = _path_fit(stats)
    if "new" not in fits and "shadow" in fits:
        fits["new"] = fits["shadow"]
        notes.append("new path: fitted from shadow writes (the run wrote no production "
                     "event through the new pipeline)")
    if "shadow" not in fits and "new" in fits:
        fits["shadow"] = fits["new"]
    missing = [p for p in ("legacy", "new") if p not in fits]
    if missing:
        have = {p: (latency.get(p) or {}).get("count", 0) for p in _PATHS}
        raise CalibrationError(
            f"{run_file}: latency for {' and '.join(missing)} is missing or has fewer than 20 "
            f"events (counts: {have}); calibrate from a run where both pipelines stored events, "
            "e.g. `cutover run phase3_traffic_switch --runtime process`")
    lines = []
    for raw in metrics_file.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "metrics" in rec:
            lines.append(rec)
    if len(lines) < 3:
        raise CalibrationError(f"{metrics_file}: fewer than 3 scrapes with metrics; the run was "
                               "too short to fit service times (run a scenario of at least a "
                               "few seconds of load)")
    defaults = ModelParams().service_times
    services: dict[str, ServiceFit] = {}
    batches: dict[str, float] = {}
    for name, service, hist, events in (
            ("ingestion", "ingestion", "cutover_ingest_durable_delay_seconds",
             "cutover_events_received_total"),
            ("enrichment", "enrichment", "cutover_intake_seconds",
             "cutover_events_received_total")):
        fitted = _fit_service(lines, service, hist, events, defaults[name])
        if fitted is None:
            notes.append(f"{name}: no second with enough batches in metrics.jsonl; default "
                         "service time kept")
            continue
        services[name], batches[name] = fitted[0], round(fitted[1], 3)
    notes.append("storage's POST handling and InfluxDB's write times are not exposed by the "
                 "services; their defaults are kept")
    hops: dict[str, float] = {}
    if "ingestion" in services:
        hops["ha -> ingestion outbox"] = round(
            services["ingestion"].per_batch_ms + services["ingestion"].per_event_ms
            * batches.get("ingestion", 1.0), 3)
    if "enrichment" in services:
        hops["ingestion -> enrichment outbox"] = round(
            services["enrichment"].per_batch_ms + services["enrichment"].per_event_ms
            * batches.get("enrichment", 1.0), 3)
    if hops and "new" in fits and fits["new"].fitted_from is not None:
        rest = fits["new"].fitted_from.p50_ms - sum(hops.values())
        hops["enrichment -> storage accepted (rest of p50)"] = round(max(0.0, rest), 3)
    first, later = _startups(run.get("markers") or [])
    markers = run.get("markers") or []
    if any(m.get("kind") == "fault" or (m.get("kind") == "service" and
           m.get("label", "").split(" ", 1)[0] in ("kill", "pause", "stop", "restart"))
           for m in markers) or (run.get("rollback") or {}).get("triggered"):
        notes.append("this run had faults or a rollback: its latency tails include them; "
                     "a run without faults calibrates the unloaded latency better")
    counts = run.get("counts") or {}
    return Calibration(
        source=Source(run_dir=str(run_dir), scenario=str(run.get("scenario", "?")),
                      runtime=str(run.get("runtime", "?")),
                      time_scale=float(run.get("time_scale", 1.0)),
                      started_at=str(run.get("started_at", "")),
                      events=int(counts.get("emitted", 0))),
        latency=fits, services=services, batches=batches, hops_ms=hops, startup_s=first,
        restart_s=later, notes=notes)
