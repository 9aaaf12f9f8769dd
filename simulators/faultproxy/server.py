"""The in-process fault proxy: the collection of proxies plus, with ``api_port``, the
Toxiproxy-compatible HTTP API serving it (the API wraps the collection, never the reverse)."""

from __future__ import annotations

from simulators.faultproxy.api import ApiServer
from simulators.faultproxy.collection import Proxies


class FaultProxy(Proxies):
    """Every proxy, plus (with ``api_port``) the Toxiproxy-compatible HTTP API.

    ``async with FaultProxy(api_port=0) as fp:``
    ``proxy = await fp.create("db", listen="127.0.0.1:0", upstream="127.0.0.1:8086")``
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        api_port: int | None = None,
        *,
        seed: int | None = None,
        allow_remote_listen: bool = False,
    ) -> None:
        super().__init__(host, seed=seed, allow_remote_listen=allow_remote_listen)
        self.api_port = api_port
        self._api: ApiServer | None = None

    @property
    def api_url(self) -> str | None:
        return None if self._api is None else self._api.url

    async def start(self) -> None:
        if self.api_port is not None and self._api is None:
            self._api = ApiServer(self, host=self.host, port=self.api_port)
            await self._api.start()
            self.api_port = self._api.port

    async def stop(self) -> None:
        if self._api is not None:
            await self._api.stop()
            self._api = None
        await self.close()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["FaultProxy"]
