"""Reading a database back in time slices, as MessagePack or JSON, from a real influxd: every
point once, in time order, whatever the number of slices and whichever format answers."""

from __future__ import annotations

import httpx
import pytest

from harness.checks.stored import StoredPoints, read_points
from pipeline.common.events import Event
from pipeline.common.points import to_line

T0 = 1_790_000_000_000_000_000
N = 13  # times T0 .. T0 + 12 µs: 2, 3, 4 and 6 slices all cut exactly on a point


def _context(i: int) -> str:
    return f"01CTX{i:021d}"  # 26 characters, as Home Assistant's ULIDs


def _lines() -> list[str]:
    lines = []
    for i in range(N):
        t = T0 + i * 1000
        event = Event(context_id=_context(i), entity_id=f"sensor.s{i % 4}", domain="sensor",
                      time_fired_ns=t, state=str(i), old_state=None, received_at_ns=t)
        lines.append(to_line(event, writer="new", stored_at_ns=t + 5_000_000))
    return lines


def _rows(points: StoredPoints) -> list[tuple[int, str, str, str, int | None]]:
    return list(zip(points.times_ns, points.entity_ids, points.context_ids, points.states,
                    points.stored_at_ns, strict=True))


class _Recording(httpx.AsyncBaseTransport):
    """A real influxd, each answer's media type recorded; ``json_only`` asks it without the
    MessagePack media type: a server that only speaks JSON, as the reader must still read."""

    def __init__(self, *, json_only: bool) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self._json_only = json_only
        self.content_types: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._json_only:
            del request.headers["Accept"]
        response = await self._real.handle_async_request(request)
        self.content_types.append(response.headers.get("content-type", ""))
        return response

    async def aclose(self) -> None:
        await self._real.aclose()


@pytest.mark.parametrize("slices", [1, 2, 3, 4, 6, 20])
async def test_every_point_once_in_time_order_whatever_the_slices(influxd, influx_db, slices):
    assert influxd.write(influx_db, _lines()).status_code == 204
    async with httpx.AsyncClient() as client:
        points = await read_points(client, influxd.url, influx_db, chunk_size=2, slices=slices)
    rows = _rows(points)
    assert [r[0] for r in rows] == [T0 + i * 1000 for i in range(N)]
    assert rows[5] == (T0 + 5000, "sensor.s1", _context(5), "5", T0 + 5000 + 5_000_000)
    assert set(points.writers) == {"new"} and points.legacy_stamps == [None] * N
    # every column comes through the slices, each writer's own stamp included
    assert points.new_stamps == [T0 + i * 1000 + 5_000_000 for i in range(N)]


async def test_a_server_answering_json_is_read_alike(influxd, influx_db):
    assert influxd.write(influx_db, _lines()).status_code == 204
    msgpack, json_only = _Recording(json_only=False), _Recording(json_only=True)
    async with httpx.AsyncClient(transport=msgpack) as client, \
            httpx.AsyncClient(transport=json_only) as plain:
        packed = await read_points(client, influxd.url, influx_db, slices=3)
        answered = await read_points(plain, influxd.url, influx_db, slices=3)
    # the three slices came as MessagePack (the bounds and acks queries ask for JSON)
    assert [c for c in msgpack.content_types if "msgpack" in c] == ["application/x-msgpack"] * 3
    assert not any("msgpack" in c for c in json_only.content_types)
    assert _rows(answered) == _rows(packed) and len(packed) == N


async def test_an_empty_or_absent_database_reads_as_empty(influxd, influx_db):
    async with httpx.AsyncClient() as client:
        assert len(await read_points(client, influxd.url, influx_db)) == 0
        assert len(await read_points(client, influxd.url, "no_such_database")) == 0
