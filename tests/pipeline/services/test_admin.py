"""admin-api: progress-aware health, recent events, and the migration control plane.

Real parts: admin-api runs as a subprocess (`python -m pipeline.admin`); the services it watches
and the storage it proxies are small FastAPI apps under uvicorn in the test's loop, answering
what the test sets; a real RoutingFollower follows it across a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from pipeline.admin.control import ControlPlane
from pipeline.admin.progress import Counters, ProgressTracker
from pipeline.admin.state import MigrationState, StateStore
from pipeline.common.routing import RoutingFollower, RoutingTable
from tests.fixtures.services import LaunchService, ServiceProcess
from tests.pipeline_kit._servers import LocalServer

TOKEN = "adm-7f3c9e1d-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MS = 1_000_000
SEC = 1_000_000_000
LEAD_MS = 500
NAMES = ("ingestion", "enrichment", "storage", "legacy")


# -- the services admin-api watches ------------------------------------------------------------


class FakeService:
    """/health and /api/v1/stats answering whatever the test sets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.health_status = 200
        self.health_reason: str | None = None
        self.received = 0
        self.processed = 0
        self.skipped = 0
        self.answering = asyncio.Event()  # clear it and the service hangs (SIGSTOP-like)
        self.answering.set()
        self.app = FastAPI()
        self.app.get("/health")(self._health)
        self.app.get("/api/v1/stats")(self._stats)

    async def _health(self) -> JSONResponse:
        await self.answering.wait()
        ok = self.health_status == 200
        return JSONResponse({"service": self.name, "healthy": ok, "reason": self.health_reason},
                            status_code=self.health_status)

    async def _stats(self) -> dict[str, Any]:
        await self.answering.wait()
        return {"service": self.name, "received": self.received, "processed": self.processed,
                "queue_depth": self.received - self.processed - self.skipped,
                "last_received_ns": None, "last_processed_ns": None,
                "skipped": {"not_owner": self.skipped}}


@pytest.fixture
async def watched() -> AsyncIterator[dict[str, tuple[FakeService, LocalServer]]]:
    services = {name: FakeService(name) for name in NAMES}
    servers = {name: LocalServer(svc.app) for name, svc in services.items()}
    for server in servers.values():
        await server.start()
    yield {name: (services[name], servers[name]) for name in NAMES}
    for server in servers.values():
        await server.stop()  # idempotent: a test may have stopped one already


def services_env(urls: dict[str, str]) -> str:
    return orjson.dumps(urls).decode()


async def start_admin(launch: LaunchService, tmp_path: Path, **env: str) -> ServiceProcess:
    base = {
        "CUTOVER_ADMIN_TOKEN": TOKEN,
        "CUTOVER_STATE_FILE": str(tmp_path / "admin-state" / "migration.json"),
        "CUTOVER_MIGRATION_LEAD_MS": str(LEAD_MS),
        "CUTOVER_HEALTH_POLL_S": "0.1",
        "CUTOVER_HEALTH_TIMEOUT_S": "0.5",
        "CUTOVER_SERVICES": "{}",
    }
    admin = launch("admin", {**base, **env})
    await admin.ready()
    return admin


async def until(
    probe: Callable[[], Awaitable[httpx.Response]],
    accept: Callable[[httpx.Response], bool],
    timeout: float = 5.0,
) -> httpx.Response:
    """Poll `probe` until `accept` holds; fail with the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await probe()
        if accept(response):
            return response
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout} s; last answer "
                                 f"{response.status_code}: {response.text[:2000]}")
        await asyncio.sleep(0.05)


def unhealthy_names(response: httpx.Response) -> set[str]:
    return set(response.json()["details"]["unhealthy"])


# -- progress-aware health ---------------------------------------------------------------------


async def test_health_is_200_when_all_are_healthy_and_503_naming_the_one_that_is_not(
    launch_service: LaunchService, tmp_path: Path,
    watched: dict[str, tuple[FakeService, LocalServer]],
) -> None:
    urls = {name: server.url for name, (_, server) in watched.items()}
    for i, (svc, _) in enumerate(watched.values()):
        svc.received, svc.processed = 100 + i, 100 + i
    admin = await start_admin(launch_service, tmp_path, CUTOVER_SERVICES=services_env(urls))
    async with httpx.AsyncClient(base_url=admin.url, timeout=2) as client:
        ok = await until(lambda: client.get("/health"), lambda r: r.status_code == 200)
        services = ok.json()["details"]["services"]
        assert set(services) == set(NAMES)
        for i, name in enumerate(NAMES):
            assert services[name]["status"] == "healthy" and services[name]["reason"] is None
            assert services[name]["counters"]["received"] == 100 + i
            assert 0 <= services[name]["poll_age_s"] < 1.0

        storage, _ = watched["storage"]
        storage.health_status, storage.health_reason = 503, "influxdb unreachable"
        bad = await until(lambda: client.get("/health"), lambda r: r.status_code == 503)
        assert unhealthy_names(bad) == {"storage"}
        assert "storage" in bad.json()["reason"] and "influxdb unreachable" in bad.json()["reason"]
        assert bad.json()["details"]["services"]["storage"]["http_status"] == 503

        storage.health_status, storage.health_reason = 200, None
        await until(lambda: client.get("/health"), lambda r: r.status_code == 200)
        metrics = (await client.get("/metrics")).text
        assert 'cutover_service_healthy{service="storage"} 1.0' in metrics


async def test_a_service_saying_200_while_received_grows_and_processed_is_flat_is_unhealthy(
    launch_service: LaunchService, tmp_path: Path,
    watched: dict[str, tuple[FakeService, LocalServer]],
) -> None:
    urls = {name: server.url for name, (_, server) in watched.items()}
    admin = await start_admin(launch_service, tmp_path, CUTOVER_SERVICES=services_env(urls),
                              CUTOVER_PROGRESS_WINDOW_S="1")
    ingestion, enrichment, legacy = (watched[n][0] for n in ("ingestion", "enrichment", "legacy"))
    stuck = True

    async def traffic() -> None:
        # ingestion keeps up; legacy skips everything by design (it owns nothing at 100 %);
        # enrichment keeps receiving and, while `stuck`, processes nothing: its /health says 200.
        while True:
            for svc in (ingestion, enrichment, legacy):
                svc.received += 5
            ingestion.processed += 5
            legacy.skipped += 5
            if not stuck:
                enrichment.processed = enrichment.received
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=admin.url, timeout=2) as client:
        await until(lambda: client.get("/health"), lambda r: r.status_code == 200)
        pump = asyncio.create_task(traffic())
        started = time.monotonic()
        try:
            bad = await until(lambda: client.get("/health"), lambda r: r.status_code == 503)
            assert time.monotonic() - started >= 1.0  # not before the window
            assert unhealthy_names(bad) == {"enrichment"}
            entry = bad.json()["details"]["services"]["enrichment"]
            assert entry["status"] == "no_progress" and entry["http_status"] == 200
            assert "no progress" in entry["reason"] and "enrichment" in bad.json()["reason"]
            assert entry["counters"]["processed"] == 0

            stuck = False
            await until(lambda: client.get("/health"), lambda r: r.status_code == 200)
        finally:
            pump.cancel()


async def test_a_service_that_does_not_answer_is_unreachable(
    launch_service: LaunchService, tmp_path: Path,
    watched: dict[str, tuple[FakeService, LocalServer]],
) -> None:
    urls = {name: server.url for name, (_, server) in watched.items()}
    nobody = LocalServer(FastAPI())  # bound, never listening: connections are refused
    urls["weather"] = nobody.url
    admin = await start_admin(launch_service, tmp_path, CUTOVER_SERVICES=services_env(urls))
    async with httpx.AsyncClient(base_url=admin.url, timeout=2) as client:
        bad = await until(lambda: client.get("/health"),
                          lambda r: r.json()["details"]["services"]["weather"]["poll_age_s"]
                          is not None)
        assert bad.status_code == 503
        assert unhealthy_names(bad) == {"weather"}
        assert bad.json()["details"]["services"]["weather"]["status"] == "unreachable"
        assert "unreachable" in bad.json()["reason"]

        await watched["legacy"][1].stop()  # one that was fine goes away
        # A poll racing the shutdown may see /health answered and /api/v1/stats cut off
        # (bad_stats); once it is gone, every poll finds nobody there.
        bad = await until(lambda: client.get("/health"),
                          lambda r: unhealthy_names(r) == {"weather", "legacy"}
                          and r.json()["details"]["services"]["legacy"]["status"] == "unreachable")
        assert bad.status_code == 503
        assert bad.json()["details"]["services"]["legacy"]["reason"].startswith("unreachable")
        metrics = (await client.get("/metrics")).text
        assert 'cutover_service_healthy{service="legacy"} 0.0' in metrics

        hung = watched["ingestion"][0]
        hung.answering.clear()  # accepts connections, never answers
        try:
            bad = await until(lambda: client.get("/health"),
                              lambda r: "ingestion" in unhealthy_names(r))
            reason = bad.json()["details"]["services"]["ingestion"]["reason"]
            assert reason.startswith("unreachable: no answer within 0.5 s"), reason
        finally:
            hung.answering.set()
    await nobody.stop()


# -- the migration control plane ---------------------------------------------------------------


def bad_request_count(metrics: str, reason: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'cutover_bad_requests_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_reads_need_no_token_and_changes_need_the_right_one_and_good_input(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    admin = await start_admin(launch_service, tmp_path)
    async with httpx.AsyncClient(base_url=f"{admin.url}/api/v1", timeout=2) as client:
        before = time.time_ns()
        view = (await client.get("/migration")).json()
        assert view["table"]["entries"] == [] and view["history"] == []
        assert view["table"]["valid_until_ns"] >= before + LEAD_MS * MS
        assert view["current"] == {"new_percent": 0, "shadow": False, "effective_from_ns": None}

        change = {"new_percent": 10, "reason": "step 1"}
        missing = await client.put("/migration", json=change)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer")
        basic = await client.put("/migration", json=change, headers={"Authorization": "Basic x"})
        assert basic.status_code == 401
        wrong = await client.put("/migration", json=change,
                                 headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 403 and "not valid" in wrong.json()["detail"]
        assert (await client.post("/migration/rollback", json={"reason": "x"})).status_code == 401

        async def put(body: bytes) -> httpx.Response:
            return await client.put("/migration", content=body,
                                    headers={**AUTH, "content-type": "application/json"})

        r = await put(b'{"new_percent": 150, "reason": "too far"}')
        assert r.status_code == 422 and "new_percent" in r.json()["detail"]
        assert "less than or equal to 100" in r.json()["detail"]
        r = await put(b'{"new_percent": 10}')
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = await put(b'{"new_percent": 10, "reason": "   "}')
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = await put(b'{"new_percent": "10", "reason": "a string"}')
        assert r.status_code == 422 and "new_percent" in r.json()["detail"]
        r = await put(b'{"reason": "nothing"}')
        assert r.status_code == 422 and "nothing to change" in r.json()["detail"]
        r = await put(b'{"new_percent": 10, "reason": ')
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        r = await put(b'{"new_percent": 10, "reason": "caf\xe9"}')
        assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
        r = await put(b"")
        assert r.status_code == 400 and "empty" in r.json()["detail"]
        r = await client.get("/events/recent", params={"limit": 0})
        assert r.status_code == 422 and "limit" in r.json()["detail"]

        # Nothing refused changed anything, and every refusal was counted by kind.
        assert (await client.get("/migration")).json()["table"]["entries"] == []
        metrics = (await httpx.AsyncClient().get(f"{admin.url}/metrics")).text
        assert bad_request_count(metrics, "unauthorized") == 3
        assert bad_request_count(metrics, "forbidden") == 1
        assert bad_request_count(metrics, "validation") == 6  # 5 bodies + the limit
        assert bad_request_count(metrics, "not_json") == 1
        assert bad_request_count(metrics, "not_utf8") == 1

        ok = await client.put("/migration", json=change, headers=AUTH)
        assert ok.status_code == 200
    await admin.stop()
    assert TOKEN not in admin.log_tail(lines=10_000)


async def test_a_change_is_announced_lead_ahead_recorded_and_rolled_back(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    admin = await start_admin(launch_service, tmp_path)
    async with httpx.AsyncClient(base_url=f"{admin.url}/api/v1", timeout=2) as client:
        t0 = time.time_ns()
        r = await client.put("/migration", json={"new_percent": 10, "reason": "step 1"},
                             headers=AUTH)
        t1 = time.time_ns()
        assert r.status_code == 200, r.text
        state = r.json()
        (entry,) = state["table"]["entries"]
        assert entry["new_percent"] == 10 and entry["shadow"] is False
        assert entry["effective_from_ns"] >= t0 + LEAD_MS * MS
        assert state["pending"][0]["effective_from_ns"] == entry["effective_from_ns"]
        (record,) = state["history"]
        assert record["reason"] == "step 1" and record["kind"] == "change"
        assert record["actor"] == "api" and t0 <= record["at_ns"] <= t1
        assert record["at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(t0 / SEC)))
        assert record["effective_from_ns"] == entry["effective_from_ns"]

        # An explicit boundary before now + lead is refused, naming the earliest allowed.
        too_early = time.time_ns() + LEAD_MS * MS // 2
        r = await client.put("/migration", headers=AUTH, json={
            "shadow": True, "effective_from_ns": too_early, "reason": "shadow on"})
        assert r.status_code == 409, r.text
        earliest = r.json()["earliest_allowed_ns"]
        assert earliest >= too_early + LEAD_MS * MS // 2
        assert str(earliest) in r.json()["detail"] and "earliest" in r.json()["detail"]

        # A later one is taken as given; the percent not given keeps its value.
        at = time.time_ns() + LEAD_MS * MS + 300 * MS
        r = await client.put("/migration", headers=AUTH, json={
            "shadow": True, "effective_from_ns": at, "reason": "shadow on"})
        assert r.status_code == 200, r.text
        assert r.json()["table"]["entries"][-1] == {
            "effective_from_ns": at, "new_percent": 10, "shadow": True}

        await until(lambda: client.get("/migration"),
                    lambda r: r.json()["current"]["shadow"] is True)
        assert (await client.get("/migration")).json()["current"]["new_percent"] == 10

        t2 = time.time_ns()
        r = await client.post("/migration/rollback", json={"reason": "p95 over 100 ms"},
                              headers=AUTH)
        assert r.status_code == 200, r.text
        last = r.json()["table"]["entries"][-1]
        assert last["new_percent"] == 0 and last["shadow"] is True  # shadow kept
        assert last["effective_from_ns"] >= t2 + LEAD_MS * MS
        assert r.json()["history"][-1]["kind"] == "rollback"
        assert r.json()["history"][-1]["reason"] == "p95 over 100 ms"
        done = await until(lambda: client.get("/migration"),
                           lambda r: r.json()["current"]["new_percent"] == 0)
        assert done.json()["pending"] == []
        assert [h["reason"] for h in done.json()["history"]] == [
            "step 1", "shadow on", "p95 over 100 ms"]

        metrics = (await httpx.AsyncClient().get(f"{admin.url}/metrics")).text
        assert 'cutover_migration_changes_total{kind="change"} 2.0' in metrics
        assert 'cutover_migration_changes_total{kind="rollback"} 1.0' in metrics
        assert "cutover_migration_new_percent 0.0" in metrics
        assert "cutover_migration_shadow 1.0" in metrics


@pytest.mark.slow  # restarts admin-api: ~2-4 s
async def test_a_follower_sees_every_change_before_it_takes_effect_across_a_restart(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    admin = await start_admin(launch_service, tmp_path)
    follower = RoutingFollower(admin.url, interval=0.05)
    seen: list[tuple[int, RoutingTable]] = []  # (wall clock when first seen, table)

    async def sample() -> None:
        while True:
            table = follower.table
            if table is not None and (not seen or seen[-1][1] != table):
                seen.append((time.time_ns(), table))
            await asyncio.sleep(0.005)

    def first_seen(effective_from_ns: int) -> int:
        return min(t for t, table in seen
                   if any(e.effective_from_ns == effective_from_ns for e in table.entries))

    follower.start()
    sampler = asyncio.create_task(sample())
    horizons: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=f"{admin.url}/api/v1", timeout=2) as client:
            steps: list[tuple[str, dict[str, Any]]] = [
                ("/migration", {"new_percent": 10, "reason": "10 %"}),
                ("/migration", {"new_percent": 25, "reason": "25 %"}),
                ("restart", {}),
                ("/migration", {"new_percent": 50, "reason": "50 %"}),
                ("/migration/rollback", {"reason": "error rate"}),
            ]
            for path, body in steps:
                if path == "restart":
                    horizons.append((await client.get("/migration")).json()["table"][
                        "valid_until_ns"])
                    assert await admin.stop() == 0
                    admin.start()
                    await admin.ready()
                    horizons.append((await client.get("/migration")).json()["table"][
                        "valid_until_ns"])
                    continue
                send = client.post if "rollback" in path else client.put
                r = await send(path, json=body, headers=AUTH)
                assert r.status_code == 200, r.text
                boundary = r.json()["table"]["entries"][-1]["effective_from_ns"]
                async with asyncio.timeout(LEAD_MS / 1000 + 2):
                    while not any(e.effective_from_ns == boundary
                                  for _, table in seen for e in table.entries):
                        await asyncio.sleep(0.005)
                assert first_seen(boundary) < boundary  # known before it takes effect
            final = RoutingTable.model_validate(
                (await client.get("/migration")).json()["table"])
            history = (await client.get("/migration")).json()["history"]
    finally:
        sampler.cancel()
        await follower.stop()

    assert [e.new_percent for e in final.entries] == [10, 25, 50, 0]
    assert [h["reason"] for h in history] == ["10 %", "25 %", "50 %", "error rate"]
    assert horizons[1] >= horizons[0]  # valid_until never moved backwards across the restart
    assert follower.conflicts == 0
    # Every table the follower ever held agrees with admin's for all time up to its horizon.
    for _, table in seen:
        assert table.valid_until_ns is not None
        assert table.agrees_with(final, table.valid_until_ns)
    assert all(first_seen(e.effective_from_ns) < e.effective_from_ns for e in final.entries)


@pytest.mark.slow  # restarts admin-api: ~2-4 s
async def test_a_restart_keeps_table_and_history_and_never_moves_the_horizon_back(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    admin = await start_admin(launch_service, tmp_path)
    async with httpx.AsyncClient(base_url=f"{admin.url}/api/v1", timeout=2) as client:
        await client.put("/migration", json={"new_percent": 10, "shadow": True,
                                             "reason": "step"}, headers=AUTH)
        await client.post("/migration/rollback", json={"reason": "back"}, headers=AUTH)
        before = (await client.get("/migration")).json()
        assert await admin.stop() == 0
        admin.start()
        await admin.ready()
        after = (await client.get("/migration")).json()
        assert after["table"]["entries"] == before["table"]["entries"]
        assert after["history"] == before["history"]
        assert after["table"]["valid_until_ns"] >= before["table"]["valid_until_ns"]
        # The next change lands after everything the previous process had promised.
        r = await client.put("/migration", json={"new_percent": 25, "reason": "again"},
                             headers=AUTH)
        assert r.json()["table"]["entries"][-1]["effective_from_ns"] > before["table"][
            "valid_until_ns"]


async def test_an_unreadable_state_file_stops_admin_rather_than_forgetting_history(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    state = tmp_path / "broken.json"
    state.write_text('{"version": 1, "table": {"entries": [')
    admin = launch_service("admin", {"CUTOVER_STATE_FILE": str(state),
                                     "CUTOVER_ADMIN_TOKEN": TOKEN})
    assert admin.proc is not None
    code = await asyncio.to_thread(admin.proc.wait, 20)
    assert code != 0
    assert "not a valid migration state" in admin.log_tail()


# -- recent events -------------------------------------------------------------------------------


async def test_recent_events_are_proxied_from_storage(
    launch_service: LaunchService, tmp_path: Path,
) -> None:
    events = [{"context_id": f"01HX{i:022d}", "entity_id": f"light.l{i}", "state": "on"}
              for i in range(10, 0, -1)]  # newest first, as storage answers
    asked: list[int] = []
    storage = FastAPI()

    @storage.get("/api/v1/events")
    async def newest(limit: int) -> dict[str, Any]:
        asked.append(limit)
        return {"events": events[:limit]}

    server = LocalServer(storage)
    await server.start()
    admin = await start_admin(launch_service, tmp_path, CUTOVER_STORAGE_URL=server.url)
    async with httpx.AsyncClient(base_url=f"{admin.url}/api/v1", timeout=5) as client:
        r = await client.get("/events/recent", params={"limit": 3})
        assert r.status_code == 200, r.text
        assert r.json()["events"] == events[:3] and asked == [3]
        r = await client.get("/events/recent", params={"limit": "many"})
        assert r.status_code == 422 and "limit" in r.json()["detail"]
        await server.stop()
        r = await client.get("/events/recent")
        assert r.status_code == 502 and "storage" in r.json()["detail"]


# -- the two promises, in process, with a controlled clock and a slow disk --------------------


class SlowStore(StateStore):
    """A real state file whose writes wait until the test lets them finish."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.gate.set()

    async def save(self, state: MigrationState) -> None:
        await self.gate.wait()
        await super().save(state)


async def test_while_a_change_is_being_written_readers_are_not_settled_past_its_boundary(
    tmp_path: Path,
) -> None:
    clock = [1_000 * SEC]
    store = SlowStore(tmp_path / "state.json")
    control = ControlPlane(store, lead_ns=2 * SEC, lease_ns=60 * SEC, clock=lambda: clock[0])
    await control.open()
    store.gate.clear()
    pending = asyncio.create_task(control.change(kind="change", reason="r", actor="t",
                                                 new_percent=10))
    await asyncio.sleep(0.01)
    boundary = clock[0] + 2 * SEC + 1
    clock[0] += 5 * SEC  # time passes while the disk is slow
    during = control.served_table()
    assert during.entries == () and during.valid_until_ns is not None
    assert during.valid_until_ns < boundary  # an old table, but not settled past the change
    store.gate.set()
    record = await pending
    assert record.effective_from_ns == boundary
    after = control.served_table()
    assert after.entries[-1].effective_from_ns == boundary
    assert after.valid_until_ns is not None and after.valid_until_ns >= during.valid_until_ns


async def test_a_reopened_control_plane_starts_past_every_horizon_served_despite_the_clock(
    tmp_path: Path,
) -> None:
    clock = [1_000 * SEC]
    path = tmp_path / "state.json"
    first = ControlPlane(StateStore(path), lead_ns=2 * SEC, lease_ns=5 * SEC,
                         clock=lambda: clock[0])
    await first.open()
    served = []
    for _ in range(40):  # 20 s of polls; the lease is renewed as the clock moves
        clock[0] += SEC // 2
        await first.renew_lease()
        table = first.served_table()
        assert table.valid_until_ns is not None and table.valid_until_ns <= first.lease_ns
        served.append(table.valid_until_ns)
    assert served == sorted(served) and served[-1] == clock[0] + 2 * SEC
    clock[0] -= 30 * SEC  # the restarted process's clock is behind
    second = ControlPlane(StateStore(path), lead_ns=2 * SEC, lease_ns=5 * SEC,
                          clock=lambda: clock[0])
    await second.open()
    assert second.served_table().valid_until_ns >= max(served)  # type: ignore[operator]
    record = await second.change(kind="change", reason="r", actor="t", new_percent=50)
    assert record.effective_from_ns > max(served)


def test_progress_tracker_flags_only_growth_without_progress_past_the_window() -> None:
    tracker = ProgressTracker(window_s=10)
    assert tracker.observe(Counters(100, 100, 0), at=0) is None
    assert tracker.observe(Counters(100, 100, 0), at=60) is None  # idle is fine
    assert tracker.observe(Counters(150, 100, 0), at=61) is None  # growth seen: clock starts
    assert tracker.observe(Counters(190, 100, 0), at=70.9) is None
    reason = tracker.observe(Counters(200, 100, 0), at=71)
    assert reason is not None and "100 -> 200" in reason and "processed stayed at 100" in reason
    assert tracker.observe(Counters(210, 101, 0), at=72) is None  # progress clears it
    assert tracker.observe(Counters(300, 101, 50), at=90) is None  # skipping is progress
    assert tracker.observe(Counters(5, 0, 0), at=91) is None  # counters reset: a restart
    assert tracker.observe(Counters(9, 0, 0), at=92) is None
    assert tracker.observe(Counters(9, 0, 0), at=102) is not None
