"""The bandwidth toxic (Toxiproxy's ``bandwidth``): its one stage, :class:`Bandwidth`."""

from __future__ import annotations

import asyncio
import random
from types import MappingProxyType

from simulators.faultproxy.toxics.base import Chunk, Emit, LinkControl, Stage, Toxic, register


@register
class Bandwidth(Stage):
    """At most ``rate`` KB/s (1 KB = 1000 bytes); a rate of 0 means no limit."""

    TYPE = "bandwidth"
    ATTRIBUTES = MappingProxyType({"rate": "KB/s"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._free_at = 0.0  # when the line is free for the next byte (loop time)

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        data = chunk.data
        while data:
            rate = self.attr("rate")
            if not self.live or rate <= 0:
                await emit(Chunk(data, chunk.at))
                return
            # Pieces of at most 100 ms of line time, so a slow rate still trickles.
            piece, data = data[: rate * 100], data[rate * 100 :]
            self._free_at = max(self._free_at, loop.time()) + len(piece) / (rate * 1000.0)
            await self.sleep_until(lambda: self._free_at)
            await emit(Chunk(piece, chunk.at))


__all__ = ["Bandwidth"]
