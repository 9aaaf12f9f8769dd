"""Where the Docker engine is, and so where the harness reaches what the containers publish.

An engine on this machine (its unix socket) publishes on loopback, as before. An engine named
by ``DOCKER_HOST`` (or a docker context) on another host publishes on that host: the harness
reaches a service at that host's name, and the containers reach the fake Home Assistant at
this machine's address as the engine's host sees it. Which engine is which is read from the
environment alone, as testcontainers reads it (``TC_HOST`` overrides the host to reach), so
a runtime knows its URLs before it has spoken to the engine.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from testcontainers.core.docker_client import get_docker_host

__all__ = ["LOCAL_ENGINE", "EnginePlace", "address_facing", "engine_place"]

#: The engine images are built on and sent from when the run's engine is elsewhere.
LOCAL_ENGINE = "unix:///var/run/docker.sock"
#: Overrides: the engine images come from, and this machine's address for the containers.
SOURCE_VAR = "CUTOVER_IMAGE_SOURCE"
HARNESS_ADDRESS_VAR = "CUTOVER_HARNESS_ADDRESS"

_NETWORK_SCHEMES = ("tcp", "http", "https", "ssh")


@dataclass(frozen=True, slots=True)
class EnginePlace:
    docker_host: str | None  # as given (DOCKER_HOST or a context); None: the local default
    host: str  # where the harness reaches a published port
    publish_on: str  # the address a published port binds on the engine's host
    image_source: str  # the engine images are built on when this one is elsewhere

    @property
    def elsewhere(self) -> bool:
        """Not the engine images are built on: they have to be sent to it."""
        return self.docker_host is not None and self.docker_host != self.image_source

    @property
    def over_network(self) -> bool:
        """Reached over TCP on another host: its containers cannot reach our loopback."""
        return not _is_loopback(self.host)


def engine_place(env: Mapping[str, str] | None = None) -> EnginePlace:
    env = os.environ if env is None else env
    docker_host = env.get("DOCKER_HOST") or get_docker_host()
    source = env.get(SOURCE_VAR) or LOCAL_ENGINE
    url = urllib.parse.urlparse(docker_host or "")
    override = env.get("TC_HOST") or env.get("TESTCONTAINERS_HOST_OVERRIDE")
    if override:
        host = override
    elif url.scheme in _NETWORK_SCHEMES and url.hostname:
        host = url.hostname
    else:  # a unix socket (or none given): the engine is on this machine
        host = "127.0.0.1"
    # On the engine's own loopback only when that is where we are; otherwise on its every
    # interface, since the harness comes from the network (say so in the runbook: the
    # services' ports are then open on that host for the run's length).
    publish_on = "127.0.0.1" if _is_loopback(host) else "0.0.0.0"  # noqa: S104
    return EnginePlace(docker_host, host, publish_on, source)


def address_facing(host: str, env: Mapping[str, str] | None = None) -> str:
    """This machine's address on the route to ``host``: where a remote engine's containers
    reach the harness (``CUTOVER_HARNESS_ADDRESS`` overrides, for NAT and tunnels)."""
    env = os.environ if env is None else env
    if env.get(HARNESS_ADDRESS_VAR):
        return env[HARNESS_ADDRESS_VAR]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))  # UDP connect sends nothing: it only picks the route
        return str(probe.getsockname()[0])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False
