"""HTTP between services: a pooled client with retries, backoff and a circuit breaker.

`ServiceClient.post_events` retries what may succeed later (connection errors, timeouts, 5xx,
429) with exponential backoff and full jitter, and never retries what will not (other 4xx:
`Rejected`). When its circuit breaker is open it raises `BreakerOpen` at once, without any
network call. It never holds or drops events itself: that is the caller's outbox's job, drained
by `pipeline.common.forwarder.Forwarder` (the delivery contract is described there).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from pipeline.common.breaker import CircuitBreaker
from pipeline.common.transport import DEFAULT_LIMITS, pooled_client

__all__ = [
    "BreakerOpen",
    "ClientStats",
    "Rejected",
    "ServiceClient",
    "ServiceError",
    "Unavailable",
    "backoff_delay",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=2.0, read=10.0, write=10.0, pool=5.0)

# Transport failures worth another attempt. UnsupportedProtocol, InvalidURL, LocalProtocolError
# are configuration or programming errors: retrying them only hides the bug.
_RETRYABLE_TRANSPORT: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)

Sleep = Callable[[float], Awaitable[None]]


class ServiceError(Exception):
    """Base of the errors a call to a neighbouring service can end in."""


class Rejected(ServiceError):
    """The neighbour answered with a 4xx other than 429: resending the same batch will not help."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"rejected with HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


class Unavailable(ServiceError):
    """Every attempt failed (connection error, timeout, 5xx, 429): try again later."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_status: int | None = None,
        last_error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status
        self.last_error = last_error


class BreakerOpen(Unavailable):
    """The circuit breaker refused the call (before any attempt, or before a retry)."""

    def __init__(
        self,
        *,
        retry_after: float,
        attempts: int = 0,
        last_status: int | None = None,
        last_error: BaseException | None = None,
    ) -> None:
        super().__init__(
            f"circuit breaker open; retry in {retry_after:.3f}s",
            attempts=attempts,
            last_status=last_status,
            last_error=last_error,
        )
        self.retry_after = retry_after


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS Architecture Blog): uniform(0, min(cap, base * 2**attempt)).

    Full rather than equal jitter: after an outage every sender retries at once, and spreading
    them over the whole window is what keeps the recovering neighbour from being knocked over.
    """
    high = min(cap, base * 2.0 ** min(attempt, 62))  # clamp: 2**big overflows a float
    return rng.uniform(0.0, high)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date: rare between our services, the backoff is good enough
    return seconds if seconds >= 0 else None


@dataclass
class ClientStats:
    requests: int = 0  # attempts that reached the network layer
    retries: int = 0  # attempts after the first, within one call
    successes: int = 0
    failures: int = 0  # failed attempts: transport error, 5xx, 429
    rejected: int = 0  # calls ended by a non-retryable 4xx
    refused: int = 0  # calls (or retries) refused by the open breaker


class ServiceClient:
    """A pooled httpx.AsyncClient for one neighbour, with retries and a circuit breaker.

    Every failed attempt (not every failed call) counts toward the breaker: a neighbour that
    refuses connections should trip it within one call's retries, not after N whole calls.
    A refused batch (4xx) counts as a sign of life. The breaker is consulted before each
    attempt, so a call whose retries trip it ends at once with BreakerOpen.
    """

    def __init__(
        self,
        base_url: str,
        *,
        retries: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        breaker: CircuitBreaker,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        headers: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("need 0 < backoff_base <= backoff_max")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.breaker = breaker
        self.stats = ClientStats()
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        # A client passed in belongs to the caller (shared pool, test transport): not ours to close.
        self._owns_client = client is None
        self._client = client if client is not None else pooled_client(
            timeout=timeout, limits=limits
        )

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def post_events(self, path: str, events: Sequence[Mapping[str, Any]]) -> httpx.Response:
        """POST `{"events": events}`; returns the 2xx response or raises a ServiceError."""
        body = orjson.dumps({"events": list(events)})
        return await self.post_json(path, body)

    async def post_json(self, path: str, body: bytes) -> httpx.Response:
        """POST an already-encoded JSON body with the retry, backoff and breaker policy."""
        url = self.url(path)
        last_status: int | None = None
        last_error: BaseException | None = None
        for attempt in range(self.retries + 1):
            if not self.breaker.allow():
                self.stats.refused += 1
                raise BreakerOpen(
                    retry_after=self.breaker.retry_after(),
                    attempts=attempt,
                    last_status=last_status,
                    last_error=last_error,
                )
            if attempt:
                self.stats.retries += 1
            self.stats.requests += 1
            hint: float | None = None
            try:
                response = await self._client.post(url, content=body, headers=self._headers)
            except _RETRYABLE_TRANSPORT as exc:
                last_error, last_status = exc, None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self.stats.successes += 1
                    self.breaker.record_success()
                    return response
                if status < 500 and status != 429:
                    # The neighbour is up and answering coherently: for the breaker that is
                    # health, even though this batch is refused.
                    self.breaker.record_success()
                    self.stats.rejected += 1
                    raise Rejected(status, response.text)
                last_error, last_status = None, status
                hint = _retry_after_seconds(response) if status == 429 else None
            self.stats.failures += 1
            self.breaker.record_failure()
            if attempt == self.retries:
                break
            delay = backoff_delay(attempt, self.backoff_base, self.backoff_max, self._rng)
            if hint is not None:
                delay = min(max(delay, hint), self.backoff_max)
            await self._sleep(delay)
        what = f"HTTP {last_status}" if last_status is not None else repr(last_error)
        raise Unavailable(
            f"{url} unavailable after {self.retries + 1} attempts: {what}",
            attempts=self.retries + 1,
            last_status=last_status,
            last_error=last_error,
        )
