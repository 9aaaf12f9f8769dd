"""Where an event's time goes on its path, hop by hop, read from the points' own stamps.

Every point carries the moments each service handled it (``received_at`` at ingestion or
legacy's intake, ``enriched_at`` at enrichment, ``stored_at`` when the writer built its line)
and the writer records when InfluxDB answered 204 for it (`pipeline.common.acks`). So the
bench can split fired -> 204 into its hops without instrumenting any service: the latency the
verdict judges, and which hop to work on.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import numpy as np
import orjson

from harness.checks.stored import StoredPoints
from harness.errors import InfluxReadError
from pipeline.common.events import MEASUREMENT

__all__ = ["HOPS", "Hop", "read_hops"]

#: Hop names in path order; legacy has no enrichment, so its second hop is intake -> stamped.
HOPS = ("fired -> intake", "intake -> enriched", "enriched -> stamped", "intake -> stamped",
        "stamped -> 204", "fired -> 204")

_POINTS = f'SELECT "received_at","enriched_at","stored_at","writer" FROM "{MEASUREMENT}"'  # noqa: S608


@dataclass(frozen=True, slots=True)
class Hop:
    p50_ms: float
    p95_ms: float
    n: int

    def as_json(self) -> dict[str, float | int]:
        return {"p50_ms": round(self.p50_ms, 2), "p95_ms": round(self.p95_ms, 2), "n": self.n}


async def read_hops(client: httpx.AsyncClient, influx_url: str,
                    points: StoredPoints) -> dict[str, Hop]:
    """Each hop's p50/p95 over every point in ``points.database`` that has both of its stamps.

    ``points`` is what the verdict read (`harness.checks.stored`): its 204 records are used as
    they are; only the stamps the verdict does not read (intake, enrichment) are queried here.
    """
    rows = await _query(client, influx_url, points.database, _POINTS)
    acks = points.acks
    spans: dict[str, list[int]] = {name: [] for name in HOPS}
    for fired, received, enriched, stamped, writer in rows:
        acked = acks.get((writer, stamped))
        for name, start, end in (
                ("fired -> intake", fired, received),
                ("intake -> enriched", received, enriched),
                ("enriched -> stamped", enriched, stamped),
                ("intake -> stamped", received if enriched is None else None, stamped),
                ("stamped -> 204", stamped, acked),
                ("fired -> 204", fired, acked)):
            if start is not None and end is not None:
                spans[name].append(end - start)
    return {name: _stats(values) for name, values in spans.items() if values}


def _stats(values_ns: list[int]) -> Hop:
    p50, p95 = np.percentile(np.asarray(values_ns, dtype=np.float64) / 1e6, [50, 95])
    return Hop(float(p50), float(p95), len(values_ns))


async def _query(client: httpx.AsyncClient, influx_url: str, database: str,
                 statement: str) -> list[list[int | str | None]]:
    params = {"db": database, "epoch": "ns", "chunked": "true", "q": statement}
    rows: list[list[int | str | None]] = []
    async with client.stream("GET", f"{influx_url}/query", params=params, timeout=120) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.strip():
                continue
            for result in orjson.loads(line).get("results", []):
                if "error" in result:
                    raise InfluxReadError(f"reading {database}'s stamps: {result['error']}")
                for series in result.get("series", []):
                    rows.extend(series.get("values", []))
    return rows
