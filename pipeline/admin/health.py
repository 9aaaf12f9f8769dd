"""Polls every watched service's /health and /api/v1/stats in the background.

GET /health on admin-api answers from the last poll (with its age), never by polling on the
request path: a slow or hung service must not make admin-api's own /health slow. Each service
has its own loop, so one hung neighbour does not delay the others' polls either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from pipeline.admin.progress import ProgressTracker, counters_of
from pipeline.admin.timefmt import iso_ns

__all__ = ["HealthMonitor", "PollResult", "ServiceState"]

log = logging.getLogger(__name__)

ServiceState = Literal["healthy", "unhealthy", "unreachable", "bad_stats", "no_progress"]


@dataclass(frozen=True)
class PollResult:
    state: ServiceState
    reason: str | None
    http_status: int | None  # of its /health; None when it did not answer
    stats: dict[str, Any] | None  # its /api/v1/stats body, when it had one
    polled_at: float  # monotonic
    polled_at_ns: int  # wall clock, for humans

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s ({type(exc).__name__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reason_in(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "(empty body)"
    if isinstance(body, Mapping) and body.get("reason"):
        return str(body["reason"])[:500]
    return response.text[:200]


class HealthMonitor:
    def __init__(
        self,
        services: Mapping[str, str],
        client: httpx.AsyncClient,
        *,
        interval: float,
        timeout: float,
        window: float,
        on_poll: Callable[[str, PollResult], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = dict(services)
        self.interval = interval
        self.timeout = timeout
        self._client = client
        self._on_poll = on_poll
        self._monotonic = monotonic
        self._trackers = {name: ProgressTracker(window) for name in self.services}
        self._results: dict[str, PollResult | None] = dict.fromkeys(self.services)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def stale_after(self) -> float:
        """A last poll older than this means the poller itself is stuck: not to be trusted."""
        return max(3 * self.interval, self.interval + 2 * self.timeout)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(name), name=f"health-poll-{name}")
                       for name in self.services]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def last(self, name: str) -> PollResult | None:
        return self._results[name]

    def age(self, name: str) -> float | None:
        result = self._results[name]
        return None if result is None else self._monotonic() - result.polled_at

    # -- the report ------------------------------------------------------------------------------

    def judge(self, name: str) -> tuple[bool, str, str | None]:
        """(healthy?, status, reason) as of now: a poll too old is itself a reason."""
        result, age = self._results[name], self.age(name)
        if result is None or age is None:
            return False, "unknown", "not polled yet"
        if age > self.stale_after:
            return False, "stale", f"stale: last poll {age:.1f} s ago"
        return result.healthy, result.state, result.reason

    def describe(self, name: str) -> dict[str, Any]:
        result, age = self._results[name], self.age(name)
        healthy, status, reason = self.judge(name)
        return {
            "url": self.services[name],
            "healthy": healthy,
            "status": status,
            "reason": reason,
            "http_status": None if result is None else result.http_status,
            "counters": None if result is None else result.stats,
            "poll_age_s": None if age is None else round(age, 3),
            "polled_at": None if result is None else iso_ns(result.polled_at_ns),
        }

    # -- polling -----------------------------------------------------------------------------------

    async def _run(self, name: str) -> None:
        while True:
            started = self._monotonic()
            try:
                result = await self.poll(name)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the watching
                log.exception("health poll failed", extra={"target": name})
                result = PollResult("unreachable", f"poll failed: {exc!r}", None, None,
                                    self._monotonic(), time.time_ns())
            self._results[name] = result
            if self._on_poll is not None:
                self._on_poll(name, result)
            await asyncio.sleep(max(0.0, self.interval - (self._monotonic() - started)))

    async def poll(self, name: str) -> PollResult:
        base = self.services[name]
        health, stats = await asyncio.gather(
            self._client.get(f"{base}/health", timeout=self.timeout),
            self._client.get(f"{base}/api/v1/stats", timeout=self.timeout),
            return_exceptions=True,
        )
        at, at_ns = self._monotonic(), time.time_ns()

        stats_body: dict[str, Any] | None = None
        stats_problem: str | None = None
        if isinstance(stats, BaseException):
            stats_problem = f"/api/v1/stats: {_describe(stats, self.timeout)}"
        elif stats.status_code != 200:
            stats_problem = f"/api/v1/stats answered {stats.status_code}"
        else:
            try:
                body = stats.json()
            except ValueError:
                body = None
            counters = counters_of(body)
            if isinstance(counters, str):
                stats_problem = f"/api/v1/stats: {counters}"
            else:
                stats_body = body
                stalled = self._trackers[name].observe(counters, at)
                if stalled is not None:
                    stats_problem = stalled

        if isinstance(health, BaseException):
            return PollResult("unreachable", f"unreachable: {_describe(health, self.timeout)}",
                              None, stats_body, at, at_ns)
        if health.status_code != 200:
            reason = f"/health answered {health.status_code}: {_reason_in(health)}"
            if stats_problem:
                reason += f"; {stats_problem}"
            return PollResult("unhealthy", reason, health.status_code, stats_body, at, at_ns)
        if stats_problem is not None:
            state: ServiceState = "no_progress" if stats_body is not None else "bad_stats"
            return PollResult(state, stats_problem, 200, stats_body, at, at_ns)
        return PollResult("healthy", None, 200, stats_body, at, at_ns)
