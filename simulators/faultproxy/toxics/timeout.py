"""The timeout toxic (Toxiproxy's ``timeout``): its one stage, :class:`Timeout`."""

from __future__ import annotations

import asyncio
import random
from types import MappingProxyType

from simulators.faultproxy.toxics.base import Chunk, Emit, LinkControl, Stage, Toxic, register


@register
class Timeout(Stage):
    """No data gets through; the connection is closed ``timeout`` ms after the toxic took
    effect on it (or was updated), never if ``timeout`` is 0. Removing the toxic closes the
    connections it was affecting (Toxiproxy does so: their streams have lost data).

    Toxiproxy's implementation restarts its timer at each chunk it drops, so a chatty client
    is never closed; this follows its documentation instead ("closes the connection after
    timeout")."""

    TYPE = "timeout"
    ATTRIBUTES = MappingProxyType({"timeout": "ms; 0 = never close"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._timer: asyncio.TimerHandle | None = None

    def started(self) -> None:
        timeout = self.attr("timeout")
        if timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(timeout / 1000.0, self.control.close_connection)

    def stopped(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def changed(self) -> None:
        self.stopped()
        self.started()

    def on_removed(self) -> None:
        self.control.close_connection()

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
        # else: dropped on the floor


__all__ = ["Timeout"]
