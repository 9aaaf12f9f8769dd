"""The monitor's live reads of InfluxDB take only whole points as evidence.

InfluxDB 1.x makes a point visible field by field: a query racing a write can return a row
with ``stored_at`` and ``writer`` set but ``state`` still null. Taken as evidence, such a row
reads as "state '', sent 'on'": the live ``inconsistent`` trigger rolled back healthy
migrations with "events stored inconsistently 1" while the final accounting found nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx

from harness.runner.monitor import Monitor
from pipeline.common.events import Event
from pipeline.common.points import to_line
from pipeline.common.transport import pooled_client
from simulators.home_assistant.timefmt import ulid


class _InfluxOnly:
    """The one part of a runtime the monitor's InfluxDB reads use."""

    def __init__(self, url: str) -> None:
        self._url = url

    def running(self, service: str) -> bool:
        return service == "influxdb"

    def url(self, service: str) -> str:
        return self._url


async def test_points_read_while_they_are_written_are_whole_or_not_taken(
        influxd, influx_db, tmp_path: Path) -> None:
    monitor = Monitor(runtime=_InfluxOnly(influxd.url), ledger=None,  # type: ignore[arg-type]
                      influx_db=influx_db, shadow_db="no_shadow", run_dir=tmp_path,
                      started_ns=time.time_ns(), phase=lambda: "x", routing=lambda: (0, False))
    monitor._client = pooled_client(timeout=10)  # the monitor's own client, as in start()
    rng = random.Random(3)
    written = 0
    taken = []
    t = time.time_ns()  # each point its own time: InfluxDB would merge two at one

    async def write() -> None:
        nonlocal written, t
        async with httpx.AsyncClient(timeout=10) as client:
            while written < 120_000:
                # time_fired keeps up with the clock: the monitor reads back only the last
                # lookback_s (30 s), and a loaded machine can take longer than that to write
                t = max(t, time.time_ns())
                lines = [to_line(Event(context_id=ulid(t, rng), entity_id=f"sensor.s{i % 50}",
                                       domain="sensor", time_fired_ns=t + i * 1000,
                                       state="on", old_state="off", received_at_ns=t),
                                 writer="legacy", stored_at_ns=t) for i in range(500)]
                t += 500 * 1000
                r = await client.post(f"{influxd.url}/write", params={"db": influx_db},
                                      content="\n".join(lines))
                assert r.status_code == 204, r.text
                written += len(lines)

    writer = asyncio.create_task(write())
    try:
        while not writer.done():
            taken += await monitor._read_new_points()
        await writer
        taken += await monitor._read_new_points()  # what is left, now whole
    finally:
        await monitor._client.aclose()
    # Every point was taken exactly once, and whole: a torn read never became evidence.
    assert len(taken) == written
    assert {p.state for p in taken} == {"on"}
    assert all(p.context_id and p.path == "legacy" for p in taken)



def test_the_drain_waits_for_each_sent_event_not_for_a_count(tmp_path: Path) -> None:
    """Events read back from history are stored without having been sent to anyone: counted,
    they stood in for a sent event still on its way, the drain ended early and the accounting
    called that event lost (survive_ha_restart, under co-load)."""
    from simulators.home_assistant.events import StateChange
    from simulators.home_assistant.ledger import Ledger

    ledger = Ledger(None)
    rng = random.Random(1)
    changes = [StateChange(f"sensor.s{i}", None, {"state": "1"}, ulid(1_000 + i, rng), 1_000 + i)
               for i in range(3)]
    ledger.record_fired([(changes[0], ())], emitted_ns=1)  # fired to nobody: recovered
    ledger.record_fired([(c, ("c1",)) for c in changes[1:]], emitted_ns=2)
    monitor = Monitor(runtime=None, ledger=ledger, influx_db="p",  # type: ignore[arg-type]
                      shadow_db="s", run_dir=tmp_path, started_ns=0, phase=lambda: "x",
                      routing=lambda: (0, False))
    # production holds the recovered event and one of the two sent ones
    monitor.production_keys.update({ledger.key(0), ledger.key(1)})
    monitor._advance_ledger()
    assert monitor._fired_subscribed == len(monitor.production_keys) == 2  # the old test: done
    assert monitor._unstored == {ledger.key(2)}  # the event still on its way
