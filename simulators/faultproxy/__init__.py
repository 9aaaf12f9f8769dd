"""A TCP fault proxy with Toxiproxy's vocabulary and a Toxiproxy-compatible HTTP API.

No Toxiproxy binary can be installed where this project runs (Toxiproxy ships as release
downloads and container images, neither of which can be fetched here), so this is our own, in
asyncio, written from Toxiproxy's documented semantics (its README, toxics and HTTP API); no
code of it is copied. Deliberate differences are said where they are (proxy.py, toxics.py).

- Proxies: name, listen (``host:port``; port 0 picks a free one, reported back), upstream,
  enabled. Disabling ("down") closes the listener and every live connection; enabling listens
  again on the same port. Byte and connection counters per proxy (``stats`` in its JSON).
- Toxics (``stream`` upstream = client -> server, downstream = server -> client, the default;
  ``toxicity`` = chance a connection is affected, drawn per connection): latency, bandwidth,
  slow_close, timeout, reset_peer, slicer, limit_data, with Toxiproxy's attributes and units.
  Adding, updating or removing a toxic applies to live connections at once.
- With no toxic, bytes go straight from one socket to the other in the protocol callbacks.
- The HTTP API answers Toxiproxy's clients (tested with toxiproxy-python).
- Unlike Toxiproxy, proxies listen on loopback only: another ``listen`` address is refused
  (400) unless the server runs with ``--allow-remote-listen`` (listen.py says why).

In-process::

    async with FaultProxy(api_port=0) as fp:          # api_port=None: no HTTP API
        db = await fp.create("db", listen="127.0.0.1:0", upstream="127.0.0.1:8086")
        db.add_toxic("latency", stream="upstream", latency=100, jitter=10)
        await db.disable(); await db.enable()
        fp.api_url                                     # http://127.0.0.1:<port>

Standalone: ``python -m simulators.faultproxy --host 127.0.0.1 --port 8474 [--config f.json]``.
"""

from simulators.faultproxy.api import VERSION, ApiServer, build_app
from simulators.faultproxy.errors import FaultProxyError
from simulators.faultproxy.proxy import Proxy, ProxyStats
from simulators.faultproxy.server import FaultProxy
from simulators.faultproxy.toxics import TOXIC_TYPES, BadToxic, Toxic

__all__ = [
    "TOXIC_TYPES",
    "VERSION",
    "ApiServer",
    "BadToxic",
    "FaultProxy",
    "FaultProxyError",
    "Proxy",
    "ProxyStats",
    "Toxic",
    "build_app",
]
