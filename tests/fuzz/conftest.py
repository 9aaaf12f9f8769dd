"""The whole pipeline, started once per fuzz module, for tests that are not async themselves.

schemathesis drives its test function synchronously (one hypothesis run per operation), so the
services it fuzzes cannot wait on the test's event loop: they run as real processes
(`tests.fixtures.services.ServiceProcess`), and the fake Home Assistant that legacy and
websocket-ingestion subscribe to runs in an event loop of its own, on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig
from tests.fixtures.influx import InfluxServer, free_port
from tests.fixtures.services import ServiceProcess

HA_TOKEN = "fuzz-token"
ADMIN_TOKEN = "fuzz-admin-token"
SERVICES = ("legacy", "ingestion", "enrichment", "storage", "admin")


class ThreadedFakeHA:
    """A `FakeHomeAssistant` serving from its own event loop on a daemon thread."""

    def __init__(self, ledger_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-ha", daemon=True)
        self._thread.start()
        self.server = FakeHomeAssistant(ServerConfig(port=0, token=HA_TOKEN),
                                        fleet=Fleet(FleetSpec(entities=50, seed=7)),
                                        ledger=Ledger(ledger_path))
        self.call(self.server.start())

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@dataclass
class Stack:
    influxd: InfluxServer
    ha: ThreadedFakeHA
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return self.services[name].url


def wait_healthy(svc: ServiceProcess, timeout: float = 30.0) -> None:
    """Until ``/health`` answers 200; fails with the service's log if it died or never does."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if svc.proc is not None and svc.proc.poll() is not None:
                raise AssertionError(f"{svc.name} exited with {svc.proc.returncode}:\n"
                                     f"{svc.log_tail()}")
            try:
                response = client.get(f"{svc.url}/health")
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    raise AssertionError(f"{svc.name} not healthy in {timeout} s ({last}):\n{svc.log_tail()}")


@pytest.fixture(scope="module")
def stack(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every pipeline service as a real process, healthy, wired as in production: legacy and
    ingestion on the fake Home Assistant, ingestion -> enrichment -> storage -> influxd, legacy
    -> influxd, admin-api watching them all (its token is ADMIN_TOKEN)."""
    root = tmp_path_factory.mktemp("fuzz-stack")
    influxd.start()
    prefix = f"fuzz_{uuid.uuid4().hex[:8]}"
    production, shadow, legacy_db = f"{prefix}_prod", f"{prefix}_shadow", f"{prefix}_legacy"
    ha = ThreadedFakeHA(root / "ledger.jsonl")
    st = Stack(influxd, ha, databases=[production, shadow, legacy_db])

    def make(name: str, env: dict[str, str]) -> ServiceProcess:
        data_dir = root / f"{name}-data"
        data_dir.mkdir()
        svc = ServiceProcess(name=name, env={"CUTOVER_DATA_DIR": str(data_dir),
                                             "CUTOVER_LOG_LEVEL": "WARNING", **env},
                             port=free_port(), log_path=root / f"{name}.log")
        st.services[name] = svc
        return svc

    ha_env = {"CUTOVER_HA_URL": ha.server.url, "CUTOVER_HA_TOKEN": HA_TOKEN,
              "CUTOVER_HA_BACKOFF_BASE_S": "0.1"}
    storage = make("storage", {"CUTOVER_INFLUX_URL": influxd.url,
                               "CUTOVER_INFLUX_DB": production,
                               "CUTOVER_INFLUX_SHADOW_DB": shadow})
    enrichment = make("enrichment", {"CUTOVER_STORAGE_URL": storage.url})
    make("ingestion", {**ha_env, "CUTOVER_ENRICHMENT_URL": enrichment.url})
    make("legacy", {**ha_env, "CUTOVER_INFLUX_URL": influxd.url, "CUTOVER_INFLUX_DB": legacy_db})
    watched = {n: s.url for n, s in st.services.items()}
    make("admin", {"CUTOVER_SERVICES": orjson.dumps(watched).decode(),
                   "CUTOVER_STORAGE_URL": storage.url, "CUTOVER_ADMIN_TOKEN": ADMIN_TOKEN,
                   "CUTOVER_MIGRATION_LEAD_MS": "200"})
    try:
        for svc in st.services.values():  # all at once: each takes ~1 s to import
            svc.start()
        for svc in st.services.values():
            wait_healthy(svc)
        yield st
    finally:
        for svc in st.services.values():
            svc.kill()
        ha.close()
        for db in st.databases:
            # cleanup of a test database; never mask the test
            with contextlib.suppress(Exception):
                influxd.query_raw(None, f'DROP DATABASE "{db}"')
