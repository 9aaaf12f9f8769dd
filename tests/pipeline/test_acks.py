"""Latency to InfluxDB's 204, not to the writer's stamp (pipeline/common/acks.py): a writer
records when InfluxDB acknowledged each batch, and the verdict measures to that moment.

The defect these exist for: a writer whose latency ends when it builds a point, before a slow
InfluxDB has made it durable (how both paths measured before acks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from harness.checks.accounting import account
from harness.checks.stored import read_points
from pipeline.common.acks import ack_lines, stamp_of
from pipeline.common.batch_writer import BatchWriter
from pipeline.common.events import Event
from pipeline.common.influx import WriteError
from pipeline.common.influx_v1 import InfluxV1Writer
from pipeline.common.points import to_line
from pipeline.common.rewrites import CountingWriter, WriteCounts
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.ledger import Ledger
from tests.fixtures.influx import InfluxServer

SLOW_S = 0.3


class SlowInflux:
    """A real InfluxDB that takes ``SLOW_S`` longer to answer each write (a loaded server)."""

    def __init__(self, inner: InfluxV1Writer) -> None:
        self.inner = inner
        self.writes = 0

    async def write(self, lines: Sequence[str]) -> None:
        self.writes += 1
        await asyncio.sleep(SLOW_S)
        await self.inner.write(lines)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_stamp_is_read_back_from_the_line_a_writer_wrote() -> None:
    event = Event(context_id="0" * 26, entity_id="sensor.a", domain="sensor",
                  time_fired_ns=5, state='x i"', old_state=None, received_at_ns=6)
    assert stamp_of(to_line(event, writer="new", stored_at_ns=1_234)) == 1_234
    assert stamp_of(to_line(event, writer="legacy", stored_at_ns=99)) == 99
    assert stamp_of(ack_lines("new", [7], 8)[0]) is None  # an ack is not acknowledged again
    assert ack_lines("legacy", [3, 1, 3], 9) == [
        "home_assistant_write_acks,writer=legacy acked_at=9i 1",
        "home_assistant_write_acks,writer=legacy acked_at=9i 3"]


async def test_the_verdict_measures_to_the_204_of_a_slow_influxdb(
        influxd: InfluxServer, influx_db: str, tmp_path: Path) -> None:
    t0 = time.time_ns()
    changes = [StateChange(f"sensor.s{i}", None, {"state": str(i)}, f"{i + 1:026d}", t0 + i)
               for i in range(20)]
    ledger = Ledger(None)
    ledger.record_fired([(c, ("c1",)) for c in changes], emitted_ns=t0)
    stamp = t0 + 1_000_000  # stamped 1 ms after firing, before the slow write
    lines = [to_line(Event(context_id=c.context_id, entity_id=c.entity_id, domain="sensor",
                           time_fired_ns=c.time_fired_ns, state=c.state, old_state=None,
                           received_at_ns=stamp), writer="new", stored_at_ns=stamp)
             for c in changes]
    slow = SlowInflux(InfluxV1Writer(influxd.url, influx_db, timeout=5.0))
    counts = WriteCounts()
    # As storage writes: through the writer that counts each key's writes (events only).
    writer = await BatchWriter.open(CountingWriter(slow, counts), tmp_path / "q.sqlite3",
                                    flush_interval=0.01, ack_as="new")
    await writer.submit(lines)
    assert await writer.flush(10)
    await asyncio.sleep(SLOW_S + 0.2)  # the ack's own write, after the batch's 204
    await writer.aclose()
    assert slow.writes == 2 and writer.acks_lost == 0  # the batch, then its ack
    assert writer.last_error is None and counts.rewritten == 0

    async with httpx.AsyncClient() as client:
        points = await read_points(client, influxd.url, influx_db)
    assert points.acks[("new", stamp)] - stamp >= SLOW_S * 1e9
    acc = account(ledger, points, None, phase_of=lambda _t: "x", owner_of=lambda _e, _t: "new")
    latency = acc.latency["production"]
    assert acc.counts.lost == 0, acc.findings.lost
    assert latency.acked == latency.count == 20
    assert latency.p50_ms >= SLOW_S * 1000  # to the 204; the stamp alone says ~1 ms

    points.acks = {}  # a run from before acks: measured to the stamp, and said so
    plain = account(ledger, points, None, phase_of=lambda _t: "x",
                    owner_of=lambda _e, _t: "new").latency["production"]
    assert plain.acked is None and plain.p95_ms < SLOW_S * 1000


class GatedAcks:
    """Writes events at once and holds every ack write until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.events: list[list[str]] = []
        self.acks: list[list[str]] = []

    async def write(self, lines: Sequence[str]) -> None:
        if lines[0].startswith("home_assistant_write_acks"):
            await self.gate.wait()
            self.acks.append(list(lines))
        else:
            self.events.append(list(lines))

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


def _line(i: int, stamp: int) -> str:
    return to_line(Event(context_id="0" * 26, entity_id=f"sensor.s{i}", domain="sensor",
                         time_fired_ns=i + 1, state="x", old_state=None, received_at_ns=stamp),
                   writer="new", stored_at_ns=stamp)


async def test_the_next_batch_never_waits_for_the_last_ones_ack(tmp_path: Path) -> None:
    """The defect: a writer that awaits its ack's round trip before the next batch, which
    doubled both paths' latency under load."""
    influx = GatedAcks()
    writer = await BatchWriter.open(influx, tmp_path / "q.sqlite3", flush_interval=0.01,
                                    ack_as="new")
    await writer.submit([_line(0, 100)])
    while writer.points_written < 1:
        await asyncio.sleep(0.005)
    await writer.submit([_line(1, 200)])

    async def second_batch_written() -> None:
        while writer.points_written < 2:
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(second_batch_written(), 5)
    except TimeoutError:
        raise AssertionError("the second batch waited for the first batch's ack") from None
    assert influx.acks == []  # both batches written while the first ack is still held
    influx.gate.set()
    assert await writer.flush(5)  # a flush covers the acks too
    assert [line.split()[-1] for batch in influx.acks for line in batch] == ["100", "200"]
    await writer.aclose()
    assert writer.acks_lost == 0


async def test_an_ack_influxdb_does_not_take_is_counted_lost(tmp_path: Path) -> None:
    class Refusing(GatedAcks):
        async def write(self, lines: Sequence[str]) -> None:
            if lines[0].startswith("home_assistant_write_acks"):
                raise WriteError("field type conflict", status=400, retryable=False)
            await super().write(lines)

    writer = await BatchWriter.open(Refusing(), tmp_path / "q.sqlite3", flush_interval=0.01,
                                    ack_as="new")
    await writer.submit([_line(0, 100)])
    assert await writer.flush(5)
    await writer.aclose()
    assert writer.points_written == 1 and writer.acks_lost == 1
