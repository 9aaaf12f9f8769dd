"""The ``containers`` runtime: InfluxDB, the fake weather API and every pipeline service in a
container of its own (testcontainers), on one Docker network per run. Inside that network a
service is reached by its name (``http://storage:8080``); the harness reaches each one on a
port published to 127.0.0.1 only.

Faults are the engine's: stop (SIGTERM, SIGKILL after a timeout), kill, pause (the cgroup
freezer: the whole container, every thread), restart, and network disconnect/reconnect.

Logs: while a container runs, a thread copies its output into ``logs/<service>.log`` (the docker
SDK streams by blocking), so the files are live during a run, complete once it stops, and
``log_tail`` reads a file instead of waiting on the engine.

Clean-up: every container and network carries the run id and its owner (host, pid, process
start time) as labels. ``close()`` removes by the run's label, whatever happened before it.
Ryuk, testcontainers' reaper, needs an image that only a registry has; where the engine lacks
it Ryuk is disabled, and ``remove_leftovers()``, run before each new run, removes what a
harness that died before its ``close()`` (SIGKILL, power cut) left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import docker
import docker.errors
import httpx
import requests
from docker.models.containers import Container
from docker.models.networks import Network as DockerNetwork
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.docker_client import DockerClient
from testcontainers.core.network import Network

from .. import disk_filler
from ..base import HarnessHost, Runtime, RuntimeError_, ServiceName, Unsupported, Wiring
from ..faketime import faketime_env, offset_text
from ..ports import free_ports
from ..tmpfs import FILLER_NAME
from ..toxiproxy import HOP_ENDS, ProxySpec, ToxiproxyClient
from ..wiring import pipeline_env
from .engine import HOW_TO_GET_AN_ENGINE
from .images import INFLUXDB_PORT, ImagesError, ImageSet, ensure_images

log = logging.getLogger(__name__)

RUN_LABEL = "io.ha-cutover.run"
OWNER_LABEL = "io.ha-cutover.owner"
SERVICE_LABEL = "io.ha-cutover.service"
RUN_DIR_LABEL = "io.ha-cutover.run-dir"

SERVICE_PORT = 8080  # every pipeline service and the weather API, each in its own container
DATA_ROOT = "/var/lib/cutover"  # the pipeline image's WORKDIR: durable queues, admin's state
CONTAINER_LIBFAKETIME = "/usr/local/lib/libfaketime.so.1"  # linked by pipeline.Dockerfile
CONTAINER_CLOCK_FILE = "/etc/cutover-clock"  # the container's own layer, not its data disk
# The name containers use for the host when the harness has to listen on every interface
# (see harness_host); docker maps it to the host's address on its default bridge.
HOST_GATEWAY_NAME = "host.docker.internal"
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


# -- where the fake Home Assistant listens ----------------------------------------------------

async def harness_host() -> HarnessHost:
    """Where the harness's own servers must listen for containers to reach them.

    The fake Home Assistant runs in the harness process (its ledger is the ground truth), so
    the containers must reach the host. The host's address on docker's default bridge (the
    ``host-gateway`` of ``--add-host``) is the one to use: it exists before the run's network
    does (the fake is started, and its URL known, before the runtime is built), every
    container on every bridge network reaches it, and binding there rather than on 0.0.0.0
    keeps the fake off the machine's real interfaces. Only where that address is not on this
    machine (Docker Desktop, rootless: the engine runs elsewhere) is there no choice but
    0.0.0.0, with the containers using docker's ``host.docker.internal`` name.
    """
    return await asyncio.to_thread(_harness_host)


def _harness_host() -> HarnessHost:
    client = _engine()
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


def _engine() -> docker.DockerClient:
    """A client of the engine testcontainers uses (it honours DOCKER_HOST and docker contexts)."""
    try:
        return DockerClient().client
    except ENGINE_ERRORS as exc:
        raise RuntimeError_(f"no Docker engine answers ({exc}): {HOW_TO_GET_AN_ENGINE}") from exc


# -- leftovers --------------------------------------------------------------------------------

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
    client = _engine()
    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if not _owner_alive(container.labels.get(OWNER_LABEL, "")):
                _quietly(partial(container.remove, force=True, v=True))
                removed.append(f"container {container.name}")
        for network in client.networks.list(filters={"label": OWNER_LABEL}):
            if not _owner_alive(network.attrs.get("Labels", {}).get(OWNER_LABEL, "")):
                _quietly(network.remove)
                removed.append(f"network {network.name}")
    finally:
        client.close()
    return removed


def _quietly(action: Callable[[], object]) -> None:
    """Removal that may race another clean-up: gone already is as good as removed."""
    with contextlib.suppress(docker.errors.NotFound):
        action()


# -- the services -----------------------------------------------------------------------------

@dataclass
class _Service:
    name: ServiceName
    command: list[str] | None  # None: the image's own (InfluxDB)
    env: dict[str, str]
    port: int  # inside the container
    host_port: int  # published on 127.0.0.1, for the harness
    health_path: str = "/health"
    healthy_status: int = 200
    container: DockerContainer | None = None
    alive: bool = False  # started and not seen to stop since
    paused: bool = False
    disconnected: bool = False
    follower: threading.Thread | None = None
    generation: int = 0  # which start the follower belongs to
    log_path: Path = field(default=Path("/dev/null"))
    skewable: bool = False  # started with libfaketime (a clock_skew target)
    disk_bytes: int | None = None  # its data dir is a tmpfs of this size (a disk_full target)

    @property
    def wrapped(self) -> Container:
        assert self.container is not None
        return self.container.get_wrapped_container()


def _plan(w: Wiring) -> dict[ServiceName, _Service]:
    """The process runtime's wiring (harness/runtime/process.py), with URLs by network alias."""
    url = {name: f"http://{name}:{SERVICE_PORT}" for name in
           ("weather", "legacy", "ingestion", "enrichment", "storage", "admin")}
    url["influxdb"] = f"http://influxdb:{INFLUXDB_PORT}"
    # 0.0.0.0 inside the container's own network namespace: reachable by alias and through
    # the published port, which is itself bound to 127.0.0.1 on the host.
    common = {"CUTOVER_HOST": "0.0.0.0", "CUTOVER_PORT": str(SERVICE_PORT),  # noqa: S104
              "CUTOVER_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    proxied = {hop: f"{PROXY_ALIAS}:{_port(spec)}" for hop, spec in proxy_specs(w).items()}
    env = pipeline_env(w, url, proxied=proxied, state_file=f"{DATA_ROOT}/admin/migration.json")
    host_ports = iter(free_ports(8))  # published ports, all distinct (see runtime/ports.py)

    def next_host_port() -> int:
        return next(host_ports)

    def py(name: ServiceName, env: dict[str, str]) -> _Service:
        skewable = name in w.skewable
        # The image links libfaketime at one path for every architecture (pipeline.Dockerfile);
        # the offset file lives outside the data dir, which a disk_full may fill.
        clock = faketime_env(CONTAINER_LIBFAKETIME, CONTAINER_CLOCK_FILE) if skewable else {}
        return _Service(name, ["python", "-m", f"pipeline.{name}"],
                        {**common, "CUTOVER_DATA_DIR": f"{DATA_ROOT}/{name}", **env, **clock},
                        SERVICE_PORT, next_host_port(), skewable=skewable,
                        disk_bytes=w.small_disks.get(name))

    services = {
        "influxdb": _Service("influxdb", None, {}, INFLUXDB_PORT, next_host_port(),
                             health_path="/ping", healthy_status=204),
        "weather": _Service("weather", ["python", "-m", "simulators.weather", "--host",
                                        "0.0.0.0",  # noqa: S104 - as CUTOVER_HOST above
                                        "--port", str(SERVICE_PORT), "--api-key",
                                        w.weather_api_key, "--seed", str(w.seed)],
                            {"PYTHONUNBUFFERED": "1"}, SERVICE_PORT, next_host_port()),
        **{name: py(name, env[name])  # type: ignore[arg-type]
           for name in ("legacy", "ingestion", "enrichment", "storage", "admin")},
    }
    if w.fault_proxy:
        services[PROXY_ALIAS] = _Service(  # type: ignore[index]
            PROXY_ALIAS, ["python", "-m", "simulators.faultproxy", "--host",  # type: ignore[arg-type]
                          "0.0.0.0", "--port", str(PROXY_API_PORT),  # noqa: S104
                          # the hops listen on the container's own network, not loopback
                          "--allow-remote-listen"],
            {"PYTHONUNBUFFERED": "1"}, PROXY_API_PORT, next_host_port(), health_path="/version")
    return services


PROXY_ALIAS = "faultproxy"
PROXY_API_PORT = 8474  # Toxiproxy's
_FIRST_HOP_PORT = 21001


def proxy_specs(w: Wiring) -> dict[str, ProxySpec]:
    """Each hop listening on its own port in the proxy's container, forwarding by alias
    (Home Assistant: the harness's address on the bridge, as the services reach it)."""
    if not w.fault_proxy:
        return {}
    ha_host = w.ha_url.split("://", 1)[1].split("/", 1)[0]
    specs = {}
    for i, (hop, (_, server)) in enumerate(HOP_ENDS.items()):
        upstream = ha_host if server == "ha" else (
            f"influxdb:{INFLUXDB_PORT}" if server == "influxdb" else f"{server}:{SERVICE_PORT}")
        specs[hop] = ProxySpec(hop, f"0.0.0.0:{_FIRST_HOP_PORT + i}", upstream)  # noqa: S104
    return specs


def _port(spec: ProxySpec) -> int:
    return int(spec.listen.rsplit(":", 1)[1])


# -- log copying ------------------------------------------------------------------------------

def _copy_logs(container: Container, since: float, path: Path,
               on_end: Callable[[], None]) -> None:
    """Append the container's output from ``since`` to ``path`` until the container stops."""
    try:
        with path.open("ab") as out:
            for chunk in container.logs(stream=True, follow=True, since=since):
                out.write(chunk)
                out.flush()
    except (*ENGINE_ERRORS, OSError) as exc:  # the container was removed under us
        log.debug("log copy of %s ended: %s", container.name, exc)
    finally:
        on_end()


_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _docker_time(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, which datetime cannot parse, as epoch seconds."""
    m = _DOCKER_TIME.match(text)
    if m is None:
        raise ValueError(f"not a docker timestamp: {text!r}")
    whole, frac, zone = m.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return seconds + (float(f"0.{frac}") if frac else 0.0)


# -- the runtime ------------------------------------------------------------------------------

class ContainersRuntime(Runtime):
    name = "containers"

    def __init__(self, wiring: Wiring, *, images: ImageSet | None = None) -> None:
        if wiring.service_modules:
            # The image carries pipeline/ and simulators/ only: the mutants live in tests/.
            raise Unsupported("replacement service modules (mutants) run on --runtime process "
                              f"only; asked for {wiring.service_modules}")
        self.wiring = wiring
        self.run_id = secrets.token_hex(4)
        self.labels = {RUN_LABEL: self.run_id, OWNER_LABEL: owner_id(),
                       RUN_DIR_LABEL: str(wiring.run_dir)}
        self.logs_dir = wiring.run_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._images = images
        self._services = _plan(wiring)
        for svc in self._services.values():
            svc.log_path = self.logs_dir / f"{svc.name}.log"
        self._order: list[ServiceName] = []  # start order, for a reverse-order close
        self._http = httpx.AsyncClient(timeout=2.0)
        self._network: Network | None = None
        self._docker_network: DockerNetwork | None = None
        self._touched_engine = False  # from then on close() removes by label
        self._prepared = asyncio.Lock()
        self._closed = False
        if wiring.fault_proxy:
            self.fault_proxy = ToxiproxyClient(self.url(PROXY_ALIAS), self._http)  # type: ignore[arg-type]

    def _get(self, service: ServiceName) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            raise RuntimeError_(f"unknown service {service!r}: expected one of "
                                f"{', '.join(self._services)}") from None

    # -- once per run: images, leftovers, the network -------------------------------------------

    async def _prepare(self) -> None:
        async with self._prepared:
            if self._closed:
                raise RuntimeError_("the containers runtime is closed")
            if self._network is not None:
                return
            removed = await remove_leftovers()
            if removed:
                log.warning("removed what a dead harness left behind: %s", ", ".join(removed))
            if self._images is None:
                try:
                    self._images = await ensure_images()
                except ImagesError as exc:
                    raise RuntimeError_(f"container images: {exc}") from exc
            self._touched_engine = True
            self._network, self._docker_network = await asyncio.to_thread(self._create_network)

    def _create_network(self) -> tuple[Network, DockerNetwork]:
        client = _engine()
        try:
            _ryuk_only_if_present(client)
            network = Network(docker_network_kw={"driver": "bridge", "labels": self.labels})
            network.name = f"cutover-{self.run_id}"
            network.create()
            return network, client.networks.get(network.name)
        except ENGINE_ERRORS as exc:
            client.close()
            raise RuntimeError_(f"cannot create the run's network: {exc}") from exc

    def _new_container(self, svc: _Service) -> DockerContainer:
        assert self._images is not None and self._network is not None
        image = self._images.influxdb if svc.name == "influxdb" else self._images.pipeline
        container = DockerContainer(
            image, name=f"cutover-{self.run_id}-{svc.name}", env=svc.env,
            network=self._network, network_aliases=[svc.name],
            labels={**self.labels, SERVICE_LABEL: svc.name},
            # docker-init as PID 1 forwards SIGTERM and reaps: `stop` is then a real graceful
            # stop of the service, not a signal PID 1 may ignore until the SIGKILL.
            init=True,
            extra_hosts={HOST_GATEWAY_NAME: "host-gateway"})
        if svc.command is not None:
            container.with_command(svc.command)
        if svc.disk_bytes is not None:
            # docker's tmpfs mount (emptied when the container stops: only services no fault
            # stops get one). testcontainers >= 4.13 has its own tmpfs argument; older ones
            # pass it through to docker.
            where, options = f"{DATA_ROOT}/{svc.name}", f"size={svc.disk_bytes},mode=0755"
            if isinstance(getattr(container, "tmpfs", None), dict):
                container.tmpfs[where] = options
            else:
                container.with_kwargs(tmpfs={where: options})
        # Published on 127.0.0.1 only (with_bind_ports would take every interface), on a port
        # chosen here: the URL the harness holds stays valid across stop/start.
        container.ports[f"{svc.port}/tcp"] = ("127.0.0.1", svc.host_port)  # type: ignore[assignment]
        return container

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, service: ServiceName) -> None:
        svc = self._get(service)
        await self._prepare()
        if self.fault_proxy is not None and service != PROXY_ALIAS \
                and not self.running(PROXY_ALIAS):  # type: ignore[arg-type]
            await self._start_fault_proxy()
        try:
            if svc.container is None:
                # Built on the worker thread too: DockerContainer() asks the engine its version.
                svc.container = await asyncio.to_thread(self._new_container, svc)
                await asyncio.to_thread(svc.container.start)
            else:
                if await self._status(svc) in ("running", "paused"):
                    return
                # The same container again: its filesystem (durable queues, admin's state,
                # InfluxDB's volume) survives a stop or a kill, as a process's data dir does.
                await asyncio.to_thread(svc.wrapped.start)
        except ENGINE_ERRORS as exc:
            raise RuntimeError_(f"cannot start {service}: {exc}") from exc
        svc.alive, svc.paused = True, False
        if service not in self._order:
            self._order.append(service)
        await self._follow(svc)

    async def _start_fault_proxy(self) -> None:
        """The proxy first, with every hop, before anything connects through it."""
        await self.start(PROXY_ALIAS)  # type: ignore[arg-type]
        await self.wait_healthy(PROXY_ALIAS, 30)  # type: ignore[arg-type]
        assert self.fault_proxy is not None
        existing = await self.fault_proxy.proxies()
        for hop, spec in proxy_specs(self.wiring).items():
            if hop not in existing:
                await self.fault_proxy.create(spec)

    async def stop(self, service: ServiceName, timeout: float = 20.0) -> None:
        svc = self._get(service)
        status = "gone" if svc.container is None else await self._status(svc)
        if status not in ("running", "paused"):
            return
        try:
            if status == "paused":
                # A frozen container cannot act on SIGTERM: docker would wait out the timeout
                # and SIGKILL it. Thaw first, as the process runtime sends SIGCONT.
                await asyncio.to_thread(svc.wrapped.unpause)
                svc.paused = False
            await asyncio.to_thread(svc.wrapped.stop, timeout=max(1, round(timeout)))
        except ENGINE_ERRORS as exc:
            raise RuntimeError_(f"cannot stop {service}: {exc}") from exc
        svc.alive = False
        await self._join_follower(svc)

    async def kill(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.container is not None and await self._status(svc) in ("running", "paused"):
            try:
                await asyncio.to_thread(svc.wrapped.kill)  # SIGKILL; a paused one dies too
            except docker.errors.APIError as exc:
                if await self._status(svc) in ("running", "paused"):
                    raise RuntimeError_(f"cannot kill {service}: {exc}") from exc
        svc.alive = svc.paused = False
        await self._join_follower(svc)

    async def pause(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.container is None or await self._status(svc) != "running":
            raise RuntimeError_(f"cannot pause {service}: it is not running")
        await self._engine_call(f"pause {service}", svc.wrapped.pause)
        svc.paused = True

    async def resume(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.container is not None and await self._status(svc) == "paused":
            await self._engine_call(f"resume {service}", svc.wrapped.unpause)
        svc.paused = False

    async def disconnect(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.container is None or self._docker_network is None:
            raise RuntimeError_(f"cannot disconnect {service}: it was never started")
        if svc.disconnected:
            return
        # Its published port goes with its only network: the harness loses it too, as a
        # client elsewhere would.
        await self._engine_call(f"disconnect {service}", self._docker_network.disconnect,
                                svc.wrapped.id)
        svc.disconnected = True

    async def reconnect(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.container is None or self._docker_network is None or not svc.disconnected:
            return
        await self._engine_call(f"reconnect {service}", self._docker_network.connect,
                                svc.wrapped.id, aliases=[svc.name])
        svc.disconnected = False

    # -- host faults (clock_skew, disk_full), done inside the container --------------------------

    async def set_clock_offset(self, service: ServiceName, offset_s: float) -> None:
        svc = self._get(service)
        if not svc.skewable:
            raise RuntimeError_(f"{service} was not started with a movable clock: the runner "
                                "starts only the targets of the scenario's clock_skew faults so")
        # Written beside and renamed over, as on processes: never a half-written offset.
        await self._exec(svc, ["sh", "-c", 'printf "%s\\n" "$1" > "$2.tmp" && mv "$2.tmp" "$2"',
                               "sh", offset_text(offset_s), CONTAINER_CLOCK_FILE])

    async def fill_disk(self, service: ServiceName) -> int:
        svc = self._get(service)
        if svc.disk_bytes is None:
            raise RuntimeError_(f"{service}'s data directory is not on a small disk: the runner "
                                "mounts one only for the targets of the scenario's disk_full faults")
        out = await self._exec(svc, ["python", "-c", _FILL_SCRIPT,
                                     f"{DATA_ROOT}/{service}/{FILLER_NAME}"])
        return int(out.strip() or 0)

    async def free_disk(self, service: ServiceName) -> None:
        svc = self._get(service)
        if svc.disk_bytes is not None and svc.container is not None \
                and await self._status(svc) == "running":
            await self._exec(svc, ["rm", "-f", f"{DATA_ROOT}/{service}/{FILLER_NAME}"])

    async def _exec(self, svc: _Service, argv: list[str]) -> str:
        if svc.container is None or await self._status(svc) != "running":
            raise RuntimeError_(f"cannot reach inside {svc.name}: it is not running")
        try:
            code, out = await asyncio.to_thread(svc.wrapped.exec_run, argv)
        except ENGINE_ERRORS as exc:
            raise RuntimeError_(f"cannot exec in {svc.name}: {exc}") from exc
        text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        if code != 0:
            raise RuntimeError_(f"{argv[0]} in {svc.name} failed ({code}): {text[-300:]}")
        return text

    async def wait_healthy(self, service: ServiceName, timeout: float) -> None:
        # The wait strategy: /health (InfluxDB: /ping) on the published port. Our own poll
        # rather than testcontainers' HttpWaitStrategy, which blocks a thread in time.sleep
        # and waits out its timeout on a container that has already exited.
        svc = self._get(service)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "no answer"
        while loop.time() < deadline:
            if svc.container is None:
                raise RuntimeError_(f"{service} is not started")
            if not svc.alive and await self._status(svc) not in ("running", "paused"):
                code = svc.wrapped.attrs.get("State", {}).get("ExitCode")
                raise RuntimeError_(f"{service} exited with status {code}; last log lines:\n"
                                    + "\n".join(self.log_tail(service, 20)))
            try:
                r = await self._http.get(f"{self.url(service)}{svc.health_path}")
                if r.status_code == svc.healthy_status:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.1)
        raise RuntimeError_(f"{service} not healthy after {timeout:g} s (last: {last}); "
                            "last log lines:\n" + "\n".join(self.log_tail(service, 20)))

    def url(self, service: ServiceName) -> str:
        return f"http://127.0.0.1:{self._get(service).host_port}"

    def running(self, service: ServiceName) -> bool:
        # Answered from what we did and what the log follower saw end: the monitor asks every
        # tick, and the engine is not to be waited on from the event loop.
        svc = self._get(service)
        return svc.container is not None and svc.alive and not svc.paused

    def log_tail(self, service: ServiceName, lines: int = 40) -> list[str]:
        try:
            text = self._get(service).log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return text.splitlines()[-lines:]

    async def close(self) -> None:
        if self._closed:
            return
        async with self._prepared:  # not while a start is creating the network
            self._closed = True
        try:
            # Pipeline first (so it can flush into InfluxDB), InfluxDB last.
            order = [s for s in reversed(self._order) if s not in ("influxdb", PROXY_ALIAS)]
            await asyncio.gather(*(self.stop(s, timeout=10.0) for s in order),
                                 return_exceptions=True)
            last = [s for s in ("influxdb", PROXY_ALIAS) if s in self._order]
            await asyncio.gather(*(self.stop(s, timeout=10.0) for s in last),  # type: ignore[arg-type]
                                 return_exceptions=True)
        finally:
            # Whatever the stops did (an engine error, a second Ctrl-C is another matter):
            # remove everything with the run's label, then let the log copies finish.
            if self._touched_engine:
                await asyncio.to_thread(self._remove_run)
            for svc in self._services.values():
                await self._join_follower(svc)
            await self._http.aclose()

    def _remove_run(self) -> None:
        try:
            client = _engine()
        except RuntimeError_ as exc:  # the engine went away: nothing can be removed now
            log.warning("run %s: clean-up impossible: %s", self.run_id, exc)
            return
        label = {"label": f"{RUN_LABEL}={self.run_id}"}
        try:
            for container in client.containers.list(all=True, filters=label):
                _quietly(partial(container.remove, force=True, v=True))
            for network in client.networks.list(filters=label):
                _quietly(network.remove)
        except ENGINE_ERRORS as exc:
            log.warning("run %s: clean-up incomplete (%s); remove_leftovers() will finish it "
                        "once this process is gone", self.run_id, exc)
        finally:
            client.close()
            for svc in self._services.values():
                if svc.container is not None:
                    svc.container.get_docker_client().client.close()
            if self._docker_network is not None:
                self._docker_network.client.close()

    # -- helpers --------------------------------------------------------------------------------

    async def _status(self, svc: _Service) -> str:
        """The engine's word: created, running, paused, exited, dead, or gone."""
        try:
            await asyncio.to_thread(svc.wrapped.reload)
        except docker.errors.NotFound:
            return "gone"
        except ENGINE_ERRORS as exc:
            raise RuntimeError_(f"cannot inspect {svc.name}: {exc}") from exc
        status = str(svc.wrapped.status)
        svc.paused = status == "paused"
        return status

    async def _engine_call(self, what: str, call: Callable[..., object], *args: object,
                           **kwargs: object) -> None:
        try:
            await asyncio.to_thread(call, *args, **kwargs)
        except ENGINE_ERRORS as exc:
            raise RuntimeError_(f"cannot {what}: {exc}") from exc

    async def _follow(self, svc: _Service) -> None:
        """Copy this start's output (not the earlier starts': they are in the file already)."""
        await asyncio.to_thread(svc.wrapped.reload)  # StartedAt of this start
        since = _docker_time(svc.wrapped.attrs["State"]["StartedAt"]) - 0.001
        svc.generation += 1
        generation = svc.generation
        loop = asyncio.get_running_loop()

        def ended() -> None:  # on the loop: only the follower of the latest start counts
            if svc.generation == generation:
                svc.alive = svc.paused = False

        def on_end() -> None:  # in the follower thread
            # RuntimeError: the loop is closed, nobody is asking any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ended)

        svc.follower = threading.Thread(target=_copy_logs, name=f"logs-{svc.name}",
                                        args=(svc.wrapped, since, svc.log_path, on_end),
                                        daemon=True)
        svc.follower.start()

    async def _join_follower(self, svc: _Service, timeout: float = 5.0) -> None:
        if svc.follower is not None:
            await asyncio.to_thread(svc.follower.join, timeout)


# Inside the container (no harness code there): the filler module itself, run as a script.
_FILL_SCRIPT = Path(disk_filler.__file__).read_text()


def _ryuk_only_if_present(client: docker.DockerClient) -> None:
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
