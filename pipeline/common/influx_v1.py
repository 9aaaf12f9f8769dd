"""InfluxDB 1.x: `InfluxV1Writer` speaks its HTTP API (``/write``, ``/query``, ``/ping``) with
httpx."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from pipeline.common.influx import InfluxError, WriteError
from pipeline.common.transport import nothing_sent, pooled_client

__all__ = ["InfluxV1Writer", "quote_ident"]

def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):
            return error
    except orjson.JSONDecodeError:
        pass
    return response.text.strip() or f"HTTP {response.status_code}"


class InfluxV1Writer:
    """InfluxDB 1.x: ``POST /write?db=...&precision=ns`` with line protocol."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client or pooled_client(timeout=self._timeout)

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        try:
            response = await self._client.post(
                f"{self.url}/write", params=self._params, content=body,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.RequestError as exc:
            # Includes read timeouts after the server may have stored the batch: retrying
            # rewrites the same points, which is harmless. Only a connection never made
            # certainly sent nothing.
            raise WriteError(f"{type(exc).__name__}: {exc or 'no detail'}", retryable=True,
                             in_doubt=not nothing_sent(exc)) from exc
        if response.status_code == 204:
            return
        if response.is_success:
            # Only InfluxDB's 204 means "stored". A 200 comes from 1.x for an empty body, or
            # from something that is not InfluxDB at all (a proxy, a wrong port): never an ack.
            raise WriteError(
                f"unexpected {response.status_code} from {self.url}/write (expected 204): "
                f"{_server_message(response)[:200]}",
                retryable=True,
                status=response.status_code,
            )
        raise WriteError.from_response(response.status_code, _server_message(response))

    async def ping(self) -> bool:
        try:
            response = await self._client.get(f"{self.url}/ping", timeout=self._timeout)
        except httpx.RequestError:
            return False
        return response.status_code == 204

    async def query(self, q: str, *, database: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; the ``results`` list. Raises `InfluxError` on any statement error."""
        params = {"epoch": "ns"}
        if database:
            params["db"] = database
        try:
            response = await self._client.post(
                f"{self.url}/query", params=params, data={"q": q},
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.RequestError as exc:
            raise InfluxError(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise InfluxError(_server_message(response))
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"{q!r}: {result['error']}")
        return results

    async def ensure_database(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists)."""
        await self.query(f"CREATE DATABASE {quote_ident(self.database)}")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
