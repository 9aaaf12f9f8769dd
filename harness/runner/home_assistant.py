"""The run's Home Assistant, whichever it is: the fake the harness starts, or a live one.

The runner needs only this of it: how many events it has fired, a load to pace (the fake
alone), waiting until the pipeline's clients are subscribed, and stopping. Faults on Home
Assistant itself (``ha_*``) need the fake, and reach it through `FakeSide.server`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import LoadProfile
from simulators.home_assistant.server import FakeHomeAssistant

__all__ = ["FakeSide", "HomeAssistantSide"]


class HomeAssistantSide(Protocol):
    ledger: Ledger

    @property
    def description(self) -> str: ...

    @property
    def fired(self) -> int: ...

    def set_profile(self, profile: LoadProfile | None) -> None: ...

    async def wait_subscribers(self, urls: list[str], timeout: float) -> None: ...

    def close_books(self) -> None:
        """The load is over: what is fired from now on is not the pipeline's to store."""

    async def stop(self) -> None: ...


class FakeSide:
    """The fake Home Assistant: it fires the load and sees every connection itself."""

    description = "fake Home Assistant"

    def __init__(self, server: FakeHomeAssistant) -> None:
        self.server = server
        self.ledger = server.ledger

    @property
    def fired(self) -> int:
        return self.server.fired

    def set_profile(self, profile: LoadProfile | None) -> None:
        self.server.set_profile(profile)

    async def wait_subscribers(self, urls: list[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and sum(
                1 for c in self.server.connections.values() if c.subs.events) < len(urls):
            await asyncio.sleep(0.05)

    def close_books(self) -> None:
        self.server.set_profile(None)  # the fake fires nothing more

    async def stop(self) -> None:
        await self.server.stop()
