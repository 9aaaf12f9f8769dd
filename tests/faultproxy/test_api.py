"""The HTTP API: Toxiproxy's endpoints, JSON shapes, status codes and error bodies, driven
with raw HTTP, with a real Toxiproxy client (toxiproxy-python) and through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.faultproxy import FaultProxy
from tests.faultproxy import Echo, Upstream, connect_pair, timed_read

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fp() -> AsyncIterator[FaultProxy]:
    async with FaultProxy(api_port=0, seed=5) as f:
        yield f


@pytest.fixture
async def api(fp: FaultProxy) -> AsyncIterator[httpx.AsyncClient]:
    assert fp.api_url is not None
    async with httpx.AsyncClient(base_url=fp.api_url, timeout=5) as client:
        yield client


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    async with Echo() as e:
        yield e


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error", "status"} and doc["status"] == status, doc
    return str(doc["error"])


# --------------------------------------------------------------------------- proxies


async def test_version_is_the_health_check(api: httpx.AsyncClient) -> None:
    r = await api.get("/version")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["version"].startswith("2.")


async def test_proxy_crud_round_trip(api: httpx.AsyncClient, echo: Echo) -> None:
    r = await api.post(
        "/proxies", json={"name": "redis", "listen": "127.0.0.1:0", "upstream": echo.address}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert {k: created[k] for k in ("name", "upstream", "enabled", "toxics")} == {
        "name": "redis",
        "upstream": echo.address,
        "enabled": True,
        "toxics": [],
    }
    host, port = created["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0

    assert (await api.get("/proxies/redis")).json()["listen"] == created["listen"]
    listing = (await api.get("/proxies")).json()
    assert list(listing) == ["redis"] and listing["redis"]["name"] == "redis"

    r = await api.post("/proxies/redis", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", int(port))
    r = await api.post("/proxies/redis", json={"enabled": True})
    assert r.json()["enabled"] is True and r.json()["listen"] == created["listen"]
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    writer.write(b"ok")
    assert await reader.readexactly(2) == b"ok"
    writer.close()

    r = await api.patch("/proxies/redis", json={"upstream": "127.0.0.1:1"})
    assert r.status_code == 200 and r.json()["upstream"] == "127.0.0.1:1"

    assert (await api.delete("/proxies/redis")).status_code == 204
    assert "proxy not found: redis" in error_of(await api.get("/proxies/redis"), 404)
    assert (await api.get("/proxies")).json() == {}


async def test_proxy_errors(api: httpx.AsyncClient, echo: Echo) -> None:
    body = {"name": "dup", "upstream": echo.address}
    assert (await api.post("/proxies", json=body)).status_code == 201
    assert "proxy already exists: dup" in error_of(await api.post("/proxies", json=body), 409)
    assert "missing required field: name" in error_of(
        await api.post("/proxies", json={"upstream": echo.address}), 400
    )
    assert "missing required field: upstream" in error_of(
        await api.post("/proxies", json={"name": "x"}), 400
    )
    assert "bad request body" in error_of(await api.post("/proxies", content=b"{nope"), 400)
    assert "upstream must be host:port" in error_of(
        await api.post("/proxies", json={"name": "x", "upstream": "nowhere"}), 400
    )
    assert "proxy not found: ghost" in error_of(await api.post("/proxies/ghost", json={}), 404)
    assert "proxy not found" in error_of(await api.delete("/proxies/ghost"), 404)
    assert "not found" in error_of(await api.get("/nothing/here"), 404)
    assert "method not allowed" in error_of(await api.delete("/proxies"), 405)


async def test_browsers_are_refused(api: httpx.AsyncClient) -> None:
    r = await api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert "User agent not allowed" in error_of(r, 403)


# --------------------------------------------------------------------------- toxics


async def test_toxic_crud_round_trip(fp: FaultProxy, api: httpx.AsyncClient) -> None:
    async with Upstream() as upstream:
        await api.post("/proxies", json={"name": "db", "upstream": upstream.address})
        pair = await connect_pair(fp.get("db"), upstream)

        r = await api.post(
            "/proxies/db/toxics", json={"type": "latency", "attributes": {"latency": 100}}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 100, "jitter": 0},
        }
        pair.server_w.write(b"x")
        assert await timed_read(pair.client_r, 1) >= 0.095  # live connection affected

        r = await api.post(
            "/proxies/db/toxics",
            json={
                "name": "cut",
                "type": "limit_data",
                "stream": "upstream",
                "toxicity": 0.0,
                "attributes": {"bytes": 10},
            },
        )
        assert r.json()["stream"] == "upstream"
        toxics = (await api.get("/proxies/db/toxics")).json()
        assert [t["name"] for t in toxics] == ["cut", "latency_downstream"]  # upstream first
        assert (await api.get("/proxies/db")).json()["toxics"] == toxics

        r = await api.post(
            "/proxies/db/toxics/latency_downstream", json={"attributes": {"jitter": 5}}
        )
        assert r.json()["attributes"] == {"latency": 100, "jitter": 5}  # merged
        assert r.json()["toxicity"] == 1.0
        r = await api.post("/proxies/db/toxics/cut", json={"toxicity": 0.5})
        assert r.json()["toxicity"] == 0.5 and r.json()["attributes"] == {"bytes": 10}
        assert (await api.get("/proxies/db/toxics/cut")).json() == r.json()

        assert (await api.delete("/proxies/db/toxics/latency_downstream")).status_code == 204
        pair.server_w.write(b"y")
        assert await timed_read(pair.client_r, 1) < 0.05
        assert [t["name"] for t in (await api.get("/proxies/db/toxics")).json()] == ["cut"]
        pair.close()


async def test_toxic_errors_name_what_is_allowed(api: httpx.AsyncClient, echo: Echo) -> None:
    await api.post("/proxies", json={"name": "db", "upstream": echo.address})
    msg = error_of(await api.post("/proxies/db/toxics", json={"type": "lag"}), 400)
    assert "invalid toxic type" in msg and "latency" in msg and "limit_data" in msg
    msg = error_of(
        await api.post(
            "/proxies/db/toxics", json={"type": "latency", "attributes": {"delay": 10}}
        ),
        400,
    )
    assert "delay" in msg and "allowed: latency (ms), jitter (ms)" in msg
    msg = error_of(
        await api.post(
            "/proxies/db/toxics", json={"type": "latency", "attributes": {"latency": "1s"}}
        ),
        400,
    )
    assert "latency" in msg and "whole number" in msg
    msg = error_of(
        await api.post("/proxies/db/toxics", json={"type": "latency", "stream": "sideways"}), 400
    )
    assert "stream was invalid, can be either upstream or downstream" in msg
    assert "toxicity" in error_of(
        await api.post("/proxies/db/toxics", json={"type": "timeout", "toxicity": 2}), 400
    )
    assert "missing required field: type" in error_of(
        await api.post("/proxies/db/toxics", json={}), 400
    )
    assert (await api.post("/proxies/db/toxics", json={"type": "timeout"})).status_code == 200
    assert "toxic already exists: timeout_downstream" in error_of(
        await api.post("/proxies/db/toxics", json={"type": "timeout"}), 409
    )
    assert "toxic not found: nope" in error_of(await api.get("/proxies/db/toxics/nope"), 404)
    assert "toxic not found" in error_of(await api.delete("/proxies/db/toxics/nope"), 404)
    assert "toxic not found" in error_of(
        await api.post("/proxies/db/toxics/nope", json={"toxicity": 1}), 404
    )
    assert "proxy not found" in error_of(await api.get("/proxies/ghost/toxics"), 404)
    assert "unknown attribute" in error_of(
        await api.post(
            "/proxies/db/toxics/timeout_downstream", json={"attributes": {"latency": 1}}
        ),
        400,
    )


# --------------------------------------------------------------------------- reset, populate


async def test_reset_enables_everything_and_removes_every_toxic(
    api: httpx.AsyncClient, echo: Echo
) -> None:
    for name in ("a", "b"):
        await api.post("/proxies", json={"name": name, "upstream": echo.address})
        await api.post(f"/proxies/{name}/toxics", json={"type": "latency"})
    await api.post("/proxies/a", json={"enabled": False})
    r = await api.post("/reset")
    assert r.status_code == 204 and r.content == b""
    for p in (await api.get("/proxies")).json().values():
        assert p["enabled"] is True and p["toxics"] == []


async def test_populate_creates_keeps_and_replaces(api: httpx.AsyncClient, echo: Echo) -> None:
    body = [
        {"name": "one", "listen": "127.0.0.1:0", "upstream": echo.address},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": echo.address, "enabled": False},
    ]
    r = await api.post("/populate", json=body)
    assert r.status_code == 201, r.text
    proxies = r.json()["proxies"]
    assert [(p["name"], p["enabled"]) for p in proxies] == [("one", True), ("two", False)]
    one = proxies[0]

    # Same listen (the real one now) and upstream: left as it is; another upstream: replaced.
    again = [
        {"name": "one", "listen": one["listen"], "upstream": echo.address},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
    ]
    r = await api.post("/populate", json=again)
    got = {p["name"]: p for p in r.json()["proxies"]}
    assert got["one"]["listen"] == one["listen"]
    assert got["two"]["upstream"] == "127.0.0.1:9" and got["two"]["enabled"] is True

    assert "missing required field: upstream at proxy 1" in error_of(
        await api.post("/populate", json=[{"name": "x"}]), 400
    )
    assert "bad request body" in error_of(await api.post("/populate", json={"name": "x"}), 400)


async def test_metrics_count_bytes_per_direction(
    fp: FaultProxy, api: httpx.AsyncClient, echo: Echo
) -> None:
    await api.post("/proxies", json={"name": "m", "upstream": echo.address})
    reader, writer = await asyncio.open_connection("127.0.0.1", fp.get("m").port)
    writer.write(b"12345")
    await reader.readexactly(5)
    writer.close()
    text = (await api.get("/metrics")).text
    assert 'toxiproxy_proxy_received_bytes_total{direction="upstream"' in text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith('toxiproxy_proxy_sent_bytes_total{direction="downstream"')
    )
    assert line.endswith(" 5") and 'proxy="m"' in line
    assert 'faultproxy_connections_total{proxy="m"} 1' in text


# --------------------------------------------------------------------------- a real client


def drive_with_toxiproxy_python(host: str, port: int, upstream: str) -> dict[str, Any]:
    """Everything toxiproxy-python 0.1.1 can do, against our server (it is a blocking client,
    so this runs in a thread while the event loop serves)."""
    from toxiproxy import Toxiproxy
    from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

    server = Toxiproxy()
    server.update_api_consumer(host, port)
    seen: dict[str, Any] = {"running": server.running(), "version": server.version()}
    proxy = server.create(upstream=upstream, name="py_redis", listen="127.0.0.1:0")
    seen["listen"] = proxy.listen
    try:
        server.create(upstream=upstream, name="py_redis")
    except ProxyExists:
        seen["exists"] = True
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow", attributes={"rate": 10})
    seen["toxics"] = {
        name: (t.type, t.stream, t.attributes) for name, t in proxy.toxics().items()
    }
    try:
        proxy.add_toxic(type="nonsense")
    except InvalidToxic:
        seen["invalid"] = True
    proxy.destroy_toxic("slow")
    seen["after_destroy"] = sorted(proxy.toxics())
    with proxy.down():
        seen["down"] = server.get_proxy("py_redis").enabled
    seen["up"] = server.get_proxy("py_redis").enabled
    seen["populated"] = [
        p.name
        for p in server.populate(
            [{"name": "py_other", "listen": "127.0.0.1:0", "upstream": upstream}]
        )
    ]
    seen["proxies"] = sorted(server.proxies())
    seen["reset"] = server.reset()
    seen["toxics_after_reset"] = proxy.toxics()
    try:
        server.get_proxy("py_redis").get_toxic("gone") or proxy.destroy_toxic("gone")
    except NotFound:
        seen["not_found"] = True
    server.destroy_all()
    seen["empty"] = server.proxies()
    return seen


async def test_toxiproxy_python_client_works(fp: FaultProxy, echo: Echo) -> None:
    pytest.importorskip("toxiproxy", reason="toxiproxy-python is a dev dependency")
    assert fp.api_port is not None
    seen = await asyncio.to_thread(
        drive_with_toxiproxy_python, "127.0.0.1", fp.api_port, echo.address
    )
    assert seen["running"] is True
    assert json.loads(seen["version"])["version"].startswith("2.")
    assert seen["listen"].startswith("127.0.0.1:") and not seen["listen"].endswith(":0")
    assert seen["exists"] and seen["invalid"] and seen["not_found"]
    assert seen["toxics"] == {
        "latency_downstream": ("latency", "downstream", {"latency": 100, "jitter": 0}),
        "slow": ("bandwidth", "upstream", {"rate": 10}),
    }
    assert seen["after_destroy"] == ["latency_downstream"]
    assert seen["down"] is False and seen["up"] is True
    assert seen["populated"] == ["py_other"]
    assert seen["proxies"] == ["py_other", "py_redis"]
    assert seen["reset"] is True and seen["toxics_after_reset"] == {}
    assert seen["empty"] == {}
    assert fp.proxies == {}


# --------------------------------------------------------------------------- the CLI


async def test_cli_serves_config_and_stops_on_sigterm(tmp_path: Path, echo: Echo) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [{"name": "cfg", "listen": "127.0.0.1:0", "upstream": echo.address, "enabled": True}]
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.faultproxy", "--host", "127.0.0.1", "--port", "0",
        "--config", str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode().strip()
        assert line.startswith("faultproxy API on http://127.0.0.1:"), line
        url = line.removeprefix("faultproxy API on ")
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            assert (await client.get("/version")).status_code == 200
            proxy = (await client.get("/proxies/cfg")).json()
        reader, writer = await asyncio.open_connection(*proxy["listen"].rsplit(":", 1))
        writer.write(b"via cli")
        assert await reader.readexactly(7) == b"via cli"
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
        assert time.perf_counter() - start < 5
        async with asyncio.timeout(2):  # its connections went with it
            assert await reader.read() == b""
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
