"""The fake OpenWeatherMap API over real HTTP: its answers, its reproducibility and its faults."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from simulators.weather.config import WeatherConfig
from simulators.weather.model import WeatherModel
from simulators.weather.owm import RATE_LIMITED_BODY, UNAUTHORIZED_BODY
from simulators.weather.server import WeatherServer
from tests.fixtures.influx import free_port

KEY = "sim-key"
HOME = {"lat": "52.3731", "lon": "4.8922"}
#: 2026-06-25T21:20:05Z: a fixed clock makes every answer reproducible.
T0 = 1_782_422_405.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def weather() -> AsyncIterator[WeatherServer]:
    async with WeatherServer(WeatherConfig(port=0, api_key=KEY, seed=1)) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


async def current(
    client: httpx.AsyncClient, server: WeatherServer, **params: str | None
) -> httpx.Response:
    """A current-weather request for home; a parameter given as None is left out."""
    query = {**HOME, "appid": KEY, "units": "metric", **params}
    return await client.get(
        f"{server.url}/data/2.5/weather", params={k: v for k, v in query.items() if v is not None}
    )


async def test_answer_has_the_openweathermap_shape(
    weather: WeatherServer, client: httpx.AsyncClient
) -> None:
    r = await current(client, weather)
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) >= {
        "coord",
        "weather",
        "main",
        "wind",
        "clouds",
        "dt",
        "sys",
        "timezone",
        "id",
        "name",
        "cod",
    }
    assert doc["cod"] == 200
    assert doc["coord"] == {"lon": 4.8922, "lat": 52.3731}
    [cond] = doc["weather"]
    assert set(cond) == {"id", "main", "description", "icon"}
    assert isinstance(cond["id"], int) and 200 <= cond["id"] <= 804
    assert cond["icon"][-1] in "dn"
    main = doc["main"]
    assert set(main) >= {"temp", "feels_like", "temp_min", "temp_max", "pressure", "humidity"}
    assert main["temp_min"] <= main["temp"] <= main["temp_max"]
    assert (
        -40 < main["temp"] < 45 and 900 < main["pressure"] < 1100 and 0 <= main["humidity"] <= 100
    )
    assert all(isinstance(main[k], int) for k in ("pressure", "humidity"))
    assert doc["wind"]["speed"] >= 0 and 0 <= doc["wind"]["deg"] < 360
    assert 0 <= doc["clouds"]["all"] <= 100
    assert abs(doc["dt"] - time.time()) < 5
    assert doc["sys"]["sunrise"] < doc["sys"]["sunset"]


async def test_units_convert_consistently(
    weather: WeatherServer, client: httpx.AsyncClient
) -> None:
    frozen = WeatherServer(WeatherConfig(port=0, api_key=KEY, seed=3), clock=lambda: T0)
    async with frozen:
        metric = (await current(client, frozen, units="metric")).json()
        imperial = (await current(client, frozen, units="imperial")).json()
        standard = (await current(client, frozen, units=None)).json()  # OWM's default: Kelvin
    assert standard["main"]["temp"] == pytest.approx(metric["main"]["temp"] + 273.15, abs=0.011)
    assert imperial["main"]["temp"] == pytest.approx(metric["main"]["temp"] * 9 / 5 + 32, abs=0.03)
    assert imperial["wind"]["speed"] == pytest.approx(metric["wind"]["speed"] * 2.236936, abs=0.03)


async def test_same_seed_same_weather_other_seed_other_weather(client: httpx.AsyncClient) -> None:
    answers = []
    for seed in (7, 7, 8):
        async with WeatherServer(
            WeatherConfig(port=0, api_key=KEY, seed=seed), clock=lambda: T0
        ) as server:
            answers.append((await current(client, server)).json())
    assert answers[0] == answers[1]
    assert answers[0]["main"] != answers[2]["main"]


def test_values_drift_plausibly_over_two_days() -> None:
    model = WeatherModel(seed=5)
    samples = [model.observe(52.3731, 4.8922, T0 + i * 600) for i in range(2 * 144)]  # every 10 min
    temps = [s.temp_c for s in samples]
    steps = [abs(b - a) for a, b in itertools.pairwise(temps)]
    assert max(steps) < 1.5, "temperature jumps, not drifts"
    assert max(temps) - min(temps) > 3, "temperature does not move over two days"
    assert max(abs(b.pressure_hpa - a.pressure_hpa) for a, b in itertools.pairwise(samples)) <= 2
    assert len({s.condition for s in samples}) >= 2, "two days of one unchanging sky"
    assert all(
        0 <= s.humidity_pct <= 100 and 0 <= s.clouds_pct <= 100 and s.wind_speed_ms >= 0
        for s in samples
    )


async def test_missing_or_wrong_appid_is_401_with_owm_error(
    weather: WeatherServer, client: httpx.AsyncClient
) -> None:
    for appid in (None, "wrong"):
        r = await current(client, weather, appid=appid)
        assert r.status_code == 401
        assert r.json() == UNAUTHORIZED_BODY
    r = await current(client, weather, lat=None)
    assert (r.status_code, r.json()["message"]) == (400, "Nothing to geocode")
    r = await current(client, weather, lat="91")
    assert (r.status_code, r.json()["message"]) == (400, "wrong latitude")
    assert dict(weather.counts) == {"unauthorized": 2, "bad_request": 2}


async def test_python_faults(weather: WeatherServer, client: httpx.AsyncClient) -> None:
    weather.faults.slow(0.3)
    started = time.monotonic()
    assert (await current(client, weather)).status_code == 200
    assert time.monotonic() - started >= 0.3

    weather.faults.clear()
    weather.faults.errors(503, fraction=1.0)
    assert (await current(client, weather)).status_code == 503
    weather.faults.errors(500, fraction=0.5)
    statuses = [(await current(client, weather)).status_code for _ in range(60)]
    assert 10 < statuses.count(500) < 50 and statuses.count(200) == 60 - statuses.count(500)

    weather.faults.clear()
    weather.faults.rate_limit(retry_after_s=7)
    r = await current(client, weather)
    assert (r.status_code, r.headers["retry-after"], r.json()) == (429, "7", RATE_LIMITED_BODY)

    weather.faults.clear()
    weather.faults.down()
    async with httpx.AsyncClient() as fresh:  # a new connection: refused, not just cut
        with pytest.raises(httpx.ConnectError):
            await current(fresh, weather)
    weather.faults.clear()
    assert (await current(client, weather)).status_code == 200

    counts = weather.counts
    assert counts["rate_limited"] == 1 and counts["error"] == 1 + statuses.count(500)
    assert counts["ok"] == 2 + statuses.count(200)


async def test_down_cuts_a_request_in_flight(
    weather: WeatherServer, client: httpx.AsyncClient
) -> None:
    weather.faults.slow(5)
    pending = asyncio.create_task(current(client, weather))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    weather.faults.down()
    with pytest.raises(httpx.TransportError):
        await pending
    assert time.monotonic() - started < 1


async def test_http_faults_drive_the_same_switches(
    weather: WeatherServer, client: httpx.AsyncClient
) -> None:
    r = await client.put(f"{weather.url}/_faults", json={"rate_limited": True, "retry_after_s": 3})
    assert r.status_code == 200
    assert weather.faults.spec.rate_limited
    assert (await current(client, weather)).status_code == 429
    assert (await client.get(f"{weather.url}/_faults")).json()["retry_after_s"] == 3

    r = await client.put(
        f"{weather.url}/_faults", json={"error_status": 502, "error_fraction": 1.0}
    )
    assert (await current(client, weather)).status_code == 502  # PUT replaced: no more 429

    assert (await client.put(f"{weather.url}/_faults", json={"down": True})).status_code == 422
    assert (await client.put(f"{weather.url}/_faults", json={"delay_s": -1})).status_code == 422
    assert (await client.put(f"{weather.url}/_faults", json={"down_s": 0.5})).status_code == 200
    async with httpx.AsyncClient() as fresh:
        async with asyncio.timeout(2):
            while True:  # applied just after the answer: poll for the refusal
                try:
                    await fresh.get(f"{weather.url}/_stats")
                except httpx.ConnectError:
                    break
                await asyncio.sleep(0.01)
        down_at = time.monotonic()
        async with asyncio.timeout(3):
            while True:
                try:
                    r = await fresh.get(f"{weather.url}/_stats")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
    assert time.monotonic() - down_at >= 0.3
    assert weather.faults.spec.down is False
    assert r.json()["requests"] == {"rate_limited": 1, "error": 1}
    assert (await client.put(f"{weather.url}/_faults", json={})).json()["error_fraction"] == 0
    assert (await current(client, weather)).status_code == 200


async def test_started_down_refuses_then_serves_on_the_same_port(client: httpx.AsyncClient) -> None:
    server = WeatherServer(WeatherConfig(port=0, api_key=KEY))
    server.faults.down()
    async with server:
        with pytest.raises(httpx.ConnectError):
            await current(client, server)
        port = server.port
        server.faults.up()
        assert (await current(client, server)).status_code == 200
        assert server.port == port


async def test_runs_standalone_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.weather",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--seed",
        "1",
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2.0) as c:
            async with asyncio.timeout(15):
                while True:
                    try:
                        r = await c.get(f"{url}/data/2.5/weather", params={**HOME, "appid": KEY})
                        break
                    except httpx.TransportError:
                        assert proc.returncode is None, "exited before serving"
                        await asyncio.sleep(0.05)
            assert r.status_code == 200 and r.json()["name"] == "Amsterdam"
            await c.put(f"{url}/_faults", json={"error_fraction": 1.0})
            r = await c.get(f"{url}/data/2.5/weather", params={**HOME, "appid": KEY})
            assert r.status_code == 500
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
