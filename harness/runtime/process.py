"""The ``process`` runtime: InfluxDB, the fake weather API and every pipeline service as a
subprocess on 127.0.0.1, each on a free port, each logging into the run directory.

No orphans: every child is started with PR_SET_PDEATHSIG (the kernel kills it if the harness
dies, even by SIGKILL), and ``close()`` stops whatever is still running, paused ones included.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.errors import RuntimeFailed, Unsupported
from harness.scenario.topology import (
    FAULT_PROXY,
    PIPELINE_SERVICES,
    Managed,
    PipelineService,
    Service,
)

from . import tmpfs
from .base import Runtime, Wiring
from .faketime import HOW_TO_GET_IT, ClockFile, find_libfaketime
from .influxd import find_influxd, influxd_argv, write_config
from .ports import free_ports
from .toxiproxy import HOP_ENDS, ToxiproxyClient, hops_of
from .wiring import hop_server, pipeline_env

_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """Runs in the child between fork and exec. The kernel sends the signal when the THREAD
    that forked exits, so only fork from a thread that lives as long as the run (the event
    loop's), never from a worker thread (asyncio.to_thread would kill the child with it)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Service:
    name: Managed
    argv: list[str]
    env: dict[str, str]
    port: int
    health_path: str = "/health"
    healthy_status: int = 200
    proc: asyncio.subprocess.Process | None = None
    paused: bool = False
    log_path: Path = field(default=Path("/dev/null"))
    data_dir: Path | None = None  # a pipeline service's CUTOVER_DATA_DIR
    cwd: Path | None = None  # its pipeline file's working directory (None: the harness's)
    clock: ClockFile | None = None  # set: started with libfaketime (a clock_skew target)
    disk_bytes: int | None = None  # set: data_dir is a tmpfs of this size (a disk_full target)


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, wiring: Wiring, *, python: str = sys.executable) -> None:
        self.wiring = wiring
        self.logs_dir = wiring.run_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._http = httpx.AsyncClient(timeout=2.0)
        self._hops: list[dict[str, object]] = []  # the fault proxy's config, when it is used
        self._services = self._plan(wiring, python)
        self._order: list[Managed] = []  # start order, for a reverse-order close
        if wiring.fault_proxy:
            self.fault_proxy = ToxiproxyClient(self.url(FAULT_PROXY), self._http)

    # -- wiring -----------------------------------------------------------------------------

    def _plan(self, w: Wiring, python: str) -> dict[Managed, _Service]:
        # Every port of the run in one call, so no two of them are the same.
        served: tuple[Service, ...] = ("influxdb", "weather", *PIPELINE_SERVICES)
        names = [*served, "influxdb-rpc", FAULT_PROXY, *(f"hop:{hop}" for hop in HOP_ENDS)]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        url: dict[str, str] = {name: f"http://127.0.0.1:{ports[name]}" for name in served}
        data = w.run_dir / "data"
        common = {"CUTOVER_HOST": "127.0.0.1", "CUTOVER_LOG_LEVEL": "INFO",
                  "PYTHONUNBUFFERED": "1"}
        proxied: dict[str, str] = {}  # hop -> where its client connects instead
        if w.fault_proxy:
            ha_host = w.ha_url.split("://", 1)[1].split("/", 1)[0]
            for hop in HOP_ENDS:
                proxied[hop] = f"127.0.0.1:{ports[f'hop:{hop}']}"
                to = hop_server(w, hop)
                upstream = ha_host if to == "ha" else f"127.0.0.1:{ports[to]}"
                self._hops.append({"name": hop, "listen": proxied[hop], "upstream": upstream,
                                   "enabled": True})
        env = pipeline_env(w, url, proxied=proxied,
                           state_file=str(data / "admin" / "migration.json"))

        def role(name: PipelineService, env: dict[str, str]) -> _Service:
            spec = w.pipeline.roles[name]
            if spec.command is None:
                raise Unsupported(f"{name} of pipeline {w.pipeline.name!r} has an image and no "
                                  "command: run it with --runtime containers, or give it a "
                                  "command for the process runtime")
            svc = _Service(name, spec.argv(python),
                           spec.rename({**common, "CUTOVER_PORT": str(ports[name]),
                                        "CUTOVER_DATA_DIR": str(data / name), **env}),
                           ports[name], data_dir=data / name,
                           disk_bytes=w.small_disks.get(name), cwd=w.pipeline.workdir(name))
            if name in w.skewable:
                # Beside the data dirs, never inside one: a full disk must not pin a clock.
                svc.clock = ClockFile(w.run_dir / "clocks" / f"{name}.offset")
            return svc

        influxd = find_influxd() or "/usr/bin/influxd"
        config = write_config(w.run_dir / "influxdb", ports["influxdb"], ports["influxdb-rpc"])
        services: dict[Managed, _Service] = {
            "influxdb": _Service("influxdb", influxd_argv(influxd, config), {}, ports["influxdb"],
                                 health_path="/ping", healthy_status=204),
            "weather": _Service("weather", [python, "-m", "simulators.weather", "--port",
                                            str(ports["weather"]), "--api-key",
                                            w.weather_api_key, "--seed", str(w.seed)],
                                {"PYTHONUNBUFFERED": "1"}, ports["weather"]),
            # the roles of the pipeline file: a stage the plan leaves out is never started
            **{name: role(name, env[name]) for name in PIPELINE_SERVICES
               if w.pipeline.has(name)},
        }
        if w.fault_proxy:
            config = w.run_dir / "faultproxy.json"
            config.write_text(json.dumps(self._hops, indent=1))
            port = ports[FAULT_PROXY]
            services[FAULT_PROXY] = _Service(
                FAULT_PROXY, [python, "-m", "simulators.faultproxy", "--host", "127.0.0.1",
                               "--port", str(port), "--config", str(config)],
                {"PYTHONUNBUFFERED": "1"}, port, health_path="/version")
        for svc in services.values():
            svc.log_path = self.logs_dir / f"{svc.name}.log"
        return services

    def _get(self, service: Managed) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            raise RuntimeFailed(f"unknown service {service!r}: expected one of "
                                f"{', '.join(self._services)}") from None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.proc is not None and svc.proc.returncode is None:
            return
        if self.fault_proxy is not None and service != FAULT_PROXY \
                and not self.running(FAULT_PROXY):
            # The hops exist before anything connects through them.
            await self.start(FAULT_PROXY)
            await self.wait_healthy(FAULT_PROXY, 15)
        if service == "influxdb" and find_influxd() is None:
            raise RuntimeFailed("influxd not found: install Debian's influxdb package "
                                "(`apt-get install influxdb`, or `make test` which does it)")
        env = {**os.environ, **svc.env, **await self._host_faults_ready(svc)}
        with svc.log_path.open("ab") as log:
            svc.proc = await asyncio.create_subprocess_exec(
                *svc.argv, env=env, cwd=svc.cwd, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT, preexec_fn=die_with_parent,
                # Its own process group: a Ctrl-C in the terminal reaches the harness only,
                # which then stops every service in order.
                start_new_session=True)
        svc.paused = False
        if service not in self._order:
            self._order.append(service)

    async def _host_faults_ready(self, svc: _Service) -> dict[str, str]:
        """Before the first start of a clock_skew or disk_full target: its small disk mounted
        (before it opens its queues), its clock file at true time. Returns its extra env."""
        if svc.disk_bytes is not None and svc.data_dir is not None:
            try:
                await tmpfs.mount(svc.data_dir, svc.disk_bytes)
            except tmpfs.TmpfsError as exc:
                raise Unsupported(str(exc)) from exc
        if svc.clock is None:
            return {}
        library = find_libfaketime()
        if library is None:
            raise Unsupported(f"clock_skew on {svc.name} needs libfaketime: {HOW_TO_GET_IT}")
        if not svc.clock.path.exists():  # a restart keeps the offset in force
            await asyncio.to_thread(svc.clock.reset)
        return svc.clock.env(library)

    # -- host faults (clock_skew, disk_full) --------------------------------------------------

    async def set_clock_offset(self, service: Managed, offset_s: float) -> None:
        clock = self._get(service).clock
        if clock is None:
            raise RuntimeFailed(f"{service} was not started with a movable clock: the runner "
                                "starts only the targets of the scenario's clock_skew faults so")
        await clock.set(offset_s)

    async def fill_disk(self, service: Managed) -> int:
        svc = self._get(service)
        if svc.disk_bytes is None or svc.data_dir is None:
            raise RuntimeFailed(f"{service}'s data directory is not on a small disk: the runner "
                                "mounts one only for the targets of the scenario's disk_full "
                                "faults")
        try:
            return await tmpfs.fill(svc.data_dir)
        except (tmpfs.TmpfsError, OSError) as exc:
            raise RuntimeFailed(f"cannot fill {service}'s disk: {exc}") from exc

    async def free_disk(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.data_dir is not None and svc.disk_bytes is not None:
            await tmpfs.free(svc.data_dir)

    async def stop(self, service: Managed, timeout: float = 20.0) -> None:
        svc = self._get(service)
        proc = svc.proc
        if proc is None or proc.returncode is not None:
            return
        if svc.paused:
            proc.send_signal(signal.SIGCONT)
            svc.paused = False
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def kill(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.proc is not None and svc.proc.returncode is None:
            svc.proc.kill()
            await svc.proc.wait()
        svc.paused = False

    async def pause(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.proc is None or svc.proc.returncode is not None:
            raise RuntimeFailed(f"cannot pause {service}: it is not running")
        svc.proc.send_signal(signal.SIGSTOP)
        svc.paused = True

    async def resume(self, service: Managed) -> None:
        svc = self._get(service)
        if svc.proc is not None and svc.proc.returncode is None:
            svc.proc.send_signal(signal.SIGCONT)
        svc.paused = False

    async def disconnect(self, service: Managed) -> None:
        # Processes share the host's loopback: the partition is every proxy hop of the
        # service going down (the harness still reaches it directly, to watch it).
        for hop in self._partition_hops(service):
            await self._proxy().set_enabled(hop, False)

    async def reconnect(self, service: Managed) -> None:
        for hop in self._partition_hops(service):
            await self._proxy().set_enabled(hop, True)

    def _proxy(self) -> ToxiproxyClient:
        assert self.fault_proxy is not None  # _partition_hops refused the partition without it
        return self.fault_proxy

    def _partition_hops(self, service: Managed) -> list[str]:
        if self.fault_proxy is None:
            raise Unsupported(f"cannot disconnect {service} on processes without the fault "
                              "proxy: a scenario with a network fault turns it on (or run "
                              "with --runtime containers)")
        hops = hops_of(service)
        if not hops:
            raise Unsupported(f"{service} has no network hop the fault proxy can cut")
        return hops

    async def wait_healthy(self, service: Managed, timeout: float) -> None:
        svc = self._get(service)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "no answer"
        while loop.time() < deadline:
            if svc.proc is None:
                raise RuntimeFailed(f"{service} is not started")
            if svc.proc.returncode is not None:
                tail = "\n".join(self.log_tail(service, 20))
                raise RuntimeFailed(f"{service} exited with status {svc.proc.returncode}; "
                                    f"last log lines:\n{tail}")
            try:
                r = await self._http.get(f"http://127.0.0.1:{svc.port}{svc.health_path}")
                if r.status_code == svc.healthy_status:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.1)
        tail = "\n".join(self.log_tail(service, 20))
        raise RuntimeFailed(f"{service} not healthy after {timeout:g} s (last: {last}); "
                            f"last log lines:\n{tail}")

    def url(self, service: Managed) -> str:
        return f"http://127.0.0.1:{self._get(service).port}"

    def running(self, service: Managed) -> bool:
        svc = self._get(service)
        return svc.proc is not None and svc.proc.returncode is None and not svc.paused

    def log_tail(self, service: Managed, lines: int = 40) -> list[str]:
        try:
            text = self._get(service).log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return text.splitlines()[-lines:]

    async def close(self) -> None:
        # Pipeline first (so it can flush into InfluxDB), InfluxDB last.
        order = [s for s in reversed(self._order) if s not in ("influxdb", FAULT_PROXY)]
        await asyncio.gather(*(self.stop(s, timeout=10.0) for s in order),
                             return_exceptions=True)
        if "influxdb" in self._order:
            await self.stop("influxdb", timeout=10.0)
        if FAULT_PROXY in self._order:
            await self.stop(FAULT_PROXY, timeout=5.0)
        for svc in self._services.values():  # anything that ignored SIGTERM
            if svc.proc is not None and svc.proc.returncode is None:
                svc.proc.kill()
                await svc.proc.wait()
        for svc in self._services.values():  # the small disks, once nothing uses them
            if svc.disk_bytes is not None and svc.data_dir is not None:
                try:
                    await tmpfs.unmount(svc.data_dir)
                except tmpfs.TmpfsError as exc:  # reported, not raised: the run is over
                    log.warning("%s", exc)
        await self._http.aclose()
