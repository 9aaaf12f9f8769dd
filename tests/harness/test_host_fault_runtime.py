"""clock_skew and disk_full on the process runtime, with a real process in a service's place:
the injector moves its wall clock and heals it without a restart (libfaketime), and fills its
small disk and empties it (a tmpfs). Skipped, with the reason, where the machine lacks
libfaketime or cannot mount a tmpfs (not root)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import yaml

from harness.pipeline_file import reference_pipeline
from harness.runner.faults import FaultInjector
from harness.runner.run import RunState
from harness.runtime import tmpfs
from harness.runtime.base import Wiring
from harness.runtime.faketime import PICKUP_S, ClockFile, find_libfaketime
from harness.runtime.process import ProcessRuntime
from harness.scenario.faults import ClockSkew, DiskFull
from harness.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]
CHILD = "tests.harness.clock_service"
MIB = 2**20

needs_faketime = pytest.mark.skipif(
    find_libfaketime() is None,
    reason="no libfaketime here: apt-get install faketime (.ci/system-deps installs it)")


def _can_mount() -> str | None:
    """None when this process may mount a tmpfs; else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    probe = Path(f"/tmp/cutover-tmpfs-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "probe", str(probe)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"mount -t tmpfs refused here: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=False)
        return None
    finally:
        probe.rmdir()


_MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(_MOUNT is not None, reason=_MOUNT or "")


# -- libfaketime itself, on a tiny child -------------------------------------------------------


@needs_faketime
def test_a_child_on_the_clock_file_follows_it_and_heals(tmp_path: Path) -> None:
    clock = ClockFile(tmp_path / "child.offset")
    clock.reset()
    script = ("import sys, threading, time\n"
              "for line in sys.stdin:\n"
              "    print(time.time(), flush=True)\n")
    env = {**os.environ, **clock.env(find_libfaketime() or "")}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None

    def offset() -> float:
        child.stdin.write("\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        return float(child.stdout.readline()) - time.time()  # type: ignore[union-attr]

    def settles(want: float) -> float:
        deadline = time.monotonic() + PICKUP_S + 1
        while abs((got := offset()) - want) > 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)  # the harness's own sleep: only the child is preloaded
        return got

    try:
        assert abs(settles(0.0)) < 0.5
        asyncio.run(clock.set(-7200.0))
        assert clock.read() == "-7200.000"
        assert settles(-7200.0) == pytest.approx(-7200.0, abs=0.5)
        asyncio.run(clock.set(0.0))
        assert settles(0.0) == pytest.approx(0.0, abs=0.5)
    finally:
        child.kill()
        child.wait()


# -- the injector on the process runtime -------------------------------------------------------


def _state() -> RunState:
    scenario = Scenario.model_validate(yaml.safe_load(
        "name: t\nphases:\n  - name: a\n    steps:\n      - hold: 1s"))
    return RunState(scenario, 1.0, time.time_ns())


@pytest.fixture
async def runtime(tmp_path: Path, request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ProcessRuntime]:
    monkeypatch.chdir(ROOT)  # python -m tests.harness.clock_service
    skewable, disks = request.param
    rt = ProcessRuntime(Wiring(run_dir=tmp_path, ha_url="ws://127.0.0.1:9/api/websocket",
                               ha_token="t", admin_token="a", weather_api_key="k",
                               pipeline=reference_pipeline().with_commands(
                                   {"storage": CHILD, "enrichment": CHILD}),
                               skewable=frozenset(skewable), small_disks=disks))
    try:
        yield rt
    finally:
        await rt.close()


async def _until(probe: Callable[[], object], check: Callable[[float], bool],
                 timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()  # type: ignore[misc]
        if check(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


@needs_faketime
@pytest.mark.parametrize("runtime", [(["storage"], {})], indirect=True)
async def test_clock_skew_moves_a_running_service_and_heals_it(runtime: ProcessRuntime) -> None:
    await runtime.start("storage")
    await runtime.start("enrichment")  # not a target: started as usual
    await runtime.wait_healthy("storage", 20)
    await runtime.wait_healthy("enrichment", 20)
    async with httpx.AsyncClient() as client:
        async def offset(service: str = "storage") -> float:
            r = await client.get(f"{runtime.url(service)}/now")  # type: ignore[arg-type]
            return float(r.json()["now"]) - time.time()

        injector = FaultInjector(_state(), runtime, None, client, "db")
        heal = await injector._apply(ClockSkew(kind="clock_skew", service="storage",
                                               offset="-1h"), 1)
        assert heal is not None
        skewed = await _until(offset, lambda o: abs(o + 3600) < 0.5, PICKUP_S + 2)
        assert skewed == pytest.approx(-3600, abs=0.5)
        assert abs(await offset("enrichment")) < 0.5
        await heal()
        healed = await _until(offset, lambda o: abs(o) < 0.5, PICKUP_S + 2)
        assert abs(healed) < 0.5
        assert runtime.running("storage")  # no restart: the same process all along
        with pytest.raises(Exception, match="not started with a movable clock"):
            await runtime.set_clock_offset("enrichment", 5.0)


@needs_mount
@pytest.mark.parametrize("runtime", [([], {"storage": 16 * MIB})], indirect=True)
async def test_disk_full_fills_the_small_disk_and_empties_it(runtime: ProcessRuntime,
                                                             tmp_path: Path) -> None:
    data = tmp_path / "data" / "storage"
    await runtime.start("storage")
    await runtime.wait_healthy("storage", 20)
    assert tmpfs.is_mounted(data)
    (data / "queue.sqlite3").write_bytes(b"q" * 100_000)  # the service's own file
    before = tmpfs.free_bytes(data)
    assert 15 * MIB < before <= 16 * MIB
    async with httpx.AsyncClient() as client:
        state = _state()
        injector = FaultInjector(state, runtime, None, client, "db")
        heal = await injector._apply(DiskFull(kind="disk_full", service="storage",
                                              size="16MiB"), 1)
        assert heal is not None
        assert tmpfs.free_bytes(data) == 0
        with pytest.raises(OSError, match="No space left"):
            (data / "more").write_bytes(b"x" * 8192)
        assert f"filler took {before / MIB:.1f} MiB of storage's disk" in state.markers[-1].label
        await heal()
    assert tmpfs.free_bytes(data) == before
    assert (data / "queue.sqlite3").read_bytes() == b"q" * 100_000
    assert runtime.running("storage")
    await runtime.close()
    assert not tmpfs.is_mounted(data)


@pytest.mark.parametrize("runtime", [([], {})], indirect=True)
async def test_a_service_not_started_for_it_is_refused(runtime: ProcessRuntime) -> None:
    with pytest.raises(Exception, match="not on a small disk"):
        await runtime.fill_disk("storage")


async def test_fill_refuses_a_directory_that_is_not_a_small_disk(tmp_path: Path) -> None:
    with pytest.raises(tmpfs.TmpfsError, match="refusing to fill the machine's own disk"):
        await tmpfs.fill(tmp_path)
