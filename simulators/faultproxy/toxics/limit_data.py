"""The limit_data toxic (Toxiproxy's ``limit_data``): its one stage, :class:`LimitData`."""

from __future__ import annotations

import random
from types import MappingProxyType

from simulators.faultproxy.toxics.base import Chunk, Emit, LinkControl, Stage, Toxic, register


@register
class LimitData(Stage):
    """Closes the connection once ``bytes`` bytes have gone through this direction."""

    TYPE = "limit_data"
    ATTRIBUTES = MappingProxyType({"bytes": "bytes"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self.sent = 0  # kept across updates, as Toxiproxy keeps its state

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
            return
        remaining = self.attr("bytes") - self.sent
        if remaining > 0:
            piece = chunk.data[:remaining]
            self.sent += len(piece)
            await emit(Chunk(piece, chunk.at))
        if self.attr("bytes") - self.sent <= 0:
            self.control.close_connection()


__all__ = ["LimitData"]
