"""What a forwarder drains: the `Outbox` protocol, its refusal handler, and batch sizing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["DEFAULT_MAX_BATCH_BYTES", "Outbox", "PoisonHandler", "oldest_within"]


class Outbox(Protocol):
    """What the forwarder drains: a durable FIFO of (seq, payload) with cumulative acks.

    `peek(n)` returns up to n of the oldest unacknowledged items, oldest first, without removing
    them; `ack(seq)` removes every item up to and including `seq`; `depth` counts what is left.
    Each payload is one event, JSON-encoded.
    """

    # Positional-only and `-> object`: implementations may name the parameter differently and
    # return something (DurableQueue.ack returns how many items it removed).
    async def peek(self, n: int, /) -> list[tuple[int, bytes]]: ...

    async def ack(self, seq: int, /) -> object: ...

    @property
    def depth(self) -> int: ...


#: Asked what to do with a batch the receiver refuses (4xx) or that cannot be decoded.
#: Return True once the items are safely somewhere else (a dead-letter store): they are then
#: acked. Without a handler, or when it returns False, the forwarder keeps them and retries.
#: As ``on_refused`` it gets the events a 2xx refused one by one; they are acked either way
#: (sending them again cannot succeed), so a handler that returns False only loses the record.
PoisonHandler = Callable[[list[tuple[int, bytes]], str], Awaitable[bool]]


#: A batch's payload bytes at most (one event always goes, whatever its size): half the
#: receivers' default body limit (8 MiB, pipeline.common.service), so that events of a few
#: hundred KiB each, 500 to a batch, are not refused with a 413 that would hold the outbox
#: for ever (found by tests/fuzz/test_bad_frames.py).
DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024


def oldest_within(items: list[tuple[int, bytes]], max_bytes: int) -> list[tuple[int, bytes]]:
    """The oldest items whose payloads add up to at most ``max_bytes`` (at least one)."""
    total = 0
    for i, (_, payload) in enumerate(items):
        total += len(payload) + 1  # the comma between events in the body
        if total > max_bytes and i > 0:
            return items[:i]
    return items
