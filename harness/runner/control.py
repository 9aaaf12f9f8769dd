"""The harness's client of admin-api's migration control plane (what Flagger does to a mesh)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx

from harness.errors import ControlPlaneError
from pipeline.common.routing import RoutingTable


class ControlPlane:
    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient, *,
                 connect_grace_s: float = 10.0) -> None:
        self.base_url = base_url
        self.connect_grace_s = connect_grace_s
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = client
        # The newest routing table admin-api answered with. Entries are append-only and
        # announced ahead of their boundary, so it decides every event already fired: the live
        # ownership and shadow checks use it, and the accounting once admin-api is stopped.
        self.last_table: RoutingTable | None = None

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.connect_grace_s
        while True:
            try:
                r = await self._client.request(method, f"{self.base_url}{path}", json=body,
                                               headers=self._headers, timeout=10)
                break
            except httpx.ConnectError:
                # Refused: nothing reached admin-api, so trying again is safe. A plan may send
                # its first step to an admin-api started a moment ago (CI once saw it not yet
                # listening 2 s after its start, on a loaded machine).
                if loop.time() >= give_up:
                    raise ControlPlaneError(f"admin-api unreachable at {self.base_url}: "
                                            f"ConnectError for {self.connect_grace_s:g} s"
                                            ) from None
                await asyncio.sleep(0.1)
            except httpx.TransportError as exc:
                raise ControlPlaneError(f"admin-api unreachable at {self.base_url}: "
                                        f"{type(exc).__name__}") from None
        if r.status_code >= 400:
            raise ControlPlaneError(f"admin-api {method} {path} answered {r.status_code}: "
                                    f"{r.text[:300]}")
        body = r.json()
        if isinstance(body, dict) and isinstance(body.get("table"), dict):
            self.last_table = RoutingTable.model_validate(body["table"])
        return body

    async def set(self, *, reason: str, new_percent: int | None = None,
                  shadow: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": reason}
        if new_percent is not None:
            body["new_percent"] = new_percent
        if shadow is not None:
            body["shadow"] = shadow
        return cast("dict[str, Any]", await self._send("PUT", "/api/v1/migration", body))

    async def rollback(self, reason: str) -> dict[str, Any]:
        return cast("dict[str, Any]",
                    await self._send("POST", "/api/v1/migration/rollback", {"reason": reason}))

    async def state(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self._send("GET", "/api/v1/migration"))

    async def table(self) -> RoutingTable:
        await self.state()
        assert self.last_table is not None
        return self.last_table
