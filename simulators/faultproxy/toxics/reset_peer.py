"""The reset_peer toxic (Toxiproxy's ``reset_peer``): its one stage, :class:`ResetPeer`."""

from __future__ import annotations

import asyncio
import random
from types import MappingProxyType

from simulators.faultproxy.toxics.base import (
    Chunk,
    Emit,
    EmitEof,
    LinkControl,
    Stage,
    Toxic,
    register,
)


@register
class ResetPeer(Stage):
    """On the first data (or end of stream) after it took effect, wait ``timeout`` ms, then
    reset the connection (SO_LINGER 0: both peers get an RST); that data is dropped."""

    TYPE = "reset_peer"
    ATTRIBUTES = MappingProxyType({"timeout": "ms"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._timer: asyncio.TimerHandle | None = None

    def _trigger(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(
                self.attr("timeout") / 1000.0, self.control.reset_connection
            )

    def stopped(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
            return
        self._trigger()

    async def eof(self, emit_eof: EmitEof) -> None:
        if not self.live:
            await emit_eof()
            return
        self._trigger()


__all__ = ["ResetPeer"]
