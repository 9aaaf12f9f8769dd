"""The slow_close toxic (Toxiproxy's ``slow_close``): its one stage, :class:`SlowClose`."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

from simulators.faultproxy.toxics.base import EmitEof, Stage, register


@register
class SlowClose(Stage):
    """The end of the stream (the close) is passed on ``delay`` ms late."""

    TYPE = "slow_close"
    ATTRIBUTES = MappingProxyType({"delay": "ms"})

    async def eof(self, emit_eof: EmitEof) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await self.sleep_until(lambda: start + self.attr("delay") / 1000.0)
        await emit_eof()


__all__ = ["SlowClose"]
