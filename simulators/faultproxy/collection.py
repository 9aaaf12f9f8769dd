"""The collection of proxies, by name: create, delete, populate, reset (Toxiproxy's model:
the HTTP API wraps this; nothing here knows of the API)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from simulators.faultproxy.errors import FaultProxyError, join_address, split_address
from simulators.faultproxy.listen import is_loopback, listen_problem
from simulators.faultproxy.proxy import Proxy


class Proxies:
    """Every proxy, by name. :class:`~simulators.faultproxy.server.FaultProxy` adds the API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        seed: int | None = None,
        allow_remote_listen: bool = False,
    ) -> None:
        self.host = host
        #: off: every proxy listens on loopback only (see listen.py)
        self.allow_remote_listen = allow_remote_listen
        # A proxy created without ``listen`` takes the API's host, unless that is off
        # loopback and remote listeners are not allowed: then loopback, not a refusal.
        self.default_listen = (
            join_address(host, 0) if allow_remote_listen or is_loopback(host) else "127.0.0.1:0"
        )
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}

    async def close(self) -> None:
        """Disable every proxy (closes listeners and live connections)."""
        for proxy in list(self.proxies.values()):
            await proxy.disable()

    # -- proxies

    def check_listen(self, listen: str) -> None:
        """400 if ``listen`` is off loopback and remote listeners are not allowed."""
        host, _ = split_address(listen, "listen")
        problem = listen_problem(host, listen, allow_remote=self.allow_remote_listen)
        if problem is not None:
            raise FaultProxyError(400, problem)

    async def create(
        self, name: str, *, listen: str | None = None, upstream: str, enabled: bool = True
    ) -> Proxy:
        if name in self.proxies:
            raise FaultProxyError(409, f"proxy already exists: {name}")
        listen = listen or self.default_listen
        self.check_listen(listen)
        proxy = Proxy(
            name,
            listen=listen,
            upstream=upstream,
            rng=random.Random(self.rng.getrandbits(64)),
        )
        if enabled:
            await proxy.enable()
        self.proxies[name] = proxy
        return proxy

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise FaultProxyError(
                404, f"proxy not found: {name} (known: {', '.join(self.proxies) or 'none'})"
            ) from None

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        await proxy.disable()

    async def populate(self, items: Sequence[Mapping[str, Any]]) -> list[Proxy]:
        """Toxiproxy's /populate: create each proxy, or replace one of the same name whose
        listen or upstream differ; one that matches is left as it is."""
        specs = list(_proxy_specs(items, default_listen=self.default_listen))
        for _, listen, _, _ in specs:  # all checked before any proxy is replaced
            self.check_listen(listen)
        out: list[Proxy] = []
        for name, listen, upstream, enabled in specs:
            existing = self.proxies.get(name)
            if existing is not None:
                if not existing.differs(listen, upstream):
                    out.append(existing)
                    continue
                await self.delete(name)
            out.append(await self.create(name, listen=listen, upstream=upstream, enabled=enabled))
        return out

    async def reset(self) -> None:
        """Toxiproxy's /reset: every proxy enabled, every toxic removed."""
        for proxy in list(self.proxies.values()):
            await proxy.enable()
            proxy.reset_toxics()


def _proxy_specs(items: object, default_listen: str) -> Iterable[tuple[str, str, str, bool]]:
    if not isinstance(items, list):
        raise FaultProxyError(400, "bad request body: expected a JSON list of proxies")
    specs = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise FaultProxyError(400, f"bad request body: proxy {i} is not a JSON object")
        name, listen, upstream = item.get("name"), item.get("listen"), item.get("upstream")
        enabled = item.get("enabled", True)
        if not isinstance(name, str) or not name:
            raise FaultProxyError(400, f"missing required field: name at proxy {i}")
        if not isinstance(upstream, str) or not upstream:
            raise FaultProxyError(400, f"missing required field: upstream at proxy {i}")
        if listen is None or listen == "":
            listen = default_listen
        if not isinstance(listen, str) or not isinstance(enabled, bool):
            raise FaultProxyError(
                400, f"bad request body: proxy {i}: listen must be a string, enabled a boolean"
            )
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        specs.append((name, listen, upstream, enabled))
    return specs

__all__ = ["Proxies"]
