"""ServiceClient against real local HTTP servers: retries, backoff, rejection, breaker."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.common.breaker import BreakerState, CircuitBreaker
from pipeline.common.httpclient import (
    BreakerOpen,
    Rejected,
    ServiceClient,
    Unavailable,
    backoff_delay,
)
from tests.pipeline_kit._servers import LocalServer, ScriptedReceiver

EVENTS = [{"context_id": f"01J{i:023d}", "entity_id": "light.kitchen"} for i in range(3)]
BASE, CAP = 0.01, 0.08


class Sleeps:
    """Records the backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class CountingClient:
    """An httpx client that counts requests it puts on the wire (or tries to)."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.sent = 0
        self.http = httpx.AsyncClient(timeout=timeout, event_hooks={"request": [self._count]})

    async def _count(self, request: httpx.Request) -> None:
        self.sent += 1


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[ScriptedReceiver, LocalServer]]:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    yield rx, server
    await server.stop()


def make_client(url: str, *, retries: int = 3, threshold: int = 100,
                http: httpx.AsyncClient | None = None,
                sleeps: Sleeps | None = None) -> ServiceClient:
    return ServiceClient(
        url,
        retries=retries,
        backoff_base=BASE,
        backoff_max=CAP,
        breaker=CircuitBreaker(threshold, reset_timeout=60.0),
        client=http,
        rng=random.Random(7),
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def assert_full_jitter(delays: list[float]) -> None:
    for attempt, delay in enumerate(delays):
        assert 0.0 <= delay <= min(CAP, BASE * 2**attempt)


async def test_retries_5xx_then_succeeds(receiver: tuple[ScriptedReceiver, LocalServer]) -> None:
    rx, server = receiver
    rx.then(500, 503)
    sleeps = Sleeps()
    async with make_client(server.url, sleeps=sleeps) as client:
        response = await client.post_events("/api/v1/events", EVENTS)
    assert response.status_code == 200
    assert rx.hits == 3
    assert client.stats.retries == 2 and client.stats.failures == 2
    assert client.stats.successes == 1
    assert len(sleeps.delays) == 2
    assert_full_jitter(sleeps.delays)
    assert rx.stored_ids == [e["context_id"] for e in EVENTS]
    assert client.breaker.state is BreakerState.CLOSED


async def test_body_is_the_events_envelope(receiver: tuple[ScriptedReceiver, LocalServer]) -> None:
    rx, server = receiver
    async with make_client(server.url) as client:
        await client.post_events("api/v1/events", EVENTS)
    import orjson

    assert orjson.loads(rx.bodies[0]) == {"events": EVENTS}


async def test_429_is_retried_and_retry_after_respected(
    receiver: tuple[ScriptedReceiver, LocalServer],
) -> None:
    rx, server = receiver
    rx.then(429)
    rx.retry_after = "0.05"
    sleeps = Sleeps()
    async with make_client(server.url, sleeps=sleeps) as client:
        response = await client.post_events("/api/v1/events", EVENTS)
    assert response.status_code == 200
    assert rx.hits == 2
    assert sleeps.delays[0] >= 0.05  # the hint, not a jittered 0..0.01
    assert sleeps.delays[0] <= CAP


async def test_400_is_rejected_without_retry(
    receiver: tuple[ScriptedReceiver, LocalServer],
) -> None:
    rx, server = receiver
    rx.then(400)
    sleeps = Sleeps()
    async with make_client(server.url, sleeps=sleeps) as client:
        with pytest.raises(Rejected) as info:
            await client.post_events("/api/v1/events", EVENTS)
    assert info.value.status == 400
    assert "context_id: field required" in info.value.body
    assert rx.hits == 1
    assert sleeps.delays == []
    assert client.stats.rejected == 1 and client.stats.retries == 0
    # the neighbour is up, it just refuses this batch: no reason to open the breaker
    assert client.breaker.consecutive_failures == 0


async def test_connection_refused_is_retried_then_unavailable() -> None:
    down = LocalServer(ScriptedReceiver())  # bound, never listening
    sleeps = Sleeps()
    async with make_client(down.url, retries=2, sleeps=sleeps) as client:
        with pytest.raises(Unavailable) as info:
            await client.post_events("/api/v1/events", EVENTS)
    down._sock.close()
    assert not isinstance(info.value, BreakerOpen)
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, httpx.ConnectError)
    assert client.stats.requests == 3 and client.stats.retries == 2
    assert len(sleeps.delays) == 2
    assert_full_jitter(sleeps.delays)


async def test_read_timeout_is_retried(receiver: tuple[ScriptedReceiver, LocalServer]) -> None:
    rx, server = receiver
    rx.delay_first = 0.5
    counting = CountingClient(timeout=0.2)
    async with make_client(server.url, http=counting.http) as client:
        response = await client.post_events("/api/v1/events", EVENTS)
    await counting.http.aclose()
    assert response.status_code == 200
    assert counting.sent == 2
    assert client.stats.failures == 1


async def test_breaker_opens_and_then_refuses_without_a_network_call(
    receiver: tuple[ScriptedReceiver, LocalServer],
) -> None:
    rx, server = receiver
    rx.default = 503
    counting = CountingClient()
    client = make_client(server.url, retries=0, threshold=3, http=counting.http)
    for _ in range(3):
        with pytest.raises(Unavailable):
            await client.post_events("/api/v1/events", EVENTS)
    assert client.breaker.state is BreakerState.OPEN
    assert (counting.sent, rx.hits) == (3, 3)

    with pytest.raises(BreakerOpen) as info:
        await client.post_events("/api/v1/events", EVENTS)
    assert info.value.attempts == 0
    assert 0 < info.value.retry_after <= 60.0
    assert (counting.sent, rx.hits) == (3, 3)  # nothing went on the wire
    assert client.stats.refused == 1
    await counting.http.aclose()


async def test_breaker_opening_mid_call_stops_the_retries(
    receiver: tuple[ScriptedReceiver, LocalServer],
) -> None:
    rx, server = receiver
    rx.default = 500
    async with make_client(server.url, retries=5, threshold=2) as client:
        with pytest.raises(BreakerOpen) as info:
            await client.post_events("/api/v1/events", EVENTS)
    assert info.value.attempts == 2
    assert info.value.last_status == 500
    assert rx.hits == 2


async def test_half_open_probe_success_closes_the_breaker(
    receiver: tuple[ScriptedReceiver, LocalServer],
) -> None:
    rx, server = receiver
    rx.then(500, 500)
    now = [0.0]
    client = ServiceClient(
        server.url, retries=0, backoff_base=BASE, backoff_max=CAP,
        breaker=CircuitBreaker(2, reset_timeout=5.0, clock=lambda: now[0]),
    )
    for _ in range(2):
        with pytest.raises(Unavailable):
            await client.post_events("/e", EVENTS)
    with pytest.raises(BreakerOpen):
        await client.post_events("/e", EVENTS)
    now[0] = 5.0
    assert client.breaker.state is BreakerState.HALF_OPEN
    assert (await client.post_events("/e", EVENTS)).status_code == 200
    assert client.breaker.state is BreakerState.CLOSED
    await client.aclose()


@given(attempt=st.integers(0, 200), base=st.floats(0.001, 1.0), cap=st.floats(1.0, 60.0),
       seed=st.integers(0, 2**32))
def test_backoff_delay_is_bounded_full_jitter(attempt: int, base: float, cap: float,
                                              seed: int) -> None:
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(attempt, 62))


def test_backoff_delay_spreads_over_the_whole_window() -> None:
    rng = random.Random(1)
    samples = [backoff_delay(4, 0.1, 30.0, rng) for _ in range(2000)]
    high = 0.1 * 2**4
    assert max(samples) <= high
    assert min(samples) < 0.1 * high and max(samples) > 0.9 * high  # full, not equal, jitter
    assert len(set(samples)) == len(samples)


def test_parameters_are_checked() -> None:
    breaker = CircuitBreaker(1, 1.0)
    with pytest.raises(ValueError):
        ServiceClient("http://x", retries=-1, breaker=breaker)
    with pytest.raises(ValueError):
        ServiceClient("http://x", backoff_base=2.0, backoff_max=1.0, breaker=breaker)
