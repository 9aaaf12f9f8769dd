"""``cutover demo``: the fake Home Assistant and one real websocket subscriber, side by side.

Until the migration scenarios exist this is the project's main job: it shows that what the
fake emitted (the ledger) is exactly what a client received.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import websockets
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from harness.console import make_console
from pipeline.common.events import EventKey
from pipeline.common.normalise import parse_time
from simulators.home_assistant.config import ServerConfig
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import LoadProfile
from simulators.home_assistant.server import FakeHomeAssistant

from .fake_ha import default_run_dir, fresh_token


async def _subscribe(url: str, token: str, received: list[dict[str, Any]],
                     subscribed: asyncio.Event) -> None:
    """A plain client, as an ingestion service would write it: auth, subscribe, read."""
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        assert orjson.loads(await ws.recv())["type"] == "auth_required"
        await ws.send(orjson.dumps({"type": "auth", "access_token": token}).decode())
        reply = orjson.loads(await ws.recv())
        if reply["type"] != "auth_ok":
            raise RuntimeError(f"fake Home Assistant refused the token: {reply}")
        await ws.send(orjson.dumps({"id": 1, "type": "subscribe_events",
                                    "event_type": "state_changed"}).decode())
        async for raw in ws:
            msg = orjson.loads(raw)
            if msg.get("type") == "result":
                subscribed.set()
            elif msg.get("type") == "event":
                received.append(msg["event"])


async def run_demo(*, seconds: float, profile: LoadProfile | None, entities: int, seed: int,
                   report_dir: Path) -> bool:
    console = make_console()
    run_dir = default_run_dir("demo", report_dir)
    token = fresh_token()  # the demo's own client is the only one that needs it
    ledger = Ledger(run_dir / "ledger.jsonl")
    ha = FakeHomeAssistant(ServerConfig(port=0, token=token),
                           fleet=Fleet(FleetSpec(entities=entities, seed=seed)), ledger=ledger,
                           seed=seed)
    received: list[dict[str, Any]] = []
    subscribed = asyncio.Event()
    async with ha:
        client = asyncio.create_task(_subscribe(ha.url, token, received, subscribed))
        await asyncio.wait_for(subscribed.wait(), timeout=10)
        ha.set_profile(profile)
        started = time.monotonic()
        with Progress(TextColumn("[bold]demo[/]"), BarColumn(), TextColumn("{task.description}"),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("", total=seconds)
            while (elapsed := time.monotonic() - started) < seconds:
                progress.update(task, completed=elapsed,
                                description=f"fired {ha.fired}  received {len(received)}")
                await asyncio.sleep(0.25)
            progress.update(task, completed=seconds)
        ha.set_profile(None)
        await asyncio.sleep(0.5)  # let the last frames arrive
        client.cancel()
        elapsed = time.monotonic() - started

    # By (entity_id, time_fired): contexts are shared by every change one action causes.
    ids = Counter(EventKey(e["data"]["entity_id"], parse_time(e["time_fired"])) for e in received)
    emitted = [e.key for e in ledger]
    missing = [i for i in emitted if i not in ids]
    duplicated = [i for i, n in ids.items() if n > 1]
    unexpected = set(ids) - set(emitted)
    table = Table(title=f"fake Home Assistant -> 1 subscriber, {elapsed:.1f} s")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("emitted (ledger)", str(len(emitted)))
    table.add_row("received", str(len(received)))
    table.add_row("rate emitted", f"{len(emitted) / elapsed:.1f}/s")
    table.add_row("missing", str(len(missing)))
    table.add_row("duplicated", str(len(duplicated)))
    table.add_row("unexpected", str(len(unexpected)))
    contexts = Counter(e["context"]["id"] for e in received)
    shared = sum(n for n in contexts.values() if n > 1)
    table.add_row("sharing a context", f"{shared} ({shared / max(1, len(received)):.0%})")
    kinds = Counter("removed" if e["data"]["new_state"] is None else
                    "added" if e["data"]["old_state"] is None else "changed" for e in received)
    table.add_row("changed / added / removed",
                  f"{kinds['changed']} / {kinds['added']} / {kinds['removed']}")
    domains = Counter(e["data"]["entity_id"].split(".")[0] for e in received)
    table.add_row("by domain", ", ".join(f"{d} {n}" for d, n in domains.most_common()))
    console.print(table)
    if received:
        console.print("one event as received:")
        console.print_json(orjson.dumps(received[len(received) // 2]).decode())
    console.print(f"ledger: {ledger.path}")
    ok = not missing and not duplicated and not unexpected and len(emitted) > 0
    console.print("[green]every emitted event was received exactly once[/]" if ok else
                  f"[red]mismatch: missing {missing[:5]} duplicated {duplicated[:5]} "
                  f"unexpected {sorted(unexpected)[:5]}[/]")
    return ok
