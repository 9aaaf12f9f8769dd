"""wait_set: an Event wait with a timeout that never loses a cancellation (cpython#86296)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.common.aio import wait_set


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
