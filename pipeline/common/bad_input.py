"""One policy for bad input, for every service: a 4xx a human can act on, and a count.

Oversized and non-UTF-8 bodies are refused by `BodyGuard` before any handler sees them;
non-JSON and invalid bodies by the error handlers `install_error_handlers` adds, which also
give routing's own refusals (404, 405) the same shape: ``{"error": <reason>, "detail": <text>}``.
A handler raises `BadRequest` for input only it can judge. Each refusal goes through the kit's
``reject``, which counts it in `cutover_bad_requests_total{reason}`.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BadRequest", "BodyGuard", "Refuser", "install_error_handlers"]


class BadRequest(Exception):
    """Raise from a handler for input the kit cannot judge by itself (counted like the rest)."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


class Refuser(Protocol):
    """What refuses bad input: `pipeline.common.service.ServiceKit`."""

    @property
    def max_body_bytes(self) -> int: ...

    def reject(self, status: int, reason: str, message: str, **extra: Any) -> JSONResponse: ...


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

    def __init__(self, app: ASGIApp, kit: Refuser) -> None:
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


def install_error_handlers(app: FastAPI, kit: Refuser) -> None:
    async def on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
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

    async def on_bad_request(_request: Request, exc: BadRequest) -> JSONResponse:
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

    # Starlette types every handler as taking any Exception; each of these is registered for
    # its own exception class only, so it is only ever called with that class.
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(BadRequest, on_bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
