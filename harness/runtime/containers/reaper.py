"""Clean-up of what a dead harness left behind.

Every container and network carries the run id and its owner (host, pid, process start time)
as labels; the runtime's ``close()`` removes by the run's label, whatever happened before it.
Ryuk, testcontainers' reaper, needs an image that only a registry has; where the engine lacks
it Ryuk is disabled, and ``remove_leftovers()``, run before each new run, removes what a
harness that died before its ``close()`` (SIGKILL, power cut) left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path

import docker
import docker.errors
from testcontainers.core.config import testcontainers_config

from .host import engine_client

__all__ = ["OWNER_LABEL", "RUN_DIR_LABEL", "RUN_LABEL", "SERVICE_LABEL", "owner_id", "quietly",
           "remove_leftovers", "ryuk_only_if_present"]

RUN_LABEL = "io.ha-cutover.run"
OWNER_LABEL = "io.ha-cutover.owner"
SERVICE_LABEL = "io.ha-cutover.service"
RUN_DIR_LABEL = "io.ha-cutover.run-dir"


def owner_id(pid: int | None = None) -> str:
    """``host/pid/start-time``: the pid alone is not enough, pids are reused."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    # Field 22 (start time), counted after the ")" closing the command name (it may hold spaces).
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition("/")
    pid, _, ticks = rest.partition("/")
    if host != socket.gethostname():
        return True  # another machine's harness: not ours to judge
    if not pid.isdigit():
        return False
    if ticks != "?":
        return _start_ticks(int(pid)) == ticks
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def remove_leftovers() -> list[str]:
    """Remove every container and network labelled by ha-cutover whose harness process is
    gone; one line per thing removed."""
    return await asyncio.to_thread(_remove_leftovers)


def _remove_leftovers() -> list[str]:
    client = engine_client()
    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if not _owner_alive(container.labels.get(OWNER_LABEL, "")):
                quietly(partial(container.remove, force=True, v=True))
                removed.append(f"container {container.name}")
        for network in client.networks.list(filters={"label": OWNER_LABEL}):
            if not _owner_alive(network.attrs.get("Labels", {}).get(OWNER_LABEL, "")):
                quietly(network.remove)
                removed.append(f"network {network.name}")
    finally:
        client.close()
    return removed


def quietly(action: Callable[[], object]) -> None:
    """Removal that may race another clean-up: gone already is as good as removed."""
    with contextlib.suppress(docker.errors.NotFound):
        action()


def ryuk_only_if_present(client: docker.DockerClient) -> None:
    """testcontainers starts Ryuk on the first container and pulls its image if the engine
    lacks it, which fails with no registry. There our own clean-up stands in (labels,
    ``close()``, ``remove_leftovers()``). The switch is testcontainers' own process-wide
    setting, which is where the library reads it."""
    if testcontainers_config.ryuk_disabled:
        return
    try:
        client.images.get(testcontainers_config.ryuk_image)
    except docker.errors.ImageNotFound:
        testcontainers_config.ryuk_disabled = True
