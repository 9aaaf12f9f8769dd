"""The latency toxic (Toxiproxy's ``latency``): its one stage, :class:`Latency`."""

from __future__ import annotations

from types import MappingProxyType

from simulators.faultproxy.toxics.base import Chunk, Emit, Stage, register


@register
class Latency(Stage):
    """Each chunk goes on ``latency`` +/- ``jitter`` ms after it arrived."""

    TYPE = "latency"
    ATTRIBUTES = MappingProxyType({"latency": "ms", "jitter": "ms"})

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        jitter = self.attr("jitter")
        offset = self.rng.uniform(-jitter, jitter) if jitter else 0.0

        def due() -> float:  # looked at again after a wake: an update applies to held data
            return chunk.at + max(0.0, self.attr("latency") + offset) / 1000.0

        await self.sleep_until(due)
        # Passed on stamped with its due time: a second latency toxic adds up, and chunks
        # queued behind this one are not delayed by the time it spent here.
        await emit(Chunk(chunk.data, due()) if self.live else chunk)


__all__ = ["Latency"]
