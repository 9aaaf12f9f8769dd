"""Proxies listen on loopback only unless the server is started with --allow-remote-listen:
driven through the real HTTP API (in-process server and ``python -m simulators.faultproxy``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from simulators.faultproxy import FaultProxy
from simulators.faultproxy.listen import is_loopback

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = "127.0.0.1:9"  # never connected to: these tests only open listeners


def refusal(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["status"] == 400
    return str(doc["error"])


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with FaultProxy(api_port=0) as fp:
        assert fp.api_url is not None
        async with httpx.AsyncClient(base_url=fp.api_url, timeout=5) as client:
            yield client


@pytest.mark.parametrize("listen", ["0.0.0.0:0", ":0", "[::]:0", "8.8.8.8:0"])
async def test_a_listen_address_off_loopback_is_refused(api: httpx.AsyncClient,
                                                        listen: str) -> None:
    r = await api.post("/proxies", json={"name": "db", "listen": listen, "upstream": UPSTREAM})
    message = refusal(r)
    assert f"listen {listen!r}" in message
    assert "loopback" in message and "--allow-remote-listen" in message
    assert (await api.get("/proxies")).json() == {}  # nothing was created


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "localhost:0", "127.0.0.2:0"])
async def test_loopback_listen_addresses_are_accepted(api: httpx.AsyncClient,
                                                      listen: str) -> None:
    r = await api.post("/proxies", json={"name": "db", "listen": listen, "upstream": UPSTREAM})
    assert r.status_code == 201, r.text
    assert is_loopback(r.json()["listen"].rsplit(":", 1)[0].strip("[]"))


async def test_moving_a_proxy_off_loopback_is_refused_and_leaves_it_as_it_was(
        api: httpx.AsyncClient) -> None:
    created = (await api.post("/proxies", json={"name": "db", "listen": "127.0.0.1:0",
                                                "upstream": UPSTREAM})).json()
    message = refusal(await api.post("/proxies/db", json={"listen": "0.0.0.0:0"}))
    assert "listen '0.0.0.0:0' is every interface" in message
    assert (await api.get("/proxies/db")).json()["listen"] == created["listen"]


async def test_populate_checks_every_proxy_before_changing_any(api: httpx.AsyncClient) -> None:
    await api.post("/proxies", json={"name": "a", "listen": "127.0.0.1:0", "upstream": UPSTREAM})
    before = (await api.get("/proxies")).json()
    r = await api.post("/populate", json=[
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:10"},  # would replace a
        {"name": "b", "listen": "0.0.0.0:0", "upstream": UPSTREAM},
    ])
    assert "listen '0.0.0.0:0'" in refusal(r)
    assert (await api.get("/proxies")).json() == before


async def test_a_proxy_without_listen_takes_loopback_even_when_the_host_is_every_interface(
        ) -> None:
    # No API here: the default is the same code path, and this test opens nothing on
    # every interface.
    async with FaultProxy(host="0.0.0.0") as fp:
        proxy = await fp.create("db", upstream=UPSTREAM)
        assert proxy.listen.startswith("127.0.0.1:")


async def test_allow_remote_listen_lets_a_proxy_listen_on_every_interface() -> None:
    async with FaultProxy(api_port=0, allow_remote_listen=True) as fp:
        assert fp.api_url is not None
        async with httpx.AsyncClient(base_url=fp.api_url, timeout=5) as api:
            r = await api.post("/proxies", json={"name": "db", "listen": "0.0.0.0:0",
                                                 "upstream": UPSTREAM})
    assert r.status_code == 201, r.text
    assert r.json()["listen"].startswith("0.0.0.0:")


# --------------------------------------------------------------------------- the CLI


async def _serve(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.faultproxy", "--host", "127.0.0.1", "--port", "0",
        *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode().strip()
    return proc, line.removeprefix("faultproxy API on ")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await proc.wait()


@pytest.mark.parametrize("allow", [False, True])
async def test_the_cli_refuses_remote_listen_unless_allowed(allow: bool) -> None:
    proc, url = await _serve(*(["--allow-remote-listen"] if allow else []))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as api:
            r = await api.post("/proxies", json={"name": "db", "listen": "0.0.0.0:0",
                                                 "upstream": UPSTREAM})
        if allow:
            assert r.status_code == 201, r.text
        else:
            assert "--allow-remote-listen" in refusal(r)
    finally:
        await _stop(proc)


async def test_a_config_with_a_remote_listen_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "db", "listen": "0.0.0.0:0", "upstream": UPSTREAM}]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.faultproxy", "--port", "0", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    text = err.decode()
    assert f"--config {config}: listen '0.0.0.0:0' is every interface" in text
    assert "Traceback" not in text
