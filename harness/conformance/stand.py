"""The test stand of a conformance run: the fake Home Assistant, a real InfluxDB and the
pipeline file's services, wired as a scenario run wires them, and what the clauses do to them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from harness.checks.accounting import Accounting, account
from harness.checks.stored import StoredPoints, read_points
from harness.pipeline_file import PipelineSpec
from harness.runner.control import ControlPlane
from harness.runner.drain import QuietPolls
from harness.runner.home_assistant import FakeSide
from harness.runtime.base import Runtime, Wiring
from harness.runtime.select import harness_host, make_runtime
from harness.scenario.topology import PRODUCTION_DB, SHADOW_DB
from simulators.home_assistant.config import ServerConfig
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.load import parse_profile
from simulators.home_assistant.server import FakeHomeAssistant

__all__ = ["Stand"]

#: what a conformance run starts, downstream first, as a scenario's foundation does
START_ORDER = ("influxdb", "weather", "storage", "enrichment", "ingestion", "admin", "legacy")


#: A settle's poll: a run's monitor tick, so "quiet" spans the same seconds as a run's drain
#: (an ingestion recovering a restart's gap from history holds nothing in its queue meanwhile).
POLL_S = 1.0


@dataclass
class Stand:
    pipeline: PipelineSpec
    rt: Runtime
    ha: FakeHomeAssistant
    ledger: Ledger
    http: httpx.AsyncClient
    control: ControlPlane
    run_dir: Path

    @classmethod
    async def open(cls, pipeline: PipelineSpec, runtime: str, run_dir: Path) -> Stand:
        ledger = Ledger(run_dir / "ledger.jsonl")
        token, admin_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        host = await harness_host(runtime)
        ha = FakeHomeAssistant(ServerConfig(host=host.bind, port=0, token=token),
                               fleet=Fleet(FleetSpec(entities=200, seed=5)), ledger=ledger,
                               seed=5)
        await ha.start()
        rt = make_runtime(runtime, Wiring(run_dir, host.ha_url(ha.port), token, admin_token,
                                          secrets.token_hex(8), seed=5, lead_ms=500,
                                          pipeline=pipeline))
        http = httpx.AsyncClient(timeout=10)
        return cls(pipeline, rt, ha, ledger, http, ControlPlane(rt.url("admin"), admin_token,
                                                                http), run_dir)

    async def close(self) -> None:
        self.ha.set_profile(None)
        await self.rt.close()
        await self.ha.stop()
        await self.http.aclose()

    @property
    def roles(self) -> list[str]:
        return [s for s in START_ORDER if self.rt.has(s) and s not in ("influxdb", "weather")]

    @property
    def receivers(self) -> list[str]:
        """The roles that take ``POST /api/v1/events``: the new path after ingestion."""
        return list(self.pipeline.new_path[1:])

    async def up(self) -> None:
        present = [s for s in START_ORDER if self.rt.has(s)]
        for service in present:
            await self.rt.start(service)  # type: ignore[arg-type]
        for service in present:  # admin-api is healthy only once all it watches are
            await self.rt.wait_healthy(service, 60)  # type: ignore[arg-type]
        clients = [self.rt.url("legacy"), self.rt.url("ingestion")]
        await FakeSide(self.ha).wait_subscribers(clients, timeout=30)

    # -- talking to a role -------------------------------------------------------------------

    async def get(self, role: str, path: str) -> httpx.Response:
        return await self.http.get(f"{self.rt.url(role)}{path}")  # type: ignore[arg-type]

    async def post(self, role: str, path: str, body: bytes) -> httpx.Response:
        return await self.http.post(f"{self.rt.url(role)}{path}", content=body,  # type: ignore[arg-type]
                                    headers={"Content-Type": "application/json"})

    async def health(self, role: str) -> int | None:
        try:
            return (await self.get(role, "/health")).status_code
        except httpx.TransportError:
            return None

    async def until_health(self, role: str, status: int, timeout: float) -> float | None:
        """Seconds until ``role``'s /health answered ``status``, None if it never did."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if await self.health(role) == status:
                return time.monotonic() - start
            await asyncio.sleep(0.25)
        return None

    # -- events ---------------------------------------------------------------------------------

    @staticmethod
    def probe_event(n: int, **changes: Any) -> dict[str, Any]:
        """A valid event of CONTRACT.md section 4, of an entity no fleet has."""
        now = time.time_ns()
        return {"context_id": f"01CONFORMANCE{n:013d}", "event_type": "state_changed",
                "entity_id": f"sensor.conformance_probe_{n}", "domain": "sensor",
                "time_fired_ns": now, "state": str(n), "old_state": None, "attributes": {},
                "received_at_ns": now, "target": "production", **changes}

    @staticmethod
    def batch(*events: dict[str, Any]) -> bytes:
        return orjson.dumps({"events": list(events)})

    async def points_of(self, entity_id: str) -> int:
        """How many production points ``entity_id`` has."""
        # the probe's own entity id (probe_event), never a user's string
        query = f"SELECT count(state) FROM home_assistant_events WHERE entity_id = '{entity_id}'"  # noqa: S608
        r = await self.http.get(f"{self.rt.url('influxdb')}/query",
                                params={"db": PRODUCTION_DB, "q": query})
        series = r.json()["results"][0].get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    async def until_points(self, entity_id: str, n: int, timeout: float) -> int:
        start, found = time.monotonic(), 0
        while time.monotonic() - start < timeout:
            found = await self.points_of(entity_id)
            if found >= n:
                break
            await asyncio.sleep(0.25)
        return found

    async def fire(self, rate: str, seconds: float) -> None:
        self.ha.set_profile(parse_profile(rate))
        await asyncio.sleep(seconds)
        self.ha.set_profile(None)

    async def stored(self) -> tuple[StoredPoints, StoredPoints]:
        url = self.rt.url("influxdb")
        return (await read_points(self.http, url, PRODUCTION_DB),
                await read_points(self.http, url, SHADOW_DB))

    async def queue_depth(self) -> int:
        """What the roles hold, by their stats (CONTRACT.md); a role that does not answer
        counts as holding something (it may)."""
        depth = 0
        for role in self.roles:
            try:
                r = await self.get(role, "/api/v1/stats")
                value = orjson.loads(r.content).get("queue_depth") if r.status_code == 200 else None
            except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError):
                value = None
            depth += value if isinstance(value, int) and value >= 0 else 1
        return depth

    async def settle(self, timeout: float = 45.0) -> Accounting:
        """Wait until production holds every event fired, or the pipeline is quiet (the drain
        rule, harness/runner/drain.py: what is missing then is lost), or ``timeout``; then
        account."""
        start = time.monotonic()
        keys = self.ledger.keys()
        quiet = QuietPolls()
        while True:
            production, shadow = await self.stored()
            held = {production.key(i) for i in range(len(production))}
            if keys <= held or time.monotonic() - start > timeout:
                break
            # A pipeline that lost events holds nothing more: no need to wait out the timeout.
            if quiet.observe(await self.queue_depth(), len(production)):
                break
            await asyncio.sleep(POLL_S)
        table = await self.control.table()
        return account(self.ledger, production, shadow, phase_of=lambda _t: "conformance",
                       owner_of=lambda e, t: table.owner(e, t), table=table)
