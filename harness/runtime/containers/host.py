"""Where the fake Home Assistant listens for the containers to reach it, and the client of
the Docker engine the containers runtime uses (the one testcontainers uses)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import docker
import docker.errors
import requests
from testcontainers.core.docker_client import DockerClient

from harness.errors import RuntimeFailed

from ..base import HarnessHost
from .engine import HOW_TO_GET_AN_ENGINE
from .place import address_facing, engine_place

__all__ = ["ENGINE_ERRORS", "HOST_GATEWAY_NAME", "engine_client", "harness_host"]

log = logging.getLogger(__name__)

# The name containers use for the host when the harness has to listen on every interface
# (see harness_host); docker maps it to the host's address on its default bridge.
HOST_GATEWAY_NAME = "host.docker.internal"
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


async def harness_host() -> HarnessHost:
    """Where the harness's own servers must listen for containers to reach them.

    The fake Home Assistant runs in the harness process (its ledger is the ground truth), so
    the containers must reach the host. The host's address on docker's default bridge (the
    ``host-gateway`` of ``--add-host``) is the one to use: it exists before the run's network
    does (the fake is started, and its URL known, before the runtime is built), every
    container on every bridge network reaches it, and binding there rather than on 0.0.0.0
    keeps the fake off the machine's real interfaces. Only where that address is not on this
    machine (Docker Desktop, rootless: the engine runs elsewhere) is there no choice but
    0.0.0.0, with the containers using docker's ``host.docker.internal`` name. An engine on
    another host (``DOCKER_HOST=tcp://...``, see ``place``) reaches this machine at the
    address this machine has on the route to it.
    """
    return await asyncio.to_thread(_harness_host)


def _harness_host() -> HarnessHost:
    place = engine_place()
    if place.over_network:
        # The engine's bridge is on its own host: its containers reach this machine by the
        # address this machine has on the way to that host.
        address = address_facing(place.host)
        return HarnessHost(bind=address, reach=address)
    client = engine_client()
    try:
        gateway = _default_bridge_gateway(client)
    finally:
        client.close()
    if gateway is not None and _is_local_address(gateway):
        return HarnessHost(bind=gateway, reach=gateway)
    log.warning("docker's default bridge gateway (%s) is not an address of this machine: the "
                "fake Home Assistant listens on every interface", gateway or "none")
    return HarnessHost(bind="0.0.0.0", reach=HOST_GATEWAY_NAME)  # noqa: S104 - see docstring


def _default_bridge_gateway(client: docker.DockerClient) -> str | None:
    try:
        configs = client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []
    except docker.errors.NotFound:
        return None
    for config in configs:
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet"):  # older engines leave Gateway out: it is the subnet's first
            net = ipaddress.ip_network(config["Subnet"], strict=False)
            if net.version == 4:
                return str(next(net.hosts()))
    return None


def _is_local_address(address: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            log.debug("cannot bind %s: %s", address, exc)
            return False
    return True


def engine_client() -> docker.DockerClient:
    """A client of the engine testcontainers uses (it honours DOCKER_HOST and docker contexts)."""
    try:
        return DockerClient().client
    except ENGINE_ERRORS as exc:
        raise RuntimeFailed(f"no Docker engine answers ({exc}): {HOW_TO_GET_AN_ENGINE}") from exc
