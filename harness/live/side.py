"""A live Home Assistant as the run sees it: a URL, a token kept secret, and the witness."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import LoadProfile

from .witness import Witness

__all__ = ["LiveHomeAssistant", "LiveTarget"]


@dataclass(frozen=True)
class LiveTarget:
    """Where the live Home Assistant is; the token is never shown (repr, logs, reports)."""

    url: str
    token: str = field(repr=False)

    @property
    def description(self) -> str:
        return f"live Home Assistant at {self.url}"

    @property
    def loopback(self) -> bool:
        host = urlsplit(self.url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")


class LiveHomeAssistant:
    """The run's Home Assistant when it is a live one: it fires what the home does; the
    harness only watches (`Witness`) and waits for the pipeline's clients to subscribe."""

    def __init__(self, target: LiveTarget, ledger: Ledger) -> None:
        self.target = target
        self.ledger = ledger
        self.witness = Witness(target.url, target.token, ledger)
        self._client: httpx.AsyncClient | None = None

    @property
    def description(self) -> str:
        return self.target.description

    @property
    def fired(self) -> int:
        return len(self.ledger)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=5)
        await self.witness.start()

    async def stop(self) -> None:
        await self.witness.stop()
        if self._client is not None:
            await self._client.aclose()

    def set_profile(self, profile: LoadProfile | None) -> None:
        """Nothing to pace: a live Home Assistant fires what the home does. A scenario that
        asks for a load is refused before the run (harness.live.rules); the default load of a
        file without one simply does not apply."""

    def close_books(self) -> None:
        """A live Home Assistant goes on firing after the plan ends; what it fires during the
        drain is left out of the books, so the last events of a run are not judged lost for
        want of time to store them."""
        self.witness.close_books()

    async def wait_subscribers(self, urls: list[str], timeout: float) -> None:
        """Until each Home Assistant client of the pipeline says (``/health`` details) that
        it is subscribed; from then on the witness's books are open: every event is judged."""
        client = self._client
        if client is None:
            raise RuntimeError("wait_subscribers before start()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = list(urls)
        while waiting and loop.time() < deadline:
            still = []
            for url in waiting:
                try:
                    body = (await client.get(f"{url}/health", timeout=2)).json()
                except (httpx.HTTPError, ValueError):
                    still.append(url)
                    continue
                if not (body.get("details") or {}).get("ha_subscribed"):
                    still.append(url)
            waiting = still
            if waiting:
                await asyncio.sleep(0.1)
        self.witness.open_books()
