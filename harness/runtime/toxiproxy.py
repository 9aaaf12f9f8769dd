"""The hops of the topology (harness/scenario/topology.py) and a small async client for a
Toxiproxy-compatible HTTP API.

Every hop (a client service and what it connects to) can be routed through the fault proxy
(``simulators/faultproxy``, our own: no Toxiproxy binary can be installed here; the API is
Toxiproxy's, so this client would drive a real Toxiproxy too). The runtime decides where each
hop listens and what it forwards to; the fault injector only names hops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import httpx

from harness.errors import ToxiproxyError
from harness.scenario.topology import HOP_ENDS

__all__ = ["HOP_ENDS", "ProxySpec", "ToxiproxyClient", "ToxiproxyError", "hops_of"]


def hops_of(service: str) -> list[str]:
    """Every hop with ``service`` at one end: cutting them all partitions it."""
    return [hop for hop, ends in HOP_ENDS.items() if service in ends]


@dataclass(frozen=True, slots=True)
class ProxySpec:
    name: str
    listen: str  # host:port the clients connect to
    upstream: str  # host:port of the real server


class ToxiproxyClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = await self._client.request(method, f"{self.base_url}{path}", json=body, timeout=5)
        if r.status_code >= 400:
            try:
                detail = r.json().get("error", r.text)
            except ValueError:
                detail = r.text
            raise ToxiproxyError(f"fault proxy: {method} {path} -> HTTP {r.status_code}: "
                                 f"{detail}")
        return r.json() if r.content else None

    async def version(self) -> str:
        r = await self._client.get(f"{self.base_url}/version", timeout=2)
        r.raise_for_status()
        return r.text

    async def create(self, spec: ProxySpec) -> None:
        await self._call("POST", "/proxies", {"name": spec.name, "listen": spec.listen,
                                              "upstream": spec.upstream, "enabled": True})

    async def set_enabled(self, name: str, enabled: bool) -> None:
        await self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    async def add_toxic(self, proxy: str, name: str, kind: str, *, stream: str,
                        toxicity: float, attributes: dict[str, int]) -> None:
        await self._call("POST", f"/proxies/{proxy}/toxics",
                         {"name": name, "type": kind, "stream": stream,
                          "toxicity": toxicity, "attributes": attributes})

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    async def proxies(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self._call("GET", "/proxies"))  # a JSON object

    async def reset(self) -> None:
        await self._call("POST", "/reset")
