"""The slicer toxic (Toxiproxy's ``slicer``): its one stage, :class:`Slicer`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType

from simulators.faultproxy.toxics.base import BadToxic, Chunk, Emit, Stage, register


@register
class Slicer(Stage):
    """Chunks are cut into pieces of ``average_size`` +/- ``size_variation`` bytes, ``delay``
    us apart."""

    TYPE = "slicer"
    ATTRIBUTES = MappingProxyType(
        {"average_size": "bytes", "size_variation": "bytes", "delay": "us"}
    )

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        if attributes.get("average_size", 0) < 1:
            raise BadToxic("attribute average_size of toxic type slicer must be >= 1 (bytes)")

    def sizes(self, total: int) -> list[int]:
        average = self.attr("average_size")
        variation = min(self.attr("size_variation"), average - 1)
        out: list[int] = []
        while total > average + variation:
            size = self.rng.randint(average - variation, average + variation)
            out.append(size)
            total -= size
        out.append(total)
        return out

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        data = memoryview(chunk.data)
        for size in self.sizes(len(data)):
            if not self.live:
                break
            await emit(Chunk(bytes(data[:size]), chunk.at))
            data = data[size:]
            if data:
                gap_start = loop.time()

                def deadline(start: float = gap_start) -> float:
                    return start + self.attr("delay") / 1e6

                await self.sleep_until(deadline)
        if data:
            await emit(Chunk(bytes(data), chunk.at))


__all__ = ["Slicer"]
