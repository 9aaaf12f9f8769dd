"""The model's parameters: the pipeline's own settings (their defaults, named after the
``CUTOVER_*`` variable each mirrors), the harness's wiring, and the service-time figures a
calibration file replaces.

Durations are seconds of simulated time. The settings below are the services' constants: they
are never multiplied by the scenario's time scale (a 2 s breaker cool-down is 2 s whether the
plan is rehearsed in 40 s or over 8 days). ``tests/des/test_params.py`` checks every default
against the pipeline's settings classes, so the model cannot drift from the code it models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from harness.scenario.topology import PIPELINE_SERVICES

__all__ = ["ClientParams", "HaServerParams", "HttpParams", "LegacyParams", "ModelParams",
           "MonitorParams", "Reliability", "ServiceTime", "StorageParams", "PIPELINE"]

PIPELINE = PIPELINE_SERVICES  # the services the model runs and the monitor checks


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """Time to handle one batch of ``n`` events: ``per_batch + per_event * n`` seconds on
    average, log-normally spread with coefficient of variation ``cv``."""

    per_batch: float
    per_event: float
    cv: float = 0.3

    def mean(self, n: int) -> float:
        return self.per_batch + self.per_event * n

    def sample(self, n: int, gauss: float) -> float:
        """A draw for a batch of ``n``, from a standard normal variate ``gauss``."""
        m = self.per_batch + self.per_event * n
        if self.cv <= 0 or m <= 0:
            return max(0.0, m)
        s2 = math.log1p(self.cv * self.cv)
        return m * math.exp(math.sqrt(s2) * gauss - s2 / 2)


@dataclass(frozen=True, slots=True)
class HttpParams:
    """ServiceClient between services (pipeline/common/httpclient.py)."""

    retries: int = 3
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    refused_s: float = 0.001  # a refused connection fails this fast
    rtt: float = 0.0003  # request + response on loopback, beyond the receiver's handling
    breaker_failures: int = 5  # CUTOVER_BREAKER_FAILURES
    breaker_reset_s: float = 2.0  # CUTOVER_BREAKER_RESET_S
    batch: int = 500  # CUTOVER_FORWARD_BATCH (ingestion), CUTOVER_BATCH_SIZE (enrichment)
    idle_interval: float = 0.5


@dataclass(frozen=True, slots=True)
class ClientParams:
    """A Home Assistant client service (legacy, ingestion): pipeline/common/ha_settings.py."""

    backoff_base: float = 1.0  # CUTOVER_HA_BACKOFF_BASE_S; steps 0,1,2,3,4,5 x base
    connect_s: float = 0.05  # connect + auth + subscribe
    down_after_s: float = 5.0  # CUTOVER_HA_DOWN_AFTER_S
    stalled_after_s: float = 10.0  # CUTOVER_STALLED_AFTER_S
    read_per_event: float = 0.00005  # websocket read + on_event: 20,000 events/s
    # websocket-ingestion's gap recovery (pipeline/ingestion/recovery.py): what it missed comes
    # back from history this long after it subscribes again (CUTOVER_RECOVERY_POLL_S polls
    # until the recorder holds the first live event: one poll, sometimes two).
    recovery_s: float = 1.5


@dataclass(frozen=True, slots=True)
class LegacyParams:
    """The monolith's writer (pipeline/legacy/settings.py)."""

    max_buffer: int = 100_000  # CUTOVER_LEGACY_BUFFER
    batch_size: int = 1000  # CUTOVER_LEGACY_BATCH_SIZE
    flush_interval: float = 0.02  # CUTOVER_LEGACY_FLUSH_INTERVAL_S
    write_retries: int = 3  # CUTOVER_LEGACY_WRITE_RETRIES
    retry_backoff: float = 0.1  # CUTOVER_LEGACY_RETRY_BACKOFF_S
    influx_timeout: float = 5.0  # CUTOVER_INFLUX_TIMEOUT_S
    shutdown_flush_s: float = 8.0  # CUTOVER_SHUTDOWN_FLUSH_S


@dataclass(frozen=True, slots=True)
class StorageParams:
    """data-storage's BatchWriter (pipeline/storage/settings.py, pipeline/common/influx.py)."""

    max_batch: int = 5000  # CUTOVER_MAX_BATCH
    flush_interval: float = 0.002  # CUTOVER_FLUSH_INTERVAL_S
    backoff_base: float = 0.05  # BatchWriter backoff_base
    retry_cap: float = 2.0  # CUTOVER_RETRY_CAP_S
    influx_timeout: float = 10.0  # InfluxWriter timeout
    unreachable_after_s: float = 5.0  # CUTOVER_UNREACHABLE_AFTER_S
    stalled_after_s: float = 10.0  # CUTOVER_STALLED_AFTER_S
    enrichment_stall_s: float = 10.0  # enrichment's CUTOVER_HEALTH_STALL_S


@dataclass(frozen=True, slots=True)
class HaServerParams:
    """The (fake) Home Assistant's back-pressure: simulators/home_assistant/connection.py."""

    max_pending: int = 4096
    pending_peak: int = 1024
    pending_peak_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class MonitorParams:
    """The harness's monitor and control plane (harness/runner/monitor.py, runtime wiring)."""

    interval: float = 1.0
    lookback_s: float = 30.0  # a point stored later than this after firing is never seen live
    lead_s: float = 1.0  # admin-api announces routing changes this far ahead (Wiring.lead_ms)
    drain_timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Reliability:
    """Random failures of one service: a crash every ``mtbf_s`` on average (exponential), back
    after ``mttr_s`` on average (exponential)."""

    mtbf_s: float
    mttr_s: float


def _startup() -> dict[str, float]:
    return {"influxdb": 1.0, "weather": 0.5, "legacy": 2.2, "ingestion": 2.2,
            "enrichment": 2.2, "storage": 2.2, "admin": 2.2}


def _restart() -> dict[str, float]:
    return {"influxdb": 1.0, "weather": 0.5, "legacy": 0.6, "ingestion": 0.6,
            "enrichment": 0.6, "storage": 0.6, "admin": 0.6}


def _service_times() -> dict[str, ServiceTime]:
    return {
        # ingestion: normalise + one SQLite transaction per group (durable delay)
        "ingestion": ServiceTime(0.0004, 0.00002),
        # enrichment: POST /api/v1/events handled, durable write included
        "enrichment": ServiceTime(0.0005, 0.00005),
        # storage: POST handled into its durable queue
        "storage": ServiceTime(0.0005, 0.00003),
        # InfluxDB /write of a batch, from storage and from legacy
        "influx_storage": ServiceTime(0.002, 0.00001),
        "influx_legacy": ServiceTime(0.001, 0.00001),
    }


@dataclass(frozen=True, slots=True)
class ModelParams:
    http: HttpParams = field(default_factory=HttpParams)
    client: ClientParams = field(default_factory=ClientParams)
    legacy: LegacyParams = field(default_factory=LegacyParams)
    storage: StorageParams = field(default_factory=StorageParams)
    ha: HaServerParams = field(default_factory=HaServerParams)
    monitor: MonitorParams = field(default_factory=MonitorParams)
    commit_max_group: int = 2000  # CUTOVER_COMMIT_MAX_GROUP (ingestion)
    read_per_event: dict[str, float] = field(default_factory=dict)  # per client, else client's
    startup_s: dict[str, float] = field(default_factory=_startup)  # first start of the run
    restart_s: dict[str, float] = field(default_factory=_restart)  # any later start
    service_times: dict[str, ServiceTime] = field(default_factory=_service_times)
    reliability: dict[str, Reliability] = field(default_factory=dict)

    def with_(self, **changes: object) -> ModelParams:
        return replace(self, **changes)  # type: ignore[arg-type]
