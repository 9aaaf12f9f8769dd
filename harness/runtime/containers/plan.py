"""What the containers runtime runs: each service's command, environment and ports, wired as
the process runtime wires them (harness/runtime/wiring.py) but reached by network alias
(``http://storage:8080``), and the fault proxy's hops."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from docker.models.containers import Container
from testcontainers.core.container import DockerContainer

from harness.scenario.topology import (
    FAULT_PROXY,
    HOP_ENDS,
    PIPELINE_SERVICES,
    Hop,
    Managed,
    PipelineService,
)

from ..base import Wiring
from ..faketime import faketime_env
from ..ports import free_ports
from ..toxiproxy import ProxySpec
from ..wiring import hop_server, pipeline_env
from .images import INFLUXDB_PORT

__all__ = ["CONTAINER_CLOCK_FILE", "DATA_ROOT", "PROXY_ALIAS", "PROXY_API_PORT", "SERVICE_PORT",
           "ContainerService", "plan_services", "proxy_specs"]

SERVICE_PORT = 8080  # every pipeline service and the weather API, each in its own container
DATA_ROOT = "/var/lib/cutover"  # the pipeline image's WORKDIR: durable queues, admin's state
CONTAINER_LIBFAKETIME = "/usr/local/lib/libfaketime.so.1"  # linked by pipeline.Dockerfile
CONTAINER_CLOCK_FILE = "/etc/cutover-clock"  # the container's own layer, not its data disk
PROXY_ALIAS = FAULT_PROXY
PROXY_API_PORT = 8474  # Toxiproxy's
_FIRST_HOP_PORT = 21001


@dataclass
class ContainerService:
    name: Managed
    command: list[str] | None  # None: the image's own (InfluxDB, a pipeline file's image)
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
    image: str | None = None  # a pipeline file's own image (None: the harness's build)

    @property
    def wrapped(self) -> Container:
        assert self.container is not None
        return self.container.get_wrapped_container()


def plan_services(w: Wiring) -> dict[Managed, ContainerService]:
    """The process runtime's wiring (harness/runtime/process.py), with URLs by network alias."""
    url = {name: f"http://{name}:{SERVICE_PORT}" for name in ("weather", *PIPELINE_SERVICES)}
    url["influxdb"] = f"http://influxdb:{INFLUXDB_PORT}"
    # 0.0.0.0 inside the container's own network namespace: reachable by alias and through
    # the published port, which is itself bound to 127.0.0.1 on the host.
    common = {"CUTOVER_HOST": "0.0.0.0", "CUTOVER_PORT": str(SERVICE_PORT),  # noqa: S104
              "CUTOVER_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    proxied: dict[str, str] = {hop: f"{PROXY_ALIAS}:{_port(spec)}"
                               for hop, spec in proxy_specs(w).items()}
    env = pipeline_env(w, url, proxied=proxied, state_file=f"{DATA_ROOT}/admin/migration.json")
    host_ports = iter(free_ports(8))  # published ports, all distinct (see runtime/ports.py)

    def next_host_port() -> int:
        return next(host_ports)

    def role(name: PipelineService, env: dict[str, str]) -> ContainerService:
        spec = w.pipeline.roles[name]
        skewable = name in w.skewable
        # The image links libfaketime at one path for every architecture (pipeline.Dockerfile);
        # the offset file lives outside the data dir, which a disk_full may fill.
        clock = faketime_env(CONTAINER_LIBFAKETIME, CONTAINER_CLOCK_FILE) if skewable else {}
        # An image of its own runs its own command; else the command, in the reference image.
        command = None if spec.image else spec.argv("python")
        return ContainerService(name, command, spec.rename(
                                    {**common, "CUTOVER_DATA_DIR": f"{DATA_ROOT}/{name}", **env,
                                     **clock}),
                                SERVICE_PORT, next_host_port(), skewable=skewable,
                                disk_bytes=w.small_disks.get(name), image=spec.image)

    services: dict[Managed, ContainerService] = {
        "influxdb": ContainerService("influxdb", None, {}, INFLUXDB_PORT, next_host_port(),
                             health_path="/ping", healthy_status=204),
        "weather": ContainerService("weather", ["python", "-m", "simulators.weather", "--host",
                                        "0.0.0.0",  # noqa: S104 - as CUTOVER_HOST above
                                        "--port", str(SERVICE_PORT), "--api-key",
                                        w.weather_api_key, "--seed", str(w.seed)],
                            {"PYTHONUNBUFFERED": "1"}, SERVICE_PORT, next_host_port()),
        **{name: role(name, env[name]) for name in PIPELINE_SERVICES if w.pipeline.has(name)},
    }
    if w.fault_proxy:
        services[PROXY_ALIAS] = ContainerService(
            PROXY_ALIAS, ["python", "-m", "simulators.faultproxy", "--host",
                          "0.0.0.0", "--port", str(PROXY_API_PORT),  # noqa: S104
                          # the hops listen on the container's own network, not loopback
                          "--allow-remote-listen"],
            {"PYTHONUNBUFFERED": "1"}, PROXY_API_PORT, next_host_port(), health_path="/version")
    return services




def proxy_specs(w: Wiring) -> dict[Hop, ProxySpec]:
    """Each hop listening on its own port in the proxy's container, forwarding by alias
    (Home Assistant: the harness's address on the bridge, as the services reach it)."""
    if not w.fault_proxy:
        return {}
    ha_host = w.ha_url.split("://", 1)[1].split("/", 1)[0]
    specs = {}
    for i, hop in enumerate(HOP_ENDS):
        server = hop_server(w, hop)
        upstream = ha_host if server == "ha" else (
            f"influxdb:{INFLUXDB_PORT}" if server == "influxdb" else f"{server}:{SERVICE_PORT}")
        specs[hop] = ProxySpec(hop, f"0.0.0.0:{_FIRST_HOP_PORT + i}", upstream)  # noqa: S104
    return specs


def _port(spec: ProxySpec) -> int:
    return int(spec.listen.rsplit(":", 1)[1])
