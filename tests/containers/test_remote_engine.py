"""The containers runtime on an engine that is not the local one (issue 17, item 5).

A second dockerd, with a data root of its own (so none of the local engine's images) and no
registry, stands for a team's bigger host. It listens on TCP twice: on 127.0.0.1 (an engine
reached through a tunnel) and on an address of its own bridge that is not loopback (an engine
on the network: the services' ports are published on every interface and reached at that
address, and the containers reach the harness at this machine's address facing it). The
harness's images and a pipeline file's own image, built on the local engine, are sent there.

The fast tests read where an engine is from the environment alone and need no engine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from harness.errors import CommandFailed
from harness.pipeline_file import reference_pipeline
from harness.pipeline_file.model import PipelineSpec, RoleSpec
from harness.runner.run import run_scenario
from harness.runtime.containers.engine import Docker
from harness.runtime.containers.images import ensure_images_sync
from harness.runtime.containers.place import address_facing, engine_place
from harness.runtime.containers.ship import send
from harness.runtime.ports import free_port
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "unix:///var/run/docker.sock"


# -- where an engine is, from the environment alone (no engine needed) -------------------------

def test_a_local_engine_publishes_on_loopback_and_needs_nothing_sent() -> None:
    place = engine_place({"DOCKER_HOST": LOCAL})
    assert (place.host, place.publish_on, place.elsewhere, place.over_network) == (
        "127.0.0.1", "127.0.0.1", False, False)
    assert not engine_place({"DOCKER_HOST": "unix:///run/other.sock"}).over_network


def test_an_engine_on_the_network_is_reached_there_and_publishes_on_every_interface() -> None:
    place = engine_place({"DOCKER_HOST": "tcp://10.20.30.40:2375"})
    assert (place.host, place.publish_on, place.elsewhere, place.over_network) == (
        "10.20.30.40", "0.0.0.0", True, True)


def test_a_tunnelled_engine_on_loopback_keeps_its_ports_on_loopback_but_gets_images_sent() -> None:
    place = engine_place({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert (place.host, place.publish_on, place.elsewhere, place.over_network) == (
        "127.0.0.1", "127.0.0.1", True, False)


def test_tc_host_and_the_image_source_override_the_guesses() -> None:
    place = engine_place({"DOCKER_HOST": "tcp://10.0.0.1:2375", "TC_HOST": "127.0.0.1",
                          "CUTOVER_IMAGE_SOURCE": "tcp://10.0.0.1:2375"})
    assert place.host == "127.0.0.1" and place.publish_on == "127.0.0.1"
    assert not place.elsewhere  # the images are built on that very engine


def test_the_harness_address_is_the_one_on_the_route_to_the_engine() -> None:
    assert address_facing("127.0.0.1", {}) == "127.0.0.1"
    assert address_facing("10.9.9.9", {"CUTOVER_HARNESS_ADDRESS": "192.0.2.7"}) == "192.0.2.7"


# -- a second engine ------------------------------------------------------------------------

BRIDGE, BRIDGE_ADDRESS, BRIDGE_NET = "cutover-rb0", "10.231.0.1", "10.231.0.0/24"
POOL = "10.232.0.0/16"  # the second engine's own networks: never the local engine's subnets


def _why_no_second_engine() -> str | None:
    if os.geteuid() != 0:
        return "starting a second dockerd needs root"
    missing = [tool for tool in ("dockerd", "docker", "ip", "iptables") if not shutil.which(tool)]
    if missing:
        return f"no {', '.join(missing)} here: `apt-get install docker.io iproute2`"
    if subprocess.run(["docker", "--host", LOCAL, "info"], capture_output=True,
                      timeout=20).returncode != 0:
        return ("the local engine, which builds the images to send, does not answer: "
                "run .ci/docker-engine")
    return None


def _sh(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A dockerd on 127.0.0.1:PORT and BRIDGE_ADDRESS:PORT; yields the port."""
    if (why := _why_no_second_engine()) is not None:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("second-engine")
    port = free_port()
    # Its own bridge (never --bridge none beside a running engine: that deletes docker0), no
    # iptables of its own (the local engine's chains are shared), so: let its subnets through
    # the local engine's FORWARD policy (DROP, and bridged traffic passes through it here).
    _sh("ip", "link", "add", BRIDGE, "type", "bridge", check=False)
    _sh("ip", "addr", "replace", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
    _sh("ip", "link", "set", BRIDGE, "up")
    rules = [["-s", net, "-j", "ACCEPT"] for net in (BRIDGE_NET, POOL)] + \
            [["-d", net, "-j", "ACCEPT"] for net in (BRIDGE_NET, POOL)]
    chain = "DOCKER-USER" if subprocess.run(["iptables", "-S", "DOCKER-USER"],
                                            capture_output=True).returncode == 0 else "FORWARD"
    for rule in rules:
        _sh("iptables", "-I", chain, *rule)
    exec_root = Path(f"/run/cutover-re-{port}")  # short: containerd's socket path has a limit
    log = (root / "dockerd.log").open("w")
    dockerd = subprocess.Popen(
        ["dockerd", "-H", f"tcp://127.0.0.1:{port}", "-H", f"tcp://{BRIDGE_ADDRESS}:{port}",
         "--data-root", str(root / "data"), "--exec-root", str(exec_root),
         "--pidfile", str(root / "dockerd.pid"), "--bridge", BRIDGE, "--iptables=false",
         "--default-address-pool", f"base={POOL},size=24"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "--host", f"tcp://127.0.0.1:{port}", "info"],
                             capture_output=True).returncode != 0:
            if dockerd.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the second dockerd did not answer:\n"
                            + (root / "dockerd.log").read_text()[-2000:])
            time.sleep(0.5)
        yield port
    finally:
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()
        log.close()
        for rule in rules:
            _sh("iptables", "-D", chain, *rule, check=False)
        _sh("ip", "link", "del", BRIDGE, check=False)
        shutil.rmtree(exec_root, ignore_errors=True)
        shutil.rmtree(root / "data", ignore_errors=True)


@pytest.fixture(scope="module")
def own_image(second_engine: int) -> Iterator[str]:
    """A team's storage image, on the local engine only: the reference pipeline image with
    storage as its command (a one-line Dockerfile, built in a second)."""
    images = ensure_images_sync()  # on the local engine: DOCKER_HOST is not set yet
    tag = f"acme/storage:{second_engine}"
    subprocess.run(["docker", "--host", LOCAL, "build", "--tag", tag, "-"], check=True,
                   capture_output=True, timeout=120,
                   input=f'FROM {images.pipeline}\nCMD ["python", "-m", "pipeline.storage"]\n'
                   .encode())
    yield tag
    _sh("docker", "--host", LOCAL, "rmi", tag, check=False)


def _with_own_storage(image: str) -> PipelineSpec:
    reference = reference_pipeline()
    roles = {**reference.roles, "storage": RoleSpec(image=image)}
    return reference.model_copy(update={"name": "acme storage", "roles": roles})


def _has(port: int, ref: str) -> bool:
    return subprocess.run(["docker", "--host", f"tcp://127.0.0.1:{port}", "image", "inspect",
                           ref], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("listen", ["127.0.0.1", BRIDGE_ADDRESS],
                         ids=["tunnelled-on-loopback", "on-the-network"])
def test_a_scenario_runs_on_a_second_engine_with_its_images_sent_there(
        second_engine: int, own_image: str, listen: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://{listen}:{second_engine}")
    started = time.time()
    source = ROOT / "scenarios" / "survive_paused_container.yaml"
    result, _ = asyncio.run(run_scenario(
        load_scenario(source), source=source, runtime="containers", time_scale=None,
        report_dir=tmp_path, console=Console(quiet=True),
        pipeline=_with_own_storage(own_image)))
    assert result.verdict.passed, result.verdict.reasons
    assert result.counts.lost == 0 and result.counts.stored_production == result.counts.expected
    # The run's containers were the second engine's (the local one never saw them), and the
    # team's image, which only the local engine had, was sent there.
    assert _has(second_engine, own_image)
    events = subprocess.run(
        ["docker", "--host", f"tcp://127.0.0.1:{second_engine}", "events", "--since",
         str(int(started)), "--until", str(int(time.time()) + 1), "--filter", "event=start",
         "--format", "{{.Actor.Attributes.image}}"],
        capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert own_image in events and any(e.startswith("cutover-influxdb:") for e in events)


@pytest.mark.slow
def test_sending_an_image_the_source_lacks_says_which_and_why(second_engine: int) -> None:
    local, second = Docker(host=LOCAL), Docker(host=f"tcp://127.0.0.1:{second_engine}")
    with pytest.raises(CommandFailed, match=r"sending nobody/absent:0: docker save failed"):
        asyncio.run(send("nobody/absent:0", local, second))


@pytest.mark.slow
def test_sending_to_an_engine_that_does_not_answer_says_so_not_that_save_died(
        second_engine: int, tmp_path: Path) -> None:
    image = ensure_images_sync().influxdb  # on the local engine
    nowhere = Docker(host=f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(CommandFailed, match=r"docker load failed .*no-engine\.sock"):
        asyncio.run(send(image, Docker(host=LOCAL), nowhere))
