"""InfluxDB 2.x: `InfluxV2Writer` goes through influxdb-client's ``InfluxDBClientAsync``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pipeline.common.influx import WriteError
from pipeline.common.transport import nothing_sent

__all__ = ["InfluxV2Writer"]

class InfluxV2Writer:
    """InfluxDB 2.x through influxdb-client's ``InfluxDBClientAsync`` (which needs aiohttp).

    A missing aiohttp fails here, at service start, not at the first write. The client itself
    is made on first use because it must be created inside a running event loop.
    """

    def __init__(
        self, url: str, token: str, org: str, bucket: str, *, timeout: float = 10.0
    ) -> None:
        try:
            import aiohttp
        except ImportError as exc:
            raise RuntimeError(
                "InfluxV2Writer needs aiohttp, which influxdb-client's async API uses: "
                "pip install 'influxdb-client[async]'"
            ) from exc
        self.url = url
        self.org = org
        self.bucket = bucket
        self._token = token
        self._timeout_ms = int(timeout * 1000)
        self._client: Any = None
        self._write_api: Any = None
        self._transport_errors: tuple[type[BaseException], ...] = (
            OSError, asyncio.TimeoutError, aiohttp.ClientError)

    def _connect(self) -> Any:
        if self._client is None:
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

            self._client = InfluxDBClientAsync(url=self.url, token=self._token, org=self.org,
                                               timeout=self._timeout_ms)
            self._write_api = self._client.write_api()
        return self._client

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        self._connect()
        try:
            await self._write_api.write(
                bucket=self.bucket, org=self.org, record="\n".join(lines),
                write_precision=WritePrecision.NS,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = getattr(exc, "message", None) or str(exc.body or exc.reason or exc)
            raise (WriteError.from_response(status, message) if status
                   else WriteError(message, retryable=True)) from exc
        except self._transport_errors as exc:
            raise WriteError(f"{type(exc).__name__}: {exc}", retryable=True,
                             in_doubt=not nothing_sent(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._connect().ping())
        except Exception:  # noqa: BLE001 - ping answers a question; it never raises
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
