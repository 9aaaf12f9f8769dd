"""wait_set: an Event wait with a timeout that never loses a cancellation (cpython#86296)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.common.aio import wait_set, within


async def test_set_timeout_and_already_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5) is True
    assert await wait_set(event, 0) is True  # already set: no wait at all


async def test_a_cancel_arriving_as_the_event_is_set_is_not_lost() -> None:
    # asyncio.wait_for on 3.11 returns True here and the task runs on: a background loop
    # cancelled by stop() then never ends (RoutingFollower.stop() hung this way).
    for _ in range(50):
        event = asyncio.Event()
        waiter = asyncio.create_task(wait_set(event, 10))
        await asyncio.sleep(0)  # the waiter is now inside event.wait()
        event.set()
        waiter.cancel()  # in the same loop iteration
        with pytest.raises(asyncio.CancelledError):
            await waiter


async def test_within_times_out_and_returns_what_it_awaited() -> None:
    assert await within(asyncio.sleep(0, result="pong"), 1) == "pong"
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(5), 0.01)


async def test_a_cancel_arriving_as_the_awaited_answer_does_is_not_lost() -> None:
    # storage's health loop: the InfluxDB ping answers in the loop iteration in which aclose()
    # cancels the loop; with asyncio.wait_for the answer won, the loop ran on, shutdown hung.
    async def health_loop(answers: asyncio.Queue[bool]) -> None:
        while True:
            await within(answers.get(), 10)

    for _ in range(50):
        answers: asyncio.Queue[bool] = asyncio.Queue()
        loop = asyncio.create_task(health_loop(answers))
        await asyncio.sleep(0)  # the loop now waits for an answer
        answers.put_nowait(True)
        loop.cancel()  # in the same loop iteration
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(loop), 1)
