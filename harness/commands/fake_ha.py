"""``cutover fake-ha``: a standalone fake Home Assistant with a live status line."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.live import Live
from rich.text import Text

from harness.console import make_console
from simulators.home_assistant.config import ServerConfig
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import LoadProfile
from simulators.home_assistant.server import FakeHomeAssistant


def default_run_dir(kind: str, base: Path = Path("reports")) -> Path:
    return base / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def fresh_token() -> str:
    """A token nobody else knows: a fixed default would let anything that can reach the port
    (the fake may listen beyond loopback with --host) subscribe as a client."""
    return secrets.token_urlsafe(24)


async def serve_fake_ha(*, host: str, port: int, token: str | None, entities: int,
                        profile: LoadProfile | None, seed: int, ledger_path: Path | None) -> None:
    console = make_console(stderr=True)
    generated = token is None
    token = fresh_token() if token is None else token
    ledger_path = ledger_path or default_run_dir("fake-ha") / "ledger.jsonl"
    fleet = Fleet(FleetSpec(entities=entities, seed=seed))
    ha = FakeHomeAssistant(ServerConfig(host=host, port=port, token=token), fleet=fleet,
                           ledger=Ledger(ledger_path), profile=profile, seed=seed)
    try:
        await ha.start()
    except OSError as exc:
        console.print(f"cutover fake-ha: cannot listen on {host}:{port}: {exc.strerror or exc}")
        sys.exit(2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A generated token is shown once, for the clients; one given with --token is not echoed.
    shown = f"token {token}" if generated else "token from --token"
    console.print(f"fake Home Assistant on {ha.url}  ({shown}, {entities} entities, "
                  f"seed {seed})\nledger: {ledger_path}\nCtrl-C to stop",
                  markup=False, highlight=False)
    started = time.monotonic()
    last_fired, last_t = 0, started
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):  # a second has passed: show the figures
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            s, now = ha.stats(), time.monotonic()
            rate = (s.fired - last_fired) / (now - last_t)
            last_fired, last_t = s.fired, now
            live.update(Text(
                f"rate {rate:8.1f}/s  clients {s.clients}  subscribers {s.subscribers}  "
                f"fired {s.fired}  sent {s.messages_sent}  frames {s.frames_sent}  "
                f"back-pressure drops {s.backpressure_disconnects}"))
    await ha.stop()
    s = ha.stats()
    elapsed = time.monotonic() - started
    console.print(
        f"stopped after {elapsed:.1f} s: fired {s.fired} events "
        f"({s.fired / elapsed if elapsed else 0:.1f}/s), sent {s.messages_sent} messages in "
        f"{s.frames_sent} frames, {s.backpressure_disconnects} back-pressure disconnects; "
        f"ledger {ledger_path}")
