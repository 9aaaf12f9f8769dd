"""Waiting with a timeout without losing a cancellation: on an asyncio.Event, or on anything.

Not ``asyncio.wait_for(event.wait(), t)``: on Python 3.11 it returns normally when the event
is set in the same loop iteration as the task is cancelled, and the cancellation is lost
(python/cpython#86296, fixed in 3.12). A background loop cancelled by its ``stop()`` then runs
on for ever and ``stop()`` never returns: found as a hang in RoutingFollower.stop() while a
waiter kicked it. ``asyncio.timeout`` leaves an outside cancellation pending instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["wait_set", "within"]

T = TypeVar("T")


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it is set."""
    if timeout is not None and timeout <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``asyncio.wait_for`` (TimeoutError after ``timeout`` s) without its lost cancellation on
    3.11: a storage whose InfluxDB ping answered as it was being stopped kept its health loop
    running, and its shutdown never ended (1 SIGTERM in about 40)."""
    async with asyncio.timeout(timeout):
        return await awaitable
