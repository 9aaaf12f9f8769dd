"""Forwarder: outbox -> neighbour, in order, ack after 2xx, nothing dropped while it is down."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from pipeline.common.breaker import BreakerState, CircuitBreaker
from pipeline.common.forwarder import Forwarder
from pipeline.common.httpclient import ServiceClient
from tests.pipeline_kit._servers import InMemoryOutbox, LocalServer, ScriptedReceiver, wait_until


def event(i: int) -> dict[str, object]:
    return {"context_id": f"01J{i:023d}", "entity_id": f"sensor.s{i % 7}", "state": str(i)}


def fill(outbox: InMemoryOutbox, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ev = event(i)
        outbox.put(orjson.dumps(ev))
        ids.append(str(ev["context_id"]))
    return ids


def first_occurrences(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def make_forwarder(url: str, outbox: InMemoryOutbox, *, batch_size: int = 7,
                   threshold: int = 3, reset_timeout: float = 0.2) -> Forwarder:
    client = ServiceClient(
        url, retries=1, backoff_base=0.005, backoff_max=0.05,
        breaker=CircuitBreaker(threshold, reset_timeout=reset_timeout), rng=random.Random(3),
    )
    return Forwarder(outbox, client, batch_size=batch_size, idle_interval=0.05,
                     rng=random.Random(4))


async def drain(fwd: Forwarder, outbox: InMemoryOutbox, server: LocalServer) -> None:
    """Run the forwarder until the outbox is empty, then stop it and the receiver."""
    fwd.start()
    try:
        await wait_until(lambda: outbox.depth == 0, timeout=5)
    finally:
        await fwd.stop()
        await server.stop()


class DeadLetters:
    """A PoisonHandler that records (seqs, reason) of what it is handed, and keeps it."""

    def __init__(self) -> None:
        self.kept: list[tuple[list[int], str]] = []

    async def __call__(self, items: list[tuple[int, bytes]], reason: str) -> bool:
        self.kept.append(([seq for seq, _ in items], reason))
        return True


async def test_holds_everything_while_down_and_delivers_all_in_order_once_back() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)  # bound, not listening yet: the neighbour is down
    outbox = InMemoryOutbox()
    ids = fill(outbox, 50)
    fwd = make_forwarder(server.url, outbox)
    fwd.start()
    try:
        await wait_until(lambda: fwd.stats.breaker_waits >= 3, timeout=5)
        assert fwd.breaker_state in (BreakerState.OPEN, BreakerState.HALF_OPEN)
        assert outbox.depth == 50 and fwd.depth == 50  # held, not dropped
        assert fwd.stats.forwarded == 0 and fwd.stats.last_success_ns is None

        more = [outbox.put(orjson.dumps(event(i))) for i in range(50, 60)]  # still arriving
        ids += [str(event(i)["context_id"]) for i in range(50, 60)]
        assert len(more) == 10

        await server.start()
        await wait_until(lambda: outbox.depth == 0, timeout=10)
    finally:
        await fwd.stop(flush_timeout=1)
        await server.stop()
    assert first_occurrences(rx.stored_ids) == ids  # no loss, no reorder
    assert fwd.stats.forwarded == 60
    assert fwd.stats.last_success_ns is not None
    assert fwd.breaker_state is BreakerState.CLOSED


async def test_intermittent_5xx_keep_order_and_lose_nothing() -> None:
    rng = random.Random(11)
    rx = ScriptedReceiver([rng.choice([200, 500, 503, 429]) for _ in range(60)])
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    ids = fill(outbox, 100)
    fwd = make_forwarder(server.url, outbox, threshold=1000)
    fwd.start()
    try:
        await wait_until(lambda: outbox.depth == 0, timeout=10)
    finally:
        await fwd.stop()
        await server.stop()
    assert rx.stored_ids == ids  # a batch is stored only on 2xx, and only then acked
    assert fwd.stats.failures > 0


async def test_a_crash_between_2xx_and_ack_resends_the_batch() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    ids = fill(outbox, 10)
    outbox.fail_next_acks = 1  # the receiver has it, the outbox does not know
    fwd = make_forwarder(server.url, outbox, batch_size=5)
    await drain(fwd, outbox, server)
    assert rx.stored_ids == ids[:5] + ids  # at-least-once: the first batch twice
    assert first_occurrences(rx.stored_ids) == ids
    assert fwd.running is False


async def test_a_rejected_batch_is_held_not_dropped() -> None:
    rx = ScriptedReceiver(default=400)
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    fill(outbox, 5)
    fwd = make_forwarder(server.url, outbox)
    fwd.start()
    try:
        await wait_until(lambda: fwd.stats.rejected >= 2, timeout=5)
    finally:
        await fwd.stop()
        await server.stop()
    assert outbox.depth == 5
    assert fwd.stats.forwarded == 0
    assert fwd.stats.last_error is not None and "400" in fwd.stats.last_error
    assert fwd.breaker_state is BreakerState.CLOSED  # the neighbour is up


async def test_a_poison_handler_takes_rejected_batches_out_of_the_way() -> None:
    rx = ScriptedReceiver([400])
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    ids = fill(outbox, 6)
    dead = DeadLetters()
    client = ServiceClient(server.url, retries=0, backoff_base=0.005, backoff_max=0.05,
                           breaker=CircuitBreaker(3, 0.2))
    fwd = Forwarder(outbox, client, batch_size=3, idle_interval=0.05, on_poison=dead)
    await drain(fwd, outbox, server)
    assert [seqs for seqs, _ in dead.kept] == [[1, 2, 3]]
    assert rx.stored_ids == ids[3:]


async def test_undecodable_item_is_poison_not_a_crash() -> None:
    outbox = InMemoryOutbox()
    outbox.put(b"\xff not json")
    client = ServiceClient("http://127.0.0.1:9", retries=0, breaker=CircuitBreaker(3, 0.2))
    fwd = Forwarder(outbox, client)
    assert await fwd.step() == "failed"
    assert fwd.stats.rejected == 1 and outbox.depth == 1
    await client.aclose()


async def test_stop_flushes_what_it_can_before_returning() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    fwd = make_forwarder(server.url, outbox, batch_size=4)
    fwd.start()
    ids = fill(outbox, 20)
    fwd.notify()
    await fwd.stop(flush_timeout=5)
    await server.stop()
    assert outbox.depth == 0
    assert rx.stored_ids == ids


async def test_stop_while_down_leaves_events_in_the_outbox() -> None:
    server = LocalServer(ScriptedReceiver())
    outbox = InMemoryOutbox()
    fill(outbox, 8)
    fwd = make_forwarder(server.url, outbox)
    fwd.start()
    await wait_until(lambda: fwd.stats.failures + fwd.stats.breaker_waits >= 1)
    await fwd.stop(flush_timeout=2)
    await server.stop()
    assert outbox.depth == 8
    assert not fwd.running


async def test_notify_wakes_an_idle_forwarder_quickly() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    client = ServiceClient(server.url, retries=0, breaker=CircuitBreaker(3, 0.2))
    fwd = Forwarder(outbox, client, idle_interval=30.0)  # polling alone would take 30 s
    fwd.start()
    try:
        await wait_until(lambda: fwd.running)
        outbox.put(orjson.dumps(event(1)))
        fwd.notify()
        await wait_until(lambda: outbox.depth == 0, timeout=2)
    finally:
        await fwd.stop()
        await server.stop()
    assert fwd.stats.forwarded == 1


def test_batch_size_is_checked() -> None:
    with pytest.raises(ValueError):
        Forwarder(InMemoryOutbox(), ServiceClient("http://x", breaker=CircuitBreaker(1, 1.0)),
                  batch_size=0)


async def test_events_refused_inside_a_200_are_handed_over_not_silently_acked() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    ids = fill(outbox, 10)
    rx.refuse_ids = {ids[2], ids[3], ids[8]}
    dead = DeadLetters()
    client = ServiceClient(server.url, retries=0, breaker=CircuitBreaker(3, 0.2))
    fwd = Forwarder(outbox, client, batch_size=5, idle_interval=0.05, on_refused=dead)
    await drain(fwd, outbox, server)
    assert rx.stored_ids == [i for i in ids if i not in rx.refuse_ids]
    assert [seqs for seqs, _ in dead.kept] == [[3, 4], [9]]  # per batch, by reason
    assert all(reason == "refused by /api/v1/events: state: must be a string"
               for _, reason in dead.kept)
    assert fwd.stats.refused_events == 3 and fwd.stats.forwarded == 10


async def test_an_answer_that_lists_no_rejected_events_refused_nothing() -> None:
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    fill(outbox, 4)
    dead = DeadLetters()
    client = ServiceClient(server.url, retries=0, breaker=CircuitBreaker(3, 0.2))
    fwd = Forwarder(outbox, client, on_refused=dead)
    assert await fwd.step() == "sent"
    await client.aclose()
    await server.stop()
    assert dead.kept == [] and fwd.stats.refused_events == 0 and outbox.depth == 0


@pytest.mark.parametrize("linger_s", [0.0, 1.0])
async def test_a_part_batch_lets_the_next_fill_for_linger_s(linger_s: float) -> None:
    """Events trickling in behind a part batch go out together after the linger, not one
    request each (every request costs both sides a request and a transaction)."""
    rx = ScriptedReceiver()
    server = LocalServer(rx)
    await server.start()
    outbox = InMemoryOutbox()
    client = ServiceClient(server.url, breaker=CircuitBreaker(3, reset_timeout=0.2))
    fwd = Forwarder(outbox, client, batch_size=100, idle_interval=0.01, linger_s=linger_s)
    fwd.start()
    try:
        for i in range(6):
            outbox.put(orjson.dumps(event(i)))
            fwd.notify()
            # without linger each one goes alone; with it, only the first does
            sent = i + 1 if not linger_s else 1
            await wait_until(lambda: fwd.stats.forwarded >= sent, timeout=5)  # noqa: B023
            await asyncio.sleep(0.02)  # a trickle, well inside one linger
        await wait_until(lambda: outbox.depth == 0, timeout=5)
    finally:
        await fwd.stop()
        await server.stop()
    assert fwd.stats.forwarded == 6
    if linger_s:
        assert fwd.stats.batches == 2  # the first event alone, the five behind it together
    else:
        assert fwd.stats.batches == 6  # without linger, one request per trickle


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="linger_s"):
        Forwarder(InMemoryOutbox(), ServiceClient("http://x", breaker=CircuitBreaker(1, 1.0)),
                  linger_s=-1)
