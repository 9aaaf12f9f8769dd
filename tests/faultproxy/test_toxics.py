"""Each toxic measurably does what Toxiproxy says it does, over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from simulators.faultproxy import FaultProxy, Proxy
from tests.faultproxy import (
    Pair,
    Upstream,
    connect_pair,
    nothing_within,
    read_until_eof,
    timed_read,
)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as u:
        yield u


@pytest.fixture
async def proxy(upstream: Upstream) -> AsyncIterator[Proxy]:
    async with FaultProxy(seed=7) as fp:
        yield await fp.create("toxic", listen="127.0.0.1:0", upstream=upstream.address)


@pytest.fixture
async def pair(proxy: Proxy, upstream: Upstream) -> AsyncIterator[Pair]:
    p = await connect_pair(proxy, upstream)
    yield p
    p.close()


async def one_way(pair: Pair, stream: str, size: int = 10) -> float:
    """Seconds for ``size`` bytes to cross the proxy in ``stream``'s direction."""
    if stream == "upstream":
        pair.client_w.write(b"u" * size)
        return await timed_read(pair.server_r, size)
    pair.server_w.write(b"d" * size)
    return await timed_read(pair.client_r, size)


# --------------------------------------------------------------------------- latency


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
async def test_latency_delays_only_the_direction_chosen(pair: Pair, stream: str) -> None:
    other = "downstream" if stream == "upstream" else "upstream"
    pair.proxy.add_toxic("latency", stream=stream, latency=120)
    delayed = await one_way(pair, stream)
    direct = await one_way(pair, other)
    assert 0.115 <= delayed < 0.4, delayed
    assert direct < 0.05, direct


async def test_latency_is_per_chunk_not_cumulative(pair: Pair) -> None:
    """Chunks sent 30 ms apart each arrive ~latency after they were sent, not one after
    another's delay (the line is delayed, not throttled)."""
    pair.proxy.add_toxic("latency", latency=100)
    start = time.perf_counter()
    for _ in range(5):
        pair.server_w.write(b"x")
        await asyncio.sleep(0.03)
    await timed_read(pair.client_r, 5)
    elapsed = time.perf_counter() - start
    assert 0.22 <= elapsed < 0.45, elapsed  # last chunk sent at ~0.12 s, + 0.1 s


async def test_latency_jitter_stays_within_bounds(pair: Pair) -> None:
    pair.proxy.add_toxic("latency", latency=60, jitter=30)
    delays = [await one_way(pair, "downstream", 1) for _ in range(6)]
    assert all(0.029 <= d < 0.2 for d in delays), delays


async def test_latency_added_mid_stream_delays_what_follows(pair: Pair) -> None:
    assert await one_way(pair, "downstream") < 0.05
    toxic = pair.proxy.add_toxic("latency", latency=100)
    assert await one_way(pair, "downstream") >= 0.095
    pair.proxy.update_toxic(toxic.name, attributes={"latency": 200})
    assert await one_way(pair, "downstream") >= 0.195
    pair.proxy.remove_toxic(toxic.name)
    assert await one_way(pair, "downstream") < 0.05


async def test_removing_latency_releases_held_data_at_once(pair: Pair) -> None:
    pair.proxy.add_toxic("latency", latency=5000)
    pair.server_w.write(b"held")
    await asyncio.sleep(0.05)
    pair.proxy.remove_toxic("latency_downstream")
    assert await timed_read(pair.client_r, 4, timeout=1.0) < 0.1


# --------------------------------------------------------------------------- bandwidth


async def test_bandwidth_caps_the_rate(pair: Pair) -> None:
    pair.proxy.add_toxic("bandwidth", rate=200)  # KB/s: 60 kB take 0.3 s
    elapsed = await one_way(pair, "downstream", 60_000)
    assert 0.27 <= elapsed < 0.6, elapsed
    assert await one_way(pair, "upstream", 60_000) < 0.1  # the other direction is free


async def test_bandwidth_rate_zero_means_unlimited(pair: Pair) -> None:
    pair.proxy.add_toxic("bandwidth", rate=0)
    assert await one_way(pair, "downstream", 200_000) < 0.2


# --------------------------------------------------------------------------- timeout


async def test_timeout_zero_stops_data_and_never_closes(pair: Pair) -> None:
    pair.proxy.add_toxic("timeout", timeout=0)
    pair.server_w.write(b"lost")
    assert await nothing_within(pair.client_r, 0.3)
    # Removing it closes the connections it held (their streams lost data), as Toxiproxy.
    pair.proxy.remove_toxic("timeout_downstream")
    assert await read_until_eof(pair.client_r, timeout=2.0) == b""


async def test_timeout_closes_after_the_timeout(pair: Pair) -> None:
    pair.proxy.add_toxic("timeout", stream="upstream", timeout=150)
    start = time.perf_counter()
    pair.client_w.write(b"lost")
    pair.server_w.write(b"a")  # downstream still flows until the close
    assert await pair.client_r.readexactly(1) == b"a"
    assert await read_until_eof(pair.client_r) == b""
    assert 0.14 <= time.perf_counter() - start < 0.5
    assert await read_until_eof(pair.server_r) == b""  # the upstream never got "lost"


# --------------------------------------------------------------------------- reset_peer


async def test_reset_peer_resets_the_client(pair: Pair) -> None:
    pair.proxy.add_toxic("reset_peer", timeout=0)
    pair.server_w.write(b"reply")
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(2):
            await pair.client_r.read(100)


async def test_reset_peer_waits_for_its_timeout(pair: Pair) -> None:
    pair.proxy.add_toxic("reset_peer", stream="upstream", timeout=150)
    start = time.perf_counter()
    pair.client_w.write(b"request")
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(2):
            await pair.client_r.read(100)
    assert 0.14 <= time.perf_counter() - start < 0.6
    with pytest.raises(ConnectionResetError):  # the upstream is reset too
        async with asyncio.timeout(2):
            await pair.server_r.read(100)


# --------------------------------------------------------------------------- slicer


async def test_slicer_splits_data_into_several_reads(pair: Pair) -> None:
    pair.proxy.add_toxic("slicer", average_size=10, size_variation=4, delay=3000)
    payload = bytes(range(100))
    pair.server_w.write(payload)
    reads: list[bytes] = []
    async with asyncio.timeout(3):
        while sum(map(len, reads)) < len(payload):
            reads.append(await pair.client_r.read(1000))
    assert b"".join(reads) == payload
    assert len(reads) >= 5, [len(r) for r in reads]
    assert max(map(len, reads)) <= 28  # at most two 14-byte slices coalesced


# --------------------------------------------------------------------------- limit_data


async def test_limit_data_closes_after_n_bytes(pair: Pair) -> None:
    pair.proxy.add_toxic("limit_data", bytes=100)
    pair.server_w.write(bytes(range(250)))
    got = await read_until_eof(pair.client_r)
    assert got == bytes(range(100))


async def test_limit_data_counts_across_writes(pair: Pair) -> None:
    pair.proxy.add_toxic("limit_data", stream="upstream", bytes=25)
    for _ in range(2):
        pair.client_w.write(b"0123456789")
    assert await pair.server_r.readexactly(20) == b"0123456789" * 2
    pair.client_w.write(b"abcdefghij")
    assert await read_until_eof(pair.server_r) == b"abcde"


# --------------------------------------------------------------------------- slow_close


async def test_slow_close_delays_the_close_not_the_data(pair: Pair) -> None:
    pair.proxy.add_toxic("slow_close", delay=200)
    start = time.perf_counter()
    pair.server_w.write(b"bye")
    pair.server_w.close()
    assert await pair.client_r.readexactly(3) == b"bye"
    assert time.perf_counter() - start < 0.1
    assert await read_until_eof(pair.client_r) == b""
    assert 0.19 <= time.perf_counter() - start < 0.6


# --------------------------------------------------------------------------- toxicity


async def cut_connections(proxy: Proxy, upstream: Upstream, n: int) -> int:
    """How many of ``n`` new connections a ``limit_data bytes=1`` toxic cut short."""
    cut = 0
    for _ in range(n):
        pair = await connect_pair(proxy, upstream)
        pair.server_w.write(b"ab")
        pair.server_w.close()
        got = await read_until_eof(pair.client_r)
        cut += got == b"a"
        pair.close()
    return cut


@pytest.mark.parametrize(("toxicity", "expected"), [(0.0, 0), (1.0, 12)])
async def test_toxicity_zero_never_one_always(
    proxy: Proxy, upstream: Upstream, toxicity: float, expected: int
) -> None:
    proxy.add_toxic("limit_data", bytes=1, toxicity=toxicity)
    assert await cut_connections(proxy, upstream, 12) == expected


async def test_toxicity_is_decided_per_connection(proxy: Proxy, upstream: Upstream) -> None:
    proxy.add_toxic("limit_data", bytes=1, toxicity=0.5)
    cut = await cut_connections(proxy, upstream, 30)
    assert 3 <= cut <= 27, cut  # seeded; either extreme would mean "per proxy", not per link


async def test_toxics_apply_to_new_connections_too(proxy: Proxy, upstream: Upstream) -> None:
    proxy.add_toxic("latency", stream="upstream", latency=100)
    pair = await connect_pair(proxy, upstream)
    try:
        assert await one_way(pair, "upstream") >= 0.095
        assert await one_way(pair, "downstream") < 0.05
    finally:
        pair.close()


async def test_toxics_chain_in_order(pair: Pair) -> None:
    """Two latency toxics add up; limit_data behind a slicer still cuts at its count."""
    pair.proxy.add_toxic("latency", name="a", latency=60)
    pair.proxy.add_toxic("latency", name="b", latency=60)
    assert 0.115 <= await one_way(pair, "downstream") < 0.4
    pair.proxy.reset_toxics()
    pair.proxy.add_toxic("slicer", average_size=3, delay=0)
    pair.proxy.add_toxic("limit_data", bytes=7)
    pair.server_w.write(b"0123456789")
    assert await read_until_eof(pair.client_r) == b"0123456"


async def test_updating_toxicity_takes_effect_on_live_connections(pair: Pair) -> None:
    toxic = pair.proxy.add_toxic("latency", latency=100, toxicity=0.0)
    assert await one_way(pair, "downstream") < 0.05
    pair.proxy.update_toxic(toxic.name, toxicity=1.0)
    assert await one_way(pair, "downstream") >= 0.095
    pair.proxy.update_toxic(toxic.name, toxicity=0.0)
    assert await one_way(pair, "downstream") < 0.05
