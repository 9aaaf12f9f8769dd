"""The ledger: in memory, on disk, compact, and surviving a SIGKILL of the server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import websockets

from pipeline.common.events import EventKey
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.timefmt import ulid

from .conftest import recv, send


def _change(i: int, rng) -> StateChange:
    t = 1_790_000_000_000_000_000 + i * 1000
    return StateChange(entity_id=f"sensor.s{i % 500}", old_state=None, new_state=None,
                       context_id=ulid(t, rng), time_fired_ns=t)


def test_memory_and_disk_agree(tmp_path):
    import random

    rng = random.Random(1)
    ledger = Ledger(tmp_path / "l.jsonl")
    changes = [_change(i, rng) for i in range(1000)]
    ledger.record_connection("c1", "opened", 1, remote="127.0.0.1:1")
    for k in range(0, 1000, 100):
        ledger.record_fired([(c, ("c1",)) for c in changes[k:k + 100]], emitted_ns=k)
    ledger.close()
    again = Ledger.load(tmp_path / "l.jsonl")
    assert len(again) == len(ledger) == 1000
    assert list(again) == list(ledger)
    assert ledger[5].context_id == changes[5].context_id
    last = changes[999]
    assert ledger.find(EventKey(last.entity_id, last.time_fired_ns)).context_id == last.context_id
    assert ledger.find(EventKey(last.entity_id, last.time_fired_ns + 1)) is None
    assert again.connections[0].info == {"remote": "127.0.0.1:1"}
    assert ledger.keys() == {EventKey(c.entity_id, c.time_fired_ns) for c in changes}


def test_a_torn_last_line_is_ignored_but_damage_elsewhere_is_named(tmp_path):
    import random

    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.record_fired([(_change(i, random.Random(i)), ()) for i in range(3)], emitted_ns=1)
    ledger.close()
    with open(path, "ab") as f:
        f.write(b'{"k":"event","context_id":"01')  # died mid-write
    assert len(Ledger.load(path)) == 3
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"l.jsonl:2: not a ledger line"):
        Ledger.load(path)


def test_entries_are_compact_enough_for_ten_million(tmp_path):
    import random

    rng = random.Random(2)
    ledger = Ledger(None)
    batch = [(_change(i, rng), ("c1", "c2")) for i in range(100_000)]
    ledger.record_fired(batch, emitted_ns=0)
    per_entry = ledger.nbytes() / len(ledger)
    # 10 million entries must fit comfortably in memory: < 100 bytes each is < 1 GB.
    assert per_entry < 100, per_entry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
async def test_sigkill_of_the_server_loses_no_record_of_what_was_sent(tmp_path):
    port, ledger_path = _free_port(), tmp_path / "ledger.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "fake-ha", "--port", str(port), "--token",
         "test-token", "--rate", "3000/s", "--entities", "200", "--ledger", str(ledger_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
    try:
        url = f"ws://127.0.0.1:{port}/api/websocket"
        for _ in range(100):
            try:
                ws = await websockets.connect(url)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("fake-ha did not start")
        await recv(ws)
        await send(ws, {"type": "auth", "access_token": "test-token"})
        assert (await recv(ws))["type"] == "auth_ok"
        await send(ws, {"id": 1, "type": "subscribe_events"})
        received: list[str] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            msg = await recv(ws)
            if msg["type"] == "event":
                received.append(msg["event"]["context"]["id"])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        try:  # drain what was already in flight
            while True:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 1))
                if msg["type"] == "event":
                    received.append(msg["event"]["context"]["id"])
        except (websockets.ConnectionClosed, TimeoutError):
            pass
    finally:
        proc.kill()
        proc.wait()
    ledger = Ledger.load(ledger_path)
    sent_to_us = {e.context_id for e in ledger if e.connections}
    assert len(received) > 3000
    missing = [i for i in received if i not in sent_to_us]
    assert not missing, f"{len(missing)} received events have no ledger record: {missing[:3]}"


def test_columns_agree_with_the_entries_and_keep_a_keys_first_entry() -> None:
    from simulators.home_assistant.events import StateChange
    ledger = Ledger(None)
    t = 1_700_000_000_000_000_000
    ledger.record_fired([(StateChange("light.a", None, {"state": "on"}, "0" * 26, t), ("c1",)),
                         (StateChange("light.b", None, None, "1" * 26, t + 1), ()),
                         (StateChange("light.a", None, {"state": "off"}, "2" * 26, t), ("c2",))],
                        emitted_ns=t)
    books = ledger.columns()
    for j in range(len(ledger)):
        entry = ledger[j]
        assert (books.entity_ids[j], books.times_ns[j]) == entry.key
        assert books.states[j] == (entry.state or "")  # a removed entity reads as ""
        assert books.connection_sets[books.connection_set[j]] == entry.connections
    assert books.first[EventKey("light.a", t)] == 0  # what was sent first
    ledger.record_fired([(StateChange("light.c", None, {"state": "x"}, "3" * 26, t), ())], t)
    assert len(ledger.columns().times_ns) == 4  # rebuilt once the ledger grew


def test_columns_built_a_slice_at_a_time_are_the_same_columns() -> None:
    from simulators.home_assistant.events import StateChange
    ledger = Ledger(None)
    t = 1_700_000_000_000_000_000
    changes = [StateChange(f"sensor.s{i % 3}", None, {"state": f"{i}é" if i == 4 else str(i)},
                           f"{i:026d}", t + (i % 2)) for i in range(9)]  # rows 0 and 6: one key
    ledger.record_fired([(c, ("c1",)) for c in changes], emitted_ns=t)
    whole = ledger.columns()
    ledger._columns = None
    sliced = asyncio.run(ledger.columns_async(rows_per_step=2))
    assert sliced == whole
    assert sliced.first[("sensor.s0", t)] == 0 and sliced.states[4] == "4é"
