"""admin-api's Prometheus metrics, on the app's own registry (kit_of(app).registry)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.admin.control import ControlPlane
from pipeline.admin.health import HealthMonitor, PollResult

__all__ = ["AdminMetrics"]


class AdminMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.new_percent = Gauge(
            "cutover_migration_new_percent",
            "Percent of entities owned by the new pipeline, by the entry in force now",
            registry=registry)
        self.shadow = Gauge(
            "cutover_migration_shadow",
            "1 when the new pipeline writes shadow for what it does not own, by the entry in "
            "force now", registry=registry)
        self.pending = Gauge(
            "cutover_migration_pending_changes",
            "Changes announced but not yet in force", registry=registry)
        self.changes = Counter(
            "cutover_migration_changes", "Migration changes persisted, by kind", ["kind"],
            registry=registry)
        self.service_healthy = Gauge(
            "cutover_service_healthy",
            "1 when the watched service is healthy (status and progress), else 0", ["service"],
            registry=registry)
        self.service_poll_age = Gauge(
            "cutover_service_poll_age_seconds",
            "Age of the last health poll of the watched service", ["service"],
            registry=registry)
        self.upstream_errors = Counter(
            "cutover_upstream_errors", "Calls to another service that failed", ["target"],
            registry=registry)
        for kind in ("change", "rollback"):
            self.changes.labels(kind=kind)  # exported as 0 before the first one

    def bind(self, control: ControlPlane, monitor: HealthMonitor) -> None:
        """Gauges read at scrape time: "in force now" changes with the clock, not with events."""

        def percent_now() -> float:
            entry = control.entry_now()
            return 0.0 if entry is None else float(entry.new_percent)

        def shadow_now() -> float:
            entry = control.entry_now()
            return 1.0 if entry is not None and entry.shadow else 0.0

        self.new_percent.set_function(percent_now)
        self.shadow.set_function(shadow_now)
        self.pending.set_function(lambda: float(len(control.pending())))

        def healthy(name: str) -> Callable[[], float]:
            return lambda: 1.0 if monitor.judge(name)[0] else 0.0

        def poll_age(name: str) -> Callable[[], float]:
            return lambda: _or_nan(monitor.age(name))

        for name in monitor.services:
            self.service_healthy.labels(service=name).set_function(healthy(name))
            self.service_poll_age.labels(service=name).set_function(poll_age(name))

    def on_poll(self, name: str, result: PollResult) -> None:
        if result.state == "unreachable":
            self.upstream_errors.labels(target=name).inc()


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
