"""The kit every pipeline service is built on: app, health, metrics, logs, bad input, serving.

- `make_app`: FastAPI app with `GET /health` (200, or 503 with the reason: a real status code,
  FAILURE_MODES.md #10), `GET /metrics` from a registry of its own (no process-global registry,
  so two apps in one test process never collide), and one policy for bad input: oversized,
  non-UTF-8, non-JSON or invalid bodies get a 4xx with a message a human can act on, and count
  in `cutover_bad_requests_total{reason}`.
- `configure_logging`: one JSON object per line, secrets redacted before anything is written.
- `serve` / `run_service`: uvicorn driven from code; SIGTERM runs the lifespan shutdown, where the
  service flushes what it holds, and the process then exits 0.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import re
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.common.aio import within
from pipeline.common.openapi import HEALTH_BODY

__all__ = [
    "BadRequest",
    "HealthReport",
    "JsonFormatter",
    "RedactingFilter",
    "ServiceKit",
    "configure_logging",
    "kit_of",
    "make_app",
    "redact",
    "run_service",
    "serve",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


# -- health --------------------------------------------------------------------------------------


class HealthReport(BaseModel):
    healthy: bool
    reason: str | None = None  # required when unhealthy: a 503 must say why
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reason_when_unhealthy(self) -> HealthReport:
        if not self.healthy and not self.reason:
            raise ValueError("an unhealthy report needs a reason")
        return self


HealthCheck = Callable[[], Awaitable[HealthReport]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


# -- bad input -----------------------------------------------------------------------------------


class BadRequest(Exception):
    """Raise from a handler for input the kit cannot judge by itself (counted like the rest)."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ServiceKit:
    """What make_app hangs on `app.state.kit`: services register their own metrics here."""

    name: str
    registry: CollectorRegistry
    bad_requests: Counter
    max_body_bytes: int

    def reject(self, status: int, reason: str, message: str, **extra: Any) -> JSONResponse:
        self.bad_requests.labels(reason=reason).inc()
        return JSONResponse({"error": reason, "detail": message, **extra}, status_code=status)


def kit_of(app: FastAPI) -> ServiceKit:
    kit: ServiceKit = app.state.kit
    return kit


def _is_textual(content_type: str) -> bool:
    # Bodies FastAPI will decode as JSON (or a handler as text). A missing content type counts:
    # a client that omits it still sends us JSON.
    mime = content_type.split(";", 1)[0].strip().lower()
    return (
        not mime
        or mime == "application/json"
        or (mime.startswith("application/") and mime.endswith("+json"))
        or mime.startswith("text/")
    )


class BodyGuard:
    """ASGI middleware: refuse oversized and non-UTF-8 bodies before any handler sees them.

    Pure ASGI rather than BaseHTTPMiddleware: it must cut an oversized upload short while it
    streams in, without buffering it first.
    """

    def __init__(self, app: ASGIApp, kit: ServiceKit) -> None:
        self.app = app
        self.kit = kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.kit.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, int(declared))
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        if body and _is_textual(headers.get("content-type", "")):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = body[exc.start]
                response = self.kit.reject(
                    400,
                    "not_utf8",
                    f"request body is not valid UTF-8: byte 0x{bad:02x} at offset {exc.start}",
                )
                await response(scope, receive, send)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for http.disconnect, as usual

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        response = self.kit.reject(
            413,
            "too_large",
            f"request body of {size} bytes exceeds the limit of {self.kit.max_body_bytes} bytes",
        )
        await response(scope, receive, send)


def _error_lines(exc: RequestValidationError, limit: int = 20) -> list[dict[str, Any]]:
    # Without `input`: it may be huge, or carry a secret the client sent by mistake.
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""),
         "type": err.get("type", "")}
        for err in list(exc.errors())[:limit]
    ]


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _install_error_handlers(app: FastAPI, kit: ServiceKit) -> None:
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        for err in errors:
            if err.get("type") == "json_invalid":
                cause = (err.get("ctx") or {}).get("error", "syntax error")
                pos = err.get("loc", (None, None))[-1]
                return kit.reject(
                    400, "not_json", f"request body is not valid JSON: {cause} at position {pos}"
                )
        lines = _error_lines(exc)
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in lines[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return kit.reject(422, "validation", f"invalid request: {summary}{more}", errors=lines)

    async def on_bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return kit.reject(exc.status, exc.reason, exc.message)

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Routing's own refusals (404, 405) in the same shape as every other refusal, rather
        # than Starlette's bare {"detail": "Method Not Allowed"}; headers (Allow) are kept.
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 405:
            # Starlette's Allow names the methods of the first route matching the path only;
            # a path served by several routes (GET and POST) allows all of theirs.
            methods = {m for m in _METHODS
                       if any(route.matches({**request.scope, "method": m})[0] is Match.FULL
                              for route in request.app.router.routes)}
            allowed = ", ".join(sorted(methods)) or headers.get("Allow", "")
            headers["Allow"] = allowed
            reason, message = "method_not_allowed", (
                f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}")
        elif status == 404:
            reason, message = "not_found", f"no such endpoint: {request.method} {request.url.path}"
        else:
            reason, message = "http_error", str(exc.detail)
        if status < 400 or status >= 500:
            return JSONResponse({"error": reason, "detail": message}, status_code=status,
                                headers=headers)
        response = kit.reject(status, reason, message)
        response.headers.update(headers)
        return response

    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(BadRequest, on_bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]


# -- the app -------------------------------------------------------------------------------------


def make_app(
    name: str,
    *,
    health: HealthCheck,
    lifespan: Lifespan | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    health_timeout: float = 2.0,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """A FastAPI app with /health, /metrics and the bad-input policy; add routes to it."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    kit = ServiceKit(
        name=name,
        registry=registry,
        bad_requests=Counter(
            "cutover_bad_requests",  # exposed as cutover_bad_requests_total, like every metric
            "Requests refused because their input was unusable",
            ["reason"],
            registry=registry,
        ),
        max_body_bytes=max_body_bytes,
    )
    app = FastAPI(title=name, lifespan=lifespan)
    app.state.kit = kit
    app.add_middleware(BodyGuard, kit=kit)
    _install_error_handlers(app, kit)

    @app.get("/health", responses={
        200: {"description": "Healthy", "content": {"application/json": {"schema": HEALTH_BODY}}},
        503: {"description": "Not healthy; the reason says why",
              "content": {"application/json": {"schema": HEALTH_BODY}}},
    })
    async def get_health() -> JSONResponse:
        try:
            report = await within(health(), timeout=health_timeout)
        except TimeoutError:
            report = HealthReport(
                healthy=False, reason=f"health check did not answer within {health_timeout}s"
            )
        except Exception as exc:  # noqa: BLE001 - a crashing check means "not healthy", said so
            log.exception("health check raised")
            report = HealthReport(healthy=False, reason=f"health check failed: {exc!r}")
        body = {"service": name, "status": "ok" if report.healthy else "unhealthy",
                **report.model_dump(mode="json")}
        return JSONResponse(body, status_code=200 if report.healthy else 503)

    @app.get("/metrics", response_class=PlainTextResponse, responses={
        200: {"description": "Prometheus text exposition format",
              "content": {"text/plain": {"schema": {"type": "string"}}}},
    })
    async def get_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


# -- logging -------------------------------------------------------------------------------------

_REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"(token|password|passwd|secret|authorization|api_?key|credential)", re.IGNORECASE
)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_KEY_VALUE = re.compile(
    # \\? : the key may sit inside JSON that was itself embedded in a JSON string (\"token\")
    r"""(?P<key>\\?["']?\b[A-Za-z_]*(?:token|password|passwd|secret|api_?key)\\?["']?\s*[:=]\s*)"""
    r"""(?!\\?["']?\[REDACTED\])"""  # already masked: redact() stays idempotent
    # An unquoted value runs to whitespace or a quote, not to '&' ',' ';' '}': a password may
    # contain those, and over-masking the rest of a query string is the safe mistake.
    r"""(?P<value>\\"(?:(?!\\").)*\\"|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'"""
    r"""|(?:bearer\s+)?[^\s"']+)""",
    re.IGNORECASE,
)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[:2] if value.startswith('\\"') else value[0] if value[:1] in "'\"" else ""
    return f"{match.group('key')}{quote}{_REDACTED}{quote}"


def redact(text: str) -> str:
    """Mask bearer tokens, JWTs and the values of token/password/secret/api_key settings."""
    text = _KEY_VALUE.sub(_mask_value, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
    return _JWT.sub(_REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key) and isinstance(value, (str, bytes)):
        return _REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


# Attributes every LogRecord has: anything else on a record came in through `extra=`.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message", "asctime", "taskName", "color_message",  # color_message: uvicorn's ANSI twin
}


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no handler downstream can print a secret.

    Works on the rendered message (args included), on extra fields (by key name and by value)
    and on the exception text, which is rendered here once so it can be scrubbed too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key in set(record.__dict__) - _RECORD_ATTRS:
            setattr(record, key, _redact_value(key, record.__dict__[key]))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, then extra fields."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in record.__dict__.keys() - _RECORD_ATTRS:
            if key not in doc:
                doc[key] = record.__dict__[key]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        # default=str: an extra field of any type is logged rather than crashing the handler.
        return orjson.dumps(doc, default=str).decode()


def configure_logging(
    service_name: str,
    level: int | str = "INFO",
    *,
    stream: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Send `logger` (default: the root logger) to `stream` (default stderr) as JSON lines.

    Idempotent: a handler installed by an earlier call on the same logger is replaced.
    """
    target = logger if logger is not None else logging.getLogger()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    # On the handler, not the logger: logger filters skip records propagated from child loggers.
    handler.addFilter(RedactingFilter())
    handler.set_name(f"ha-cutover-json:{service_name}")
    for old in list(target.handlers):
        if (old.get_name() or "").startswith("ha-cutover-json:"):
            target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    if logger is None:
        # httpx logs every request at INFO: one line per InfluxDB write or forwarded batch.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


# -- serving -------------------------------------------------------------------------------------


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    graceful_timeout: int = 10,
    access_log: bool = False,  # a line per request (scrapes every second) drowns the logs
    started: asyncio.Event | None = None,
) -> None:
    """Run uvicorn in the current loop until SIGTERM/SIGINT, then shut down gracefully.

    Order on SIGTERM (uvicorn's): stop accepting, let in-flight requests finish (at most
    `graceful_timeout` s), then the lifespan shutdown, where the service flushes what it holds.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # keep our JSON logging: uvicorn's loggers propagate to the root
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if started is not None:
        watcher = asyncio.create_task(_signal_started(server, started))
    try:
        await server.serve()
    finally:
        if started is not None:
            watcher.cancel()


async def _signal_started(server: uvicorn.Server, started: asyncio.Event) -> None:
    while not server.started:
        await asyncio.sleep(0.01)
    started.set()


def run_service(app: FastAPI, host: str, port: int, *, graceful_timeout: int = 10) -> None:
    """Blocking entry point of a service process: serve, shut down gracefully, exit 0.

    SIGUSR1 dumps every thread's stack to stderr (the log): how to see where a service that
    will not stop is stuck, without stopping it."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    with _quiet_after_graceful_exit():
        asyncio.run(serve(app, host, port, graceful_timeout=graceful_timeout))


class _quiet_after_graceful_exit:
    """uvicorn re-raises the signal it handled once it has shut down; with the default handlers
    that turns a clean SIGTERM shutdown into death-by-signal (or a KeyboardInterrupt traceback).
    A supervisor must tell "flushed and exited" (status 0) from "killed", so here that re-raised
    signal, or one arriving before uvicorn listens (nothing to flush yet), exits 0."""

    _signals = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self) -> None:
        self._saved: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self._signals:
                self._saved[sig] = signal.signal(sig, _exit_cleanly)

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
