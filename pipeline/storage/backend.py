"""Everything storage asks of InfluxDB: a writer per database, and ping / create / query.

1.x speaks its HTTP API through `InfluxV1Writer`. 2.x (CUTOVER_INFLUX_VERSION=2) is thin:
writes go through `InfluxV2Writer` (influxdb-client), buckets named like the databases are
created through the v2 HTTP API, and reads use InfluxQL on 2.x's 1.x-compatible ``/query``
endpoint (served for every bucket through its automatic "virtual" DBRP mapping).
"""

from __future__ import annotations

import httpx

from pipeline.common.influx import InfluxError, InfluxWriter
from pipeline.common.influx_v1 import InfluxV1Writer
from pipeline.common.influx_v2 import InfluxV2Writer
from pipeline.common.rewrites import CountingWriter, WriteCounts
from pipeline.common.transport import pooled_client
from pipeline.storage.settings import StorageSettings

__all__ = ["InfluxBackend", "make_writer"]

_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def make_writer(settings: StorageSettings, database: str, counts: WriteCounts) -> InfluxWriter:
    """The writer a BatchWriter for ``database`` writes through, counting each key's writes."""
    inner: InfluxWriter
    if settings.influx_version == "2":
        assert settings.influx_token is not None and settings.influx_org  # settings checked this
        inner = InfluxV2Writer(
            settings.influx_url,
            settings.influx_token.get_secret_value(),
            settings.influx_org,
            database,
        )
    else:
        inner = InfluxV1Writer(settings.influx_url, database)
    return CountingWriter(inner, counts)


class InfluxBackend:
    """Ping, database creation and InfluxQL queries over one pooled HTTP client."""

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        headers = {}
        if settings.influx_version == "2" and settings.influx_token is not None:
            headers["Authorization"] = f"Token {settings.influx_token.get_secret_value()}"
        self._client = pooled_client(timeout=_TIMEOUT, headers=headers)
        self._url = settings.influx_url.rstrip("/")

    def _v1(self, database: str) -> InfluxV1Writer:
        # Cheap: a view of the shared client bound to one database name.
        return InfluxV1Writer(self._url, database, client=self._client)

    async def ping(self) -> bool:
        return await self._v1(self._settings.influx_db).ping()

    async def ensure_databases(self, names: list[str]) -> None:
        """Create the databases (2.x: buckets) not there yet; `InfluxError` if that fails."""
        for name in names:
            if self._settings.influx_version == "2":
                await self._ensure_bucket(name)
            else:
                await self._v1(name).ensure_database()

    async def query(self, database: str, q: str) -> list[dict[str, object]]:
        """InfluxQL against ``database``; the ``results`` list (`InfluxError` on failure)."""
        return await self._v1(database).query(q, database=database)

    async def _ensure_bucket(self, name: str) -> None:
        org = self._settings.influx_org
        try:
            orgs = await self._client.get(f"{self._url}/api/v2/orgs", params={"org": org})
            orgs.raise_for_status()
            found = orgs.json().get("orgs") or []
            if not found:
                raise InfluxError(f"InfluxDB organisation {org!r} not found")
            org_id = found[0]["id"]
            buckets = await self._client.get(
                f"{self._url}/api/v2/buckets", params={"name": name, "orgID": org_id}
            )
            buckets.raise_for_status()
            if not buckets.json().get("buckets"):
                created = await self._client.post(
                    f"{self._url}/api/v2/buckets",
                    json={"orgID": org_id, "name": name, "retentionRules": []},
                )
                # 422 "bucket already exists": another storage created it meanwhile.
                if created.status_code != 422:
                    created.raise_for_status()
        except httpx.HTTPError as exc:
            raise InfluxError(
                f"cannot create bucket {name!r}: {type(exc).__name__}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
