"""The ``containers`` runtime: InfluxDB, the fake weather API and every pipeline service in a
container of its own (testcontainers), on one Docker network per run. Inside that network a
service is reached by its name (``http://storage:8080``); the harness reaches each one on a
port published to 127.0.0.1 only.

Faults are the engine's: stop (SIGTERM, SIGKILL after a timeout), kill, pause (the cgroup
freezer: the whole container, every thread), restart, and network disconnect/reconnect.

The parts: where the fake Home Assistant listens (``host``), what runs in which container
(``plan``), the copy of each container's output into the run directory (``logs``), and the
clean-up by label of this run and of runs whose harness died (``reaper``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import docker
import docker.errors
import httpx
from docker.models.networks import Network as DockerNetwork
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness.errors import CommandFailed, ImagesError, RuntimeFailed, Unsupported
from harness.scenario.topology import Managed

from .. import disk_filler
from ..base import Runtime, Wiring
from ..faketime import offset_text
from ..tmpfs import FILLER_NAME
from ..toxiproxy import ToxiproxyClient
from .host import ENGINE_ERRORS, HOST_GATEWAY_NAME, engine_client
from .images import ImageSet, ensure_images
from .logs import copy_logs, docker_time
from .place import engine_place
from .plan import (
    CONTAINER_CLOCK_FILE,
    DATA_ROOT,
    PROXY_ALIAS,
    ContainerService,
    plan_services,
    proxy_specs,
)
from .reaper import (
    OWNER_LABEL,
    RUN_DIR_LABEL,
    RUN_LABEL,
    SERVICE_LABEL,
    owner_id,
    quietly,
    remove_leftovers,
    ryuk_only_if_present,
)
from .ship import bring

__all__ = ["ContainersRuntime"]

log = logging.getLogger(__name__)

INFLUXDB: Managed = "influxdb"


class ContainersRuntime(Runtime):
    name = "containers"

    def __init__(self, wiring: Wiring, *, images: ImageSet | None = None) -> None:
        for role, spec in wiring.pipeline.roles.items():
            if spec.image is None and any(part.startswith("tests.") for part in spec.command or ()):
                # The reference image carries pipeline/ and simulators/ only: not tests/.
                raise Unsupported(f"{role} runs {' '.join(spec.command or ())}, which is not in "
                                  "the reference image: give it an image of its own, or run "
                                  "with --runtime process (the mutants of tests/ run there)")
        self.wiring = wiring
        self.run_id = secrets.token_hex(4)
        self.labels = {RUN_LABEL: self.run_id, OWNER_LABEL: owner_id(),
                       RUN_DIR_LABEL: str(wiring.run_dir)}
        self.logs_dir = wiring.run_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._images = images
        self.place = engine_place()  # before any URL is handed out
        self._services = plan_services(wiring)
        for svc in self._services.values():
            svc.log_path = self.logs_dir / f"{svc.name}.log"
        self._order: list[Managed] = []  # start order, for a reverse-order close
        self._http = httpx.AsyncClient(timeout=2.0)
        self._network: Network | None = None
        self._docker_network: DockerNetwork | None = None
        self._touched_engine = False  # from then on close() removes by label
        self._prepared = asyncio.Lock()
        self._closed = False
        if wiring.fault_proxy:
            self.fault_proxy = ToxiproxyClient(self.url(PROXY_ALIAS), self._http)

    def _get(self, service: Managed) -> ContainerService:
        try:
            return self._services[service]
        except KeyError:
            raise RuntimeFailed(f"unknown service {service!r}: expected one of "
                                f"{', '.join(self._services)}") from None

    # -- once per run: images, leftovers, the network -------------------------------------------

    async def _prepare(self) -> None:
        async with self._prepared:
            if self._closed:
                raise RuntimeFailed("the containers runtime is closed")
            if self._network is not None:
                return
            removed = await remove_leftovers()
            if removed:
                log.warning("removed what a dead harness left behind: %s", ", ".join(removed))
            if self._images is None:
                try:
                    self._images = await ensure_images()
                except ImagesError as exc:
                    raise RuntimeFailed(f"container images: {exc}") from exc
            try:  # a pipeline file's own images, built here, sent to an engine elsewhere
                await bring([spec.image for spec in self.wiring.pipeline.roles.values()
                             if spec.image], self.place)
            except CommandFailed as exc:
                raise RuntimeFailed(f"the pipeline file's images: {exc}") from exc
            self._touched_engine = True
            self._network, self._docker_network = await asyncio.to_thread(self._create_network)

    def _create_network(self) -> tuple[Network, DockerNetwork]:
        client = engine_client()
        try:
            ryuk_only_if_present(client)
            network = Network(docker_network_kw={"driver": "bridge", "labels": self.labels})
            network.name = f"cutover-{self.run_id}"
            network.create()
            return network, client.networks.get(network.name)
        except ENGINE_ERRORS as exc:
            client.close()
            raise RuntimeFailed(f"cannot create the run's network: {exc}") from exc

    def _new_container(self, svc: ContainerService) -> DockerContainer:
        assert self._images is not None and self._network is not None
        image = self._images.influxdb if svc.name == "influxdb" else (
            svc.image or self._images.pipeline)
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
        # Published on the engine host's loopback when the harness is there too (with_bind_ports
        # would take every interface), on a port chosen here: the URL the harness holds stays
        # valid across stop/start.
        container.ports[f"{svc.port}/tcp"] = (  # type: ignore[assignment]
            self.place.publish_on, svc.host_port)
        return container

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, service: Managed) -> None:
        svc = self._get(service)
        await self._prepare()
        if self.fault_proxy is not None and service != PROXY_ALIAS \
                and not self.running(PROXY_ALIAS):
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
            raise RuntimeFailed(f"cannot start {service}: {exc}") from exc
        svc.alive, svc.paused = True, False
        if service not in self._order:
            self._order.append(service)
        await self._follow(svc)

    async def _start_fault_proxy(self) -> None:
        """The proxy first, with every hop, before anything connects through it."""
        await self.start(PROXY_ALIAS)
        await self.wait_healthy(PROXY_ALIAS, 30)
        assert self.fault_proxy is not None
        existing = await self.fault_proxy.proxies()
        for hop, spec in proxy_specs(self.wiring).items():
            if hop not in existing:
                await self.fault_proxy.create(spec)

    async def stop(self, service: Managed, timeout: float = 20.0) -> None:
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
            raise RuntimeFailed(f"cannot stop {service}: {exc}") from exc
        svc.alive = False
        await self._join_follower(svc)

    async def kill(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.container is not None and await self._status(svc) in ("running", "paused"):
            try:
                await asyncio.to_thread(svc.wrapped.kill)  # SIGKILL; a paused one dies too
            except docker.errors.APIError as exc:
                if await self._status(svc) in ("running", "paused"):
                    raise RuntimeFailed(f"cannot kill {service}: {exc}") from exc
        svc.alive = svc.paused = False
        await self._join_follower(svc)

    async def pause(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.container is None or await self._status(svc) != "running":
            raise RuntimeFailed(f"cannot pause {service}: it is not running")
        await self._engine_call(f"pause {service}", svc.wrapped.pause)
        svc.paused = True

    async def resume(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.container is not None and await self._status(svc) == "paused":
            await self._engine_call(f"resume {service}", svc.wrapped.unpause)
        svc.paused = False

    async def disconnect(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.container is None or self._docker_network is None:
            raise RuntimeFailed(f"cannot disconnect {service}: it was never started")
        if svc.disconnected:
            return
        # Its published port goes with its only network: the harness loses it too, as a
        # client elsewhere would.
        await self._engine_call(f"disconnect {service}", self._docker_network.disconnect,
                                svc.wrapped.id)
        svc.disconnected = True

    async def reconnect(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.container is None or self._docker_network is None or not svc.disconnected:
            return
        await self._engine_call(f"reconnect {service}", self._docker_network.connect,
                                svc.wrapped.id, aliases=[svc.name])
        svc.disconnected = False

    # -- host faults (clock_skew, disk_full), done inside the container --------------------------

    async def set_clock_offset(self, service: Managed, offset_s: float) -> None:
        svc = self._get(service)
        if not svc.skewable:
            raise RuntimeFailed(f"{service} was not started with a movable clock: the runner "
                                "starts only the targets of the scenario's clock_skew faults so")
        # Written beside and renamed over, as on processes: never a half-written offset.
        await self._exec(svc, ["sh", "-c", 'printf "%s\\n" "$1" > "$2.tmp" && mv "$2.tmp" "$2"',
                               "sh", offset_text(offset_s), CONTAINER_CLOCK_FILE])

    async def fill_disk(self, service: Managed) -> int:
        svc = self._get(service)
        if svc.disk_bytes is None:
            raise RuntimeFailed(f"{service}'s data directory is not on a small disk: the runner "
                                "mounts one only for the targets of the scenario's disk_full "
                                "faults")
        out = await self._exec(svc, ["python", "-c", _FILL_SCRIPT,
                                     f"{DATA_ROOT}/{service}/{FILLER_NAME}"])
        return int(out.strip() or 0)

    async def free_disk(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.disk_bytes is not None and svc.container is not None \
                and await self._status(svc) == "running":
            await self._exec(svc, ["rm", "-f", f"{DATA_ROOT}/{service}/{FILLER_NAME}"])

    async def _exec(self, svc: ContainerService, argv: list[str]) -> str:
        if svc.container is None or await self._status(svc) != "running":
            raise RuntimeFailed(f"cannot reach inside {svc.name}: it is not running")
        try:
            code, out = await asyncio.to_thread(svc.wrapped.exec_run, argv)
        except ENGINE_ERRORS as exc:
            raise RuntimeFailed(f"cannot exec in {svc.name}: {exc}") from exc
        text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        if code != 0:
            raise RuntimeFailed(f"{argv[0]} in {svc.name} failed ({code}): {text[-300:]}")
        return text

    async def wait_healthy(self, service: Managed, timeout: float) -> None:
        # The wait strategy: /health (InfluxDB: /ping) on the published port. Our own poll
        # rather than testcontainers' HttpWaitStrategy, which blocks a thread in time.sleep
        # and waits out its timeout on a container that has already exited.
        svc = self._get(service)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "no answer"
        while loop.time() < deadline:
            if svc.container is None:
                raise RuntimeFailed(f"{service} is not started")
            if not svc.alive and await self._status(svc) not in ("running", "paused"):
                code = svc.wrapped.attrs.get("State", {}).get("ExitCode")
                raise RuntimeFailed(f"{service} exited with status {code}; last log lines:\n"
                                    + "\n".join(self.log_tail(service, 20)))
            try:
                r = await self._http.get(f"{self.url(service)}{svc.health_path}")
                if r.status_code == svc.healthy_status:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.1)
        raise RuntimeFailed(f"{service} not healthy after {timeout:g} s (last: {last}); "
                            "last log lines:\n" + "\n".join(self.log_tail(service, 20)))

    def url(self, service: Managed) -> str:
        return f"http://{self.place.host}:{self._get(service).host_port}"

    def running(self, service: Managed) -> bool:
        # Answered from what we did and what the log follower saw end: the monitor asks every
        # tick, and the engine is not to be waited on from the event loop.
        svc = self._get(service)
        return svc.container is not None and svc.alive and not svc.paused

    def log_tail(self, service: Managed, lines: int = 40) -> list[str]:
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
            last = [s for s in (INFLUXDB, PROXY_ALIAS) if s in self._order]
            await asyncio.gather(*(self.stop(s, timeout=10.0) for s in last),
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
            client = engine_client()
        except RuntimeFailed as exc:  # the engine went away: nothing can be removed now
            log.warning("run %s: clean-up impossible: %s", self.run_id, exc)
            return
        label = {"label": f"{RUN_LABEL}={self.run_id}"}
        try:
            for container in client.containers.list(all=True, filters=label):
                quietly(partial(container.remove, force=True, v=True))
            for network in client.networks.list(filters=label):
                quietly(network.remove)
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

    async def _status(self, svc: ContainerService) -> str:
        """The engine's word: created, running, paused, exited, dead, or gone."""
        try:
            await asyncio.to_thread(svc.wrapped.reload)
        except docker.errors.NotFound:
            return "gone"
        except ENGINE_ERRORS as exc:
            raise RuntimeFailed(f"cannot inspect {svc.name}: {exc}") from exc
        status = str(svc.wrapped.status)
        svc.paused = status == "paused"
        return status

    async def _engine_call(self, what: str, call: Callable[..., object], *args: object,
                           **kwargs: object) -> None:
        try:
            await asyncio.to_thread(call, *args, **kwargs)
        except ENGINE_ERRORS as exc:
            raise RuntimeFailed(f"cannot {what}: {exc}") from exc

    async def _follow(self, svc: ContainerService) -> None:
        """Copy this start's output (not the earlier starts': they are in the file already)."""
        await asyncio.to_thread(svc.wrapped.reload)  # StartedAt of this start
        since = docker_time(svc.wrapped.attrs["State"]["StartedAt"]) - 0.001
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

        svc.follower = threading.Thread(target=copy_logs, name=f"logs-{svc.name}",
                                        args=(svc.wrapped, since, svc.log_path, on_end),
                                        daemon=True)
        svc.follower.start()

    async def _join_follower(self, svc: ContainerService, timeout: float = 5.0) -> None:
        if svc.follower is not None:
            await asyncio.to_thread(svc.follower.join, timeout)


# Inside the container (no harness code there): the filler module itself, run as a script.
_FILL_SCRIPT = Path(disk_filler.__file__).read_text()
