"""Toxiproxy's HTTP API (v2 JSON shapes, status codes and error bodies), as a Starlette app
served by uvicorn in the proxies' own event loop.

Endpoints: GET /version, GET /proxies, POST /proxies (201; 409 if it exists), POST /populate
(201, ``{"proxies": [...]}``), GET|POST|DELETE /proxies/{proxy} (POST updates; PATCH too, as
Toxiproxy), GET|POST /proxies/{proxy}/toxics, GET|POST|DELETE /proxies/{proxy}/toxics/{toxic},
POST /reset (204), GET /metrics (Toxiproxy's byte counters, Prometheus text). Errors are
``{"error": "...", "status": N}``. Like Toxiproxy, requests whose User-Agent starts with
``Mozilla/`` are refused (403), so a web page cannot drive the proxy through a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.faultproxy.collection import Proxies
from simulators.faultproxy.errors import FaultProxyError
from simulators.faultproxy.proxy import Proxy
from simulators.faultproxy.toxics import STREAMS, BadToxic, Toxic

#: the Toxiproxy release whose API this follows; "+faultproxy" says whose server it is
VERSION = "2.12.0+faultproxy"

Handler = Callable[[Request], Awaitable[Response]]


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message, "status": status}, status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "empty body" if not raw.strip() else str(exc)
        raise FaultProxyError(400, f"bad request body: {detail}") from None


def build_app(fp: Proxies) -> Starlette:
    """The API over ``fp``'s proxies."""

    def handles(methods: dict[str, Handler]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await methods[request.method](request)
            except FaultProxyError as exc:
                return _error(exc.status, exc.message)
            except BadToxic as exc:
                return _error(400, str(exc))

        return endpoint

    def proxy_of(request: Request) -> Proxy:
        return fp.get(request.path_params["proxy"])

    async def version(_request: Request) -> Response:
        return Response(
            orjson.dumps({"version": VERSION}) + b"\n",
            media_type="application/json;charset=utf-8",
        )

    async def proxy_index(_request: Request) -> Response:
        return _json({name: p.to_json() for name, p in fp.proxies.items()})

    async def proxy_create(request: Request) -> Response:
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise FaultProxyError(400, "bad request body: a proxy is a JSON object")
        name, upstream, listen = doc.get("name"), doc.get("upstream"), doc.get("listen")
        enabled = doc.get("enabled", True)
        if not isinstance(name, str) or not name:
            raise FaultProxyError(400, "missing required field: name")
        if not isinstance(upstream, str) or not upstream:
            raise FaultProxyError(400, "missing required field: upstream")
        if listen is not None and not isinstance(listen, str):
            raise FaultProxyError(400, "bad request body: listen must be a string host:port")
        if not isinstance(enabled, bool):
            raise FaultProxyError(400, "bad request body: enabled must be true or false")
        proxy = await fp.create(name, listen=listen or None, upstream=upstream, enabled=enabled)
        return _json(proxy.to_json(), 201)

    async def populate(request: Request) -> Response:
        proxies = await fp.populate(await _body(request))
        return _json({"proxies": [p.to_json() for p in proxies]}, 201)

    async def reset(_request: Request) -> Response:
        await fp.reset()
        return Response(status_code=204)

    async def proxy_show(request: Request) -> Response:
        return _json(proxy_of(request).to_json())

    async def proxy_update(request: Request) -> Response:
        proxy = proxy_of(request)
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise FaultProxyError(400, "bad request body: a proxy update is a JSON object")
        listen, upstream, enabled = doc.get("listen"), doc.get("upstream"), doc.get("enabled")
        if listen is not None and not isinstance(listen, str):
            raise FaultProxyError(400, "bad request body: listen must be a string host:port")
        if upstream is not None and not isinstance(upstream, str):
            raise FaultProxyError(400, "bad request body: upstream must be a string host:port")
        if enabled is not None and not isinstance(enabled, bool):
            raise FaultProxyError(400, "bad request body: enabled must be true or false")
        if listen:
            fp.check_listen(listen)
        await proxy.update(listen=listen or None, upstream=upstream or None, enabled=enabled)
        return _json(proxy.to_json())

    async def proxy_delete(request: Request) -> Response:
        await fp.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def toxic_index(request: Request) -> Response:
        return _json([t.to_json() for t in proxy_of(request).toxics_in_chain_order()])

    async def toxic_create(request: Request) -> Response:
        proxy = proxy_of(request)
        toxic = proxy.attach(Toxic.from_json(await _body(request)))
        return _json(toxic.to_json())

    async def toxic_show(request: Request) -> Response:
        return _json(proxy_of(request).toxic(request.path_params["toxic"]).to_json())

    async def toxic_update(request: Request) -> Response:
        proxy = proxy_of(request)
        name = request.path_params["toxic"]
        proxy.toxic(name)  # 404 before looking at the body
        toxic = proxy.update_toxic_json(name, await _body(request))
        return _json(toxic.to_json())

    async def toxic_delete(request: Request) -> Response:
        proxy_of(request).remove_toxic(request.path_params["toxic"])
        return Response(status_code=204)

    async def metrics(_request: Request) -> Response:
        return Response(_metrics_text(fp), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/version", handles({"GET": version}), methods=["GET"]),
        Route("/metrics", handles({"GET": metrics}), methods=["GET"]),
        Route("/reset", handles({"POST": reset}), methods=["POST"]),
        Route("/populate", handles({"POST": populate}), methods=["POST"]),
        Route(
            "/proxies",
            handles({"GET": proxy_index, "POST": proxy_create}),
            methods=["GET", "POST"],
        ),
        Route(
            "/proxies/{proxy}",
            handles(
                {
                    "GET": proxy_show,
                    "POST": proxy_update,
                    "PATCH": proxy_update,
                    "DELETE": proxy_delete,
                }
            ),
            methods=["GET", "POST", "PATCH", "DELETE"],
        ),
        Route(
            "/proxies/{proxy}/toxics",
            handles({"GET": toxic_index, "POST": toxic_create}),
            methods=["GET", "POST"],
        ),
        Route(
            "/proxies/{proxy}/toxics/{toxic}",
            handles(
                {
                    "GET": toxic_show,
                    "POST": toxic_update,
                    "PATCH": toxic_update,
                    "DELETE": toxic_delete,
                }
            ),
            methods=["GET", "POST", "PATCH", "DELETE"],
        ),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
        return _error(exc.status_code, f"{message}: {request.method} {request.url.path}")

    return Starlette(
        routes=routes,
        middleware=[Middleware(_StopBrowsers)],
        exception_handlers={HTTPException: http_error},
    )


class _StopBrowsers:
    """Toxiproxy's guard: a browser (User-Agent ``Mozilla/...``) gets 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Headers(scope=scope).get("user-agent", "").startswith(
            "Mozilla/"
        ):
            await _error(403, "User agent not allowed")(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metrics_text(fp: Proxies) -> str:
    lines: list[str] = []
    series = (
        ("toxiproxy_proxy_received_bytes_total", "Bytes received on a proxy link", "received"),
        ("toxiproxy_proxy_sent_bytes_total", "Bytes sent on a proxy link", "sent"),
    )
    for metric, help_, attr in series:
        lines += [f"# HELP {metric} {help_}.", f"# TYPE {metric} counter"]
        for proxy in fp.proxies.values():
            for stream in STREAMS:
                labels = (
                    f'direction="{stream}",listener="{_label(proxy.listen)}",'
                    f'proxy="{_label(proxy.name)}",upstream="{_label(proxy.upstream)}"'
                )
                value = getattr(proxy.stats.direction(stream), attr)
                lines.append(f"{metric}{{{labels}}} {value}")
    gauges = (
        ("faultproxy_connections_total", "counter", "Connections accepted by a proxy"),
        ("faultproxy_connections_active", "gauge", "Connections open through a proxy"),
    )
    for metric, kind, help_ in gauges:
        lines += [f"# HELP {metric} {help_}.", f"# TYPE {metric} {kind}"]
        for proxy in fp.proxies.values():
            value = (
                proxy.stats.connections_total
                if kind == "counter"
                else len(proxy.connections)
            )
            lines.append(f'{metric}{{proxy="{_label(proxy.name)}"}} {value}')
    return "\n".join(lines) + "\n"


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: whoever runs the event loop owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API of ``fp`` on ``host:port`` (0 = a free port), in the running event loop."""

    def __init__(self, fp: Proxies, *, host: str = "127.0.0.1", port: int = 8474) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(
            build_app(fp),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _Uvicorn(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="faultproxy-api")
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("faultproxy API stopped while starting")
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None


__all__ = ["VERSION", "ApiServer", "build_app"]
