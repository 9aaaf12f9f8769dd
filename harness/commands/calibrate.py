"""``cutover calibrate RUN_DIR -o calibration.json``: fit the model from a real run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.console import make_console
from simulators.des.calibration import CalibrationError, fit_run_dir

__all__ = ["run_calibrate"]


def run_calibrate(run_dir: Path, output: Path, console: Console | None = None) -> int:
    console = console or make_console(stderr=True)
    try:
        cal = fit_run_dir(run_dir)
    except CalibrationError as exc:
        console.print(f"cutover calibrate: {exc}", markup=False, highlight=False)
        return 2
    out = make_console()
    src = cal.source
    assert src is not None
    table = Table(title=f"calibration from {src.scenario} ({src.runtime}, time scale "
                        f"{src.time_scale:g}, {src.events:,} events)")
    for col in ("path", "events", "p50 ms", "p95 ms", "p99 ms", "fit: shift ms, mu, sigma"):
        table.add_column(col, justify="left" if col in ("path", "fit: shift ms, mu, sigma")
                         else "right")
    for path, fit in cal.latency.items():
        q = fit.fitted_from
        table.add_row(path, f"{q.count:,}" if q else "-", f"{q.p50_ms:.2f}" if q else "-",
                      f"{q.p95_ms:.2f}" if q else "-", f"{q.p99_ms:.2f}" if q else "-",
                      f"{fit.shift_ms:.2f}, {fit.mu:.3f}, {fit.sigma:.3f}")
    out.print(table)
    services = Table(title="service time per batch: per_batch + per_event x n")
    for col in ("service", "per batch ms", "per event ms", "cv", "mean batch", "seconds", "how"):
        services.add_column(col)
    for name, sfit in cal.services.items():
        services.add_row(name, f"{sfit.per_batch_ms:.3f}", f"{sfit.per_event_ms:.4f}",
                         f"{sfit.cv:.2f}", f"{cal.batches.get(name, 0):.2f}",
                         str(sfit.seconds_used), sfit.method)
    out.print(services)
    if cal.hops_ms:
        out.print("per hop (mean ms): " + ", ".join(f"{k} {v:.2f}"
                                                    for k, v in cal.hops_ms.items()))
    if cal.startup_s:
        out.print("start-up (s): " + ", ".join(f"{k} {v:.2f}" for k, v in cal.startup_s.items())
                  + (("; restart (s): " + ", ".join(f"{k} {v:.2f}"
                                                     for k, v in cal.restart_s.items()))
                     if cal.restart_s else ""))
    for note in cal.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    cal.save(output)
    console.print(f"wrote {output}", highlight=False)
    return 0
