"""A proxy: ``listen`` -> ``upstream``, its listener, its toxics and its counters.

The per-connection plumbing (links, flow control, half-close) is in link.py; the collection of
proxies in collection.py. Nothing here knows of the HTTP API (api.py wraps the collection).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Mapping
from typing import Any

from simulators.faultproxy.errors import FaultProxyError, join_address, resolve, split_address
from simulators.faultproxy.link import (
    Connection,
    DirectionStats,
    Link,
    ProxyStats,
    _ClientSide,
)
from simulators.faultproxy.toxics import STREAMS, Toxic

# --------------------------------------------------------------------------- proxies


class Proxy:
    """``listen`` -> ``upstream``, with toxics. Create through :class:`FaultProxy`."""

    def __init__(
        self, name: str, *, listen: str, upstream: str, rng: random.Random | None = None
    ) -> None:
        if not name:
            raise FaultProxyError(400, "missing required field: name")
        if not upstream:
            raise FaultProxyError(400, "missing required field: upstream")
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        self.name = name
        self.listen = listen  # the real address once listening (port 0 -> the port picked)
        self.upstream = upstream
        self.rng = rng if rng is not None else random.Random()
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None

    @property
    def enabled(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return split_address(self.listen, "listen")[1]

    @property
    def host(self) -> str:
        return split_address(self.listen, "listen")[0]

    # -- up and down

    async def enable(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        if self._server is not None:
            return
        host, port = split_address(self.listen, "listen")
        try:
            infos = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(1024)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise FaultProxyError(
                500, f"proxy {self.name}: cannot listen on {self.listen}: {exc}"
            ) from None
        bound_host, bound_port = sock.getsockname()[:2]
        self.listen = join_address(bound_host, bound_port)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientSide(self), sock=sock, backlog=1024
        )

    async def disable(self) -> None:
        """Toxiproxy's "down": stop listening and close every live connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close()

    async def update(
        self, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> None:
        """Toxiproxy's POST /proxies/{proxy}: a new listen or upstream restarts the proxy
        (dropping its connections); ``enabled`` takes it up or down."""
        if upstream is not None:
            split_address(upstream, "upstream")
        new_listen = listen if listen is not None else self.listen
        new_upstream = upstream if upstream is not None else self.upstream
        if self.differs(new_listen, new_upstream):
            was_enabled = self.enabled
            await self.disable()
            self.listen, self.upstream = new_listen, new_upstream
            if enabled is None:
                enabled = was_enabled
        if enabled is True:
            await self.enable()
        elif enabled is False:
            await self.disable()

    def differs(self, listen: str, upstream: str) -> bool:
        """Whether a create asking for ``listen`` -> ``upstream`` wants another proxy."""
        if upstream != self.upstream:
            return True
        if listen == self.listen:
            return False
        return resolve(listen, "listen") != resolve(self.listen, "listen")

    # -- toxics

    def add_toxic(
        self,
        type_: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Toxic:
        """``proxy.add_toxic("latency", stream="upstream", latency=100, jitter=10)``; takes
        effect on live connections at once."""
        return self.attach(
            Toxic.create(type_, name=name, stream=stream, toxicity=toxicity, **attributes)
        )

    def attach(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise FaultProxyError(409, f"toxic already exists: {toxic.name}")
        self.toxics[toxic.name] = toxic
        for conn in list(self.connections):
            conn.links[toxic.stream].attach(toxic)
        return toxic

    def toxic(self, name: str) -> Toxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise FaultProxyError(
                404, f"toxic not found: {name} (proxy {self.name} has "
                f"{', '.join(self.toxics) or 'no toxics'})"
            ) from None

    def update_toxic(
        self,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Toxic:
        doc: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            doc["toxicity"] = toxicity
        return self.update_toxic_json(name, doc)

    def update_toxic_json(self, name: str, doc: object) -> Toxic:
        toxic = self.toxic(name).updated(doc)
        self.toxics[name] = toxic
        for conn in list(self.connections):
            conn.links[toxic.stream].update(toxic)
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxic(name)
        del self.toxics[name]
        for conn in list(self.connections):
            conn.links[toxic.stream].detach(name)

    def reset_toxics(self) -> None:
        for name in list(self.toxics):
            self.remove_toxic(name)

    # -- views

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy object; ``stats`` is ours (clients ignore unknown keys)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics_in_chain_order()],
            "stats": {
                "connections_total": self.stats.connections_total,
                "connections_active": len(self.connections),
                **{
                    stream: {
                        "bytes_received": self.stats.direction(stream).received,
                        "bytes_sent": self.stats.direction(stream).sent,
                    }
                    for stream in STREAMS
                },
            },
        }

    def toxics_in_chain_order(self) -> list[Toxic]:
        """Upstream toxics, then downstream ones, each in the order added (as Toxiproxy)."""
        return [t for s in STREAMS for t in self.toxics.values() if t.stream == s]


# --------------------------------------------------------------------------- the collection

__all__ = [
    "Connection",
    "DirectionStats",
    "FaultProxyError",
    "Link",
    "Proxy",
    "ProxyStats",
]
