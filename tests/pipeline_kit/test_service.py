"""The service kit: health, metrics, bad input, JSON logs with redaction, graceful shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, SecretStr, ValidationError

from pipeline.common.bad_input import BadRequest
from pipeline.common.logs import configure_logging
from pipeline.common.redaction import redact
from pipeline.common.service import HealthReport, kit_of, make_app


class Batch(BaseModel):
    events: list[dict[str, str]]


def build(report: HealthReport | Exception | None = None, *, max_body: int = 1024) -> FastAPI:
    async def health() -> HealthReport:
        if isinstance(report, Exception):
            raise report
        return report or HealthReport(healthy=True, details={"depth": 0})

    app = make_app("data-storage", health=health, max_body_bytes=max_body)

    @app.post("/api/v1/events")
    async def post_events(batch: Batch) -> dict[str, int]:
        return {"accepted": len(batch.events)}

    @app.post("/raw")
    async def raw() -> None:
        raise BadRequest("unknown_entity", "entity 'x.y' is not in the registry", status=409)

    return app


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(build()) as c:
        yield c


def metric(text: str, reason: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'cutover_bad_requests_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


# -- health -------------------------------------------------------------------------------------


async def test_health_200_when_healthy(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"service": "data-storage", "status": "ok", "healthy": True,
                        "reason": None, "details": {"depth": 0}}


async def test_health_503_with_the_reason_when_not() -> None:
    app = build(HealthReport(healthy=False, reason="no write to InfluxDB for 30 s"))
    async with await client_for(app) as c:
        r = await c.get("/health")
    assert r.status_code == 503
    assert r.json()["reason"] == "no write to InfluxDB for 30 s"
    assert r.json()["status"] == "unhealthy"


async def test_a_crashing_health_check_is_a_503_not_a_500() -> None:
    async with await client_for(build(RuntimeError("influx client gone"))) as c:
        r = await c.get("/health")
    assert r.status_code == 503
    assert "influx client gone" in r.json()["reason"]


async def test_a_hanging_health_check_is_a_503() -> None:
    async def never() -> HealthReport:
        await asyncio.sleep(3600)
        raise AssertionError

    app = make_app("x", health=never, health_timeout=0.05)
    async with await client_for(app) as c:
        r = await c.get("/health")
    assert r.status_code == 503 and "did not answer" in r.json()["reason"]


def test_an_unhealthy_report_must_say_why() -> None:
    with pytest.raises(ValidationError):
        HealthReport(healthy=False)


# -- metrics and bad input -------------------------------------------------------------------------


async def test_metrics_expose_bad_requests_by_reason(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    assert "# TYPE cutover_bad_requests_total counter" in before
    await client.post("/api/v1/events", content=b"\xff\xfe", headers={"content-type":
                                                                         "application/json"})
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert metric(r.text, "not_utf8") == 1.0


async def test_each_app_has_its_own_registry() -> None:
    a, b = build(), build()
    assert kit_of(a).registry is not kit_of(b).registry
    async with await client_for(a) as ca, await client_for(b) as cb:
        await ca.post("/api/v1/events", content=b"{", headers={"content-type":
                                                                "application/json"})
        assert metric((await ca.get("/metrics")).text, "not_json") == 1.0
        assert metric((await cb.get("/metrics")).text, "not_json") == 0.0


async def test_good_batch_passes_through(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", json={"events": [{"context_id": "a"}]})
    assert r.status_code == 200 and r.json() == {"accepted": 1}


async def test_non_utf8_body_is_a_400_with_a_clear_message(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", content=b'{"events": ["\xe9"]}',
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": "not_utf8",
                        "detail": "request body is not valid UTF-8: byte 0xe9 at offset 13"}


async def test_non_json_body_is_a_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", content=b'{"events": [',
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "not_json"
    assert r.json()["detail"].startswith("request body is not valid JSON: ")


async def test_invalid_shape_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", json={"events": [{"context_id": 5}], "x": 1})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation"
    assert body["detail"].startswith("invalid request: body.events.0.context_id: ")
    assert body["errors"][0]["loc"] == ["body", "events", "0", "context_id"]
    assert metric((await client.get("/metrics")).text, "validation") == 1.0


async def test_oversized_body_is_a_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/events", json={"events": [{"e": "x" * 2000}]})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert "exceeds the limit of 1024 bytes" in r.json()["detail"]
    assert metric((await client.get("/metrics")).text, "too_large") == 1.0


async def test_oversized_streamed_body_without_length_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 200

    r = await client.post("/api/v1/events", content=chunks(),
                          headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


async def test_a_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    body = b'{"events": [{"e": "' + b"x" * (1024 - 23) + b'"}]}'
    assert len(body) == 1024
    r = await client.post("/api/v1/events", content=body,
                          headers={"content-type": "application/json"})
    assert r.status_code == 200


async def test_handlers_can_raise_bad_request(client: httpx.AsyncClient) -> None:
    r = await client.post("/raw")
    assert r.status_code == 409
    assert r.json() == {"error": "unknown_entity", "detail": "entity 'x.y' is not in the registry"}
    assert metric((await client.get("/metrics")).text, "unknown_entity") == 1.0


# -- logging ------------------------------------------------------------------------------------

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJoYS1jdXRvdmVyIn0.s3cr3tSIGNATUREvalue"
PASSWORD = "Tr0ub4dor&3-horse"


@pytest.fixture
def json_log() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger("test.pipeline_kit.json")
    logger.propagate = False
    configure_logging("enrichment-pipeline", "DEBUG", stream=stream, logger=logger)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_logs_are_one_json_object_per_line(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    logger.info("stored %d events", 3, extra={"batch": 7, "path": "/api/v1/events"})
    logger.warning("second\nline")
    (first, second) = lines(stream)
    assert first["message"] == "stored 3 events"
    assert (first["level"], first["service"], first["batch"], first["path"]) == (
        "info", "enrichment-pipeline", 7, "/api/v1/events")
    assert str(first["time"]).endswith("+00:00")
    assert second["message"] == "second\nline"
    assert second["level"] == "warning"


def test_configure_logging_is_idempotent(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, _ = json_log
    stream = io.StringIO()
    configure_logging("enrichment-pipeline", "INFO", stream=stream, logger=logger)
    logger.info("once")
    assert len(lines(stream)) == 1
    ours = [h for h in logger.handlers if (h.get_name() or "").startswith("ha-cutover-json:")]
    assert len(ours) == 1


def test_tokens_and_passwords_never_reach_the_output(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("auth message: %s", json.dumps({"type": "auth", "access_token": TOKEN}))
    logger.info("calling %s", f"http://ha:8123/api/websocket?access_token={TOKEN}&x=1")
    logger.info("headers %s", {"Authorization": f"Bearer {TOKEN}"})
    logger.info("influx password=%s user=admin", PASSWORD)
    logger.info("raw token in text: %s", TOKEN)
    logger.info("settings", extra={"influx_token": TOKEN, "db_password": PASSWORD,
                                   "nested": {"api_key": PASSWORD, "ok": "fine"},
                                   "secret_obj": SecretStr(PASSWORD)})
    try:
        raise RuntimeError(f"login failed with password: '{PASSWORD}'")
    except RuntimeError:
        logger.exception("boom")
    out = stream.getvalue()
    assert TOKEN not in out and "s3cr3tSIGNATURE" not in out
    assert PASSWORD not in out and "Tr0ub4dor" not in out
    docs = lines(stream)
    assert len(docs) == 7
    assert "[REDACTED]" in str(docs[0]["message"])
    # over-masking the rest of the query is the price of not stopping a password at '&'
    assert docs[1]["message"] == "calling http://ha:8123/api/websocket?access_token=[REDACTED]"
    assert docs[3]["message"] == "influx password=[REDACTED] user=admin"
    assert docs[5]["nested"] == {"api_key": "[REDACTED]", "ok": "fine"}
    assert "RuntimeError" in str(docs[6]["exc"])


@pytest.mark.parametrize(("text", "expected"), [
    ('{"access_token": "abc def"}', '{"access_token": "[REDACTED]"}'),
    ("{'password': 'p w'}", "{'password': '[REDACTED]'}"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
    ("INFLUX_TOKEN=xyz other=1", "INFLUX_TOKEN=[REDACTED] other=1"),
    ("token: Bearer abc", "token: [REDACTED]"),
    (r'{"msg": "{\"access_token\": \"a b\"}"}', r'{"msg": "{\"access_token\": \"[REDACTED]\"}"}'),
    ("password=C:\\dir\\pw x", "password=[REDACTED] x"),
    ("password=a&b c", "password=[REDACTED] c"),
    ("?access_token=eyJhbGciOiJI.eyJzdWIiOjF9.sig", "?access_token=[REDACTED]"),
    ("tokens=5 processed", "tokens=5 processed"),
    ("nothing secret here", "nothing secret here"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


# -- serving -----------------------------------------------------------------------------------

SERVICE_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from contextlib import asynccontextmanager
    from pathlib import Path
    from pipeline.common.logs import configure_logging
    from pipeline.common.service import HealthReport, make_app
    from pipeline.common.serving import run_service

    marker = Path(sys.argv[2])

    @asynccontextmanager
    async def lifespan(app):
        marker.write_text("started\\n")
        yield
        await asyncio.sleep(0.05)  # a flush that takes a moment
        with marker.open("a") as f:
            f.write("flushed\\n")

    async def health():
        return HealthReport(healthy=True)

    configure_logging("demo", "INFO")
    run_service(make_app("demo", health=health, lifespan=lifespan), "127.0.0.1", int(sys.argv[1]))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_runs_the_lifespan_shutdown_and_exits_0(tmp_path: Path) -> None:
    script = tmp_path / "svc.py"
    script.write_text(SERVICE_SCRIPT)
    marker = tmp_path / "marker"
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(marker)], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "service did not come up"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert marker.read_text() == "started\nflushed\n"
    log_lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(d["message"].startswith("Finished server process") for d in log_lines)
    assert all(d["service"] == "demo" for d in log_lines)


@pytest.mark.parametrize("text", [
    "password=a,b;c}d", "token: Bearer abc", '{"access_token": "x"}', "api_key=[x]y",
])
def test_redact_is_idempotent_and_total(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    assert not any(part in once for part in ("a,b", "abc", '"x"', "[x]y"))
