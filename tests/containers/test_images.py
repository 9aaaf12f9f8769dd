"""Container images: base choice, content hash, the wheelhouse's pip command, and real builds.

The fast tests need no engine: base choice is driven through a fake engine (the registry check
faked at its boundary, ``Engine.pull``), the CLI wrapper through fake ``docker`` scripts. The
slow ones build the images for real and skip, saying how to get one, when no engine answers.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest

from harness.errors import EngineUnavailable, ImagesError
from harness.runtime.containers import wheelhouse
from harness.runtime.containers.bases import PINNED_INFLUXDB, PINNED_PYTHON, choose_bases
from harness.runtime.containers.content import Entry, content_hash, package_sources
from harness.runtime.containers.engine import HOW_TO_GET_AN_ENGINE, Docker, LineSink, Pulled
from harness.runtime.containers.images import (
    ImageBuilder,
    ImageSet,
    ensure_images_sync,
    influxd_config,
)
from harness.runtime.containers.progress import Reporter
from harness.runtime.containers.rootfs import find_mirror

# -- base choice, with the engine and the registry faked at their boundary ---------------------


class FakeEngine:
    """Local images by ref; a registry that answers or not; every pull recorded."""

    def __init__(self, local: Iterable[str] = (), registry: bool = False,
                 serves: set[str] | None = None) -> None:
        self.local = set(local)
        self.registry = registry
        self.serves = serves  # None: the registry has every image
        self.pulls: list[str] = []

    async def image_id(self, ref: str) -> str | None:
        return f"sha256:{ref}" if ref in self.local else None

    async def pull(self, ref: str, *, answer_timeout: float, total_timeout: float = 900,
                   on_line: LineSink | None = None) -> Pulled:
        self.pulls.append(ref)
        if not self.registry:
            return Pulled(False, "lookup registry: no such host")
        if self.serves is not None and ref not in self.serves:
            return Pulled(False, "manifest unknown")
        self.local.add(ref)
        return Pulled(True, "pulled")


async def test_no_registry_means_both_bases_from_a_debian_rootfs_and_one_probe():
    engine = FakeEngine()
    bases = await choose_bases(engine, env={})
    assert bases.pipeline.source == bases.influxdb.source == "rootfs"
    assert bases.needs_rootfs
    assert "no registry answered" in bases.pipeline.reason
    assert engine.pulls == [PINNED_PYTHON]  # asked once: the registry's silence is not retried


async def test_a_registry_gives_the_pinned_images():
    engine = FakeEngine(registry=True)
    bases = await choose_bases(engine, env={})
    assert (bases.pipeline.ref, bases.influxdb.ref) == (PINNED_PYTHON, PINNED_INFLUXDB)
    assert bases.pipeline.source == bases.influxdb.source == "registry"
    assert not bases.needs_rootfs
    assert "latest" not in PINNED_PYTHON + PINNED_INFLUXDB


async def test_pinned_images_already_in_the_engine_need_no_registry():
    engine = FakeEngine(local={PINNED_PYTHON, PINNED_INFLUXDB})
    bases = await choose_bases(engine, env={})
    assert bases.pipeline.source == bases.influxdb.source == "local"
    assert engine.pulls == []


async def test_the_override_wins_over_registry_and_rootfs():
    engine = FakeEngine(local={"mine/python:3.11"}, registry=True)
    bases = await choose_bases(engine, env={"CUTOVER_BASE_IMAGE": "mine/python:3.11"})
    assert bases.pipeline.ref == "mine/python:3.11"
    assert bases.pipeline.source == "override"
    assert "CUTOVER_BASE_IMAGE" in bases.pipeline.reason
    assert PINNED_PYTHON not in engine.pulls


async def test_influx_override_is_used_as_is_and_the_rest_still_chosen():
    engine = FakeEngine(local={"my/influx:1.8"})
    bases = await choose_bases(engine, env={"CUTOVER_INFLUX_IMAGE": "my/influx:1.8"})
    assert (bases.influxdb.ref, bases.influxdb.source) == ("my/influx:1.8", "override")
    assert bases.pipeline.source == "rootfs"


async def test_an_override_that_cannot_be_had_says_which_variable():
    with pytest.raises(ImagesError, match="CUTOVER_BASE_IMAGE=nowhere:1"):
        await choose_bases(FakeEngine(), env={"CUTOVER_BASE_IMAGE": "nowhere:1"})


async def test_a_registry_missing_one_image_sends_only_that_one_to_the_rootfs():
    engine = FakeEngine(registry=True, serves={PINNED_PYTHON})
    bases = await choose_bases(engine, env={})
    assert bases.pipeline.source == "registry"
    assert bases.influxdb.source == "rootfs"
    assert "manifest unknown" in bases.influxdb.reason


# -- the content hash --------------------------------------------------------------------------


def _mini_repo(root: Path) -> Path:
    for rel, text in {"pyproject.toml": "[project]\nname='x'\n", "README.md": "# x\n",
                      "pipeline/__init__.py": "", "pipeline/storage/app.py": "A = 1\n",
                      "simulators/weather.py": "W = 1\n", "tests/test_x.py": "",
                      "pipeline/__pycache__/app.cpython-311.pyc": "bytecode"}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _hash(root: Path, base_id: str = "sha256:base") -> str:
    return content_hash([Entry("Dockerfile", b"FROM x\n"), *package_sources(root)],
                        {"base_id": base_id})


def test_content_hash_follows_the_image_sources_and_nothing_else(tmp_path):
    root = _mini_repo(tmp_path)
    before = _hash(root)
    (root / "README.md").write_text("# edited\n")
    (root / "tests/test_x.py").write_text("def test_x():\n    pass\n")
    (root / "pipeline/__pycache__/app.cpython-311.pyc").write_text("other bytecode")
    assert _hash(root) == before, "files that do not go into the image changed the hash"

    (root / "pipeline/storage/app.py").write_text("A = 2\n")
    after_source = _hash(root)
    assert after_source != before
    (root / "simulators/fault.py").write_text("")
    assert _hash(root) != after_source, "a new simulator file must change the hash"
    assert _hash(root, base_id="sha256:other") != _hash(root), "a new base must rebuild"


def test_package_sources_hold_pyproject_and_both_packages(tmp_path):
    names = {e.arcname for e in package_sources(_mini_repo(tmp_path))}
    assert names == {"app/pyproject.toml", "app/pipeline/__init__.py",
                     "app/pipeline/storage/app.py", "app/simulators/weather.py"}


# -- the whole run, on a fake engine: what is built, what is reused, and why -------------------


class FakeDocker(FakeEngine):
    """An engine with no registry that records builds and imports instead of doing them."""

    def __init__(self) -> None:
        super().__init__()
        self.builds: list[str] = []
        self.ids: dict[str, str] = {}

    async def ensure_engine(self, timeout: float = 15.0) -> str:
        return "fake"

    async def image_id(self, ref: str) -> str | None:
        return self.ids.get(ref)

    async def import_rootfs(self, tarball: Path, tag: str, *, changes, on_line=None) -> None:
        assert tarball.exists()
        self.ids[tag] = f"sha256:base-{len(self.ids)}"

    async def build(self, context: Path, dockerfile: Path, tag: str, *, build_args, labels,
                    no_cache=False, on_line=None) -> None:
        assert dockerfile.read_text().startswith("#")
        assert build_args["BASE_IMAGE"] in self.ids
        self.builds.append(tag)
        self.ids[tag] = f"sha256:{tag}"


def _ready_caches(cache: Path, repo: Path) -> None:
    """A cached rootfs tarball and wheelhouse, so the run needs neither debootstrap nor pip."""
    from harness.runtime.containers import rootfs

    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['orjson']\n")
    cache.mkdir(parents=True)
    rootfs.tarball_path(cache).write_bytes(b"not really a tarball")
    key = wheelhouse.wheelhouse_key(["orjson"], wheelhouse.host_matches_target())
    wheels = cache / f"wheelhouse-{key}"
    wheels.mkdir()
    (wheels / "orjson-3.10.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"wheel")
    (wheels / ".complete").write_text("")


def _builder(engine: FakeDocker, cache: Path, repo: Path) -> ImageBuilder:
    """A run on the fake engine, with no registry override and no progress shown."""
    return ImageBuilder(engine, cache, repo, Reporter(None), env={})  # type: ignore[arg-type]


async def test_a_run_builds_what_is_missing_and_a_second_builds_nothing(tmp_path):
    repo, cache, engine = _mini_repo(tmp_path / "repo"), tmp_path / "cache", FakeDocker()
    _ready_caches(cache, repo)

    def builder() -> ImageBuilder:
        return _builder(engine, cache, repo)

    first = await builder().ensure()
    assert first.pipeline.startswith("cutover-pipeline:")
    assert first.influxdb.startswith("cutover-influxdb:")
    assert engine.builds == [first.pipeline, first.influxdb]
    assert any("imported from the cached rootfs tarball: no registry answered" in line
               for line in first.built), first.built

    second = await builder().ensure()
    assert second.built == [] and engine.builds == [first.pipeline, first.influxdb]
    assert (second.pipeline, second.influxdb) == (first.pipeline, first.influxdb)

    (repo / "pipeline/storage/app.py").write_text("A = 3\n")
    third = await builder().ensure()
    assert third.pipeline != first.pipeline and third.influxdb == first.influxdb
    assert [line.split(" reused")[0] for line in third.reused if "InfluxDB image" in line] == \
        [f"InfluxDB image {first.influxdb}"]


async def test_no_registry_and_no_cached_tarball_runs_debootstrap(tmp_path, monkeypatch):
    from harness.runtime.containers import rootfs

    repo, cache, engine = _mini_repo(tmp_path / "repo"), tmp_path / "cache", FakeDocker()
    _ready_caches(cache, repo)
    rootfs.tarball_path(cache).unlink()
    debootstraps: list[Path] = []

    async def fake_make_tarball(cache_dir: Path, step) -> Path:  # the debootstrap boundary
        debootstraps.append(cache_dir)
        rootfs.tarball_path(cache_dir).write_bytes(b"rootfs")
        return rootfs.tarball_path(cache_dir)

    monkeypatch.setattr(rootfs, "make_tarball", fake_make_tarball)
    images = await _builder(engine, cache, repo).ensure()
    assert debootstraps == [cache]
    assert any(line.startswith(f"base {rootfs.base_tag()} built from a Debian rootfs: no "
                               "registry answered") for line in images.built), images.built
    assert engine.pulls == [PINNED_PYTHON]


def test_scratch_left_by_a_killed_run_is_swept_once_stale(tmp_path):
    import os

    from harness.runtime.containers.content import scratch_dir, stale_scratch

    old, fresh = scratch_dir(tmp_path, "rootfs"), scratch_dir(tmp_path, "context")
    os.utime(old, (time.time() - 4 * 3600,) * 2)
    (tmp_path / "wheelhouse-0123456789abcdef").mkdir()  # a finished cache entry: never swept
    os.utime(tmp_path / "wheelhouse-0123456789abcdef", (time.time() - 99 * 3600,) * 2)
    assert stale_scratch(tmp_path) == [old]
    assert fresh.exists()


# -- what goes into the images -----------------------------------------------------------------


def test_influxd_config_is_the_process_runtimes_listening_on_every_interface():
    config = influxd_config()
    assert 'bind-address = "0.0.0.0:8086"' in config
    assert 'dir = "/var/lib/influxdb/data"' in config
    assert "store-enabled = false" in config  # same choices as the process runtime's


def test_runtime_requirements_are_the_projects_dependencies_without_dev_extras():
    reqs = wheelhouse.runtime_requirements(Path(__file__).parents[2] / "pyproject.toml")
    names = {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for r in reqs}
    assert {"fastapi", "uvicorn", "orjson", "influxdb-client"} <= names
    assert "pytest" not in names


def test_a_host_that_is_not_the_containers_python_asks_pip_for_cp311_manylinux_wheels(tmp_path):
    argv = wheelhouse.pip_argv(tmp_path / "r.txt", tmp_path / "w", host_matches=False)
    assert "download" in argv and "--only-binary=:all:" in argv
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert any(a.startswith("manylinux_2_36_") for a in argv)
    same = wheelhouse.pip_argv(tmp_path / "r.txt", tmp_path / "w", host_matches=True)
    assert "wheel" in same  # builds wheels for sdist-only packages too


# -- the Debian mirror, from apt's own sources -------------------------------------------------


def test_the_mirror_comes_from_apts_sources_deb822_or_one_line(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("# nothing here\n")
    (apt / "sources.list.d/other.list").write_text(
        "deb http://other.example/apt cloud-sdk-bookworm main\n")
    (apt / "sources.list.d/off.sources.disabled").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nComponents: main\n")
    (apt / "sources.list.d/debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    mirror = find_mirror(apt_dir=apt, env={})
    assert mirror.uri == "http://mirror.example/debian"
    assert mirror.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"

    (apt / "sources.list.d/debian.sources").unlink()
    (apt / "sources.list").write_text(
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n")
    assert find_mirror(apt_dir=apt, env={}).uri == "http://one.example/debian"
    assert find_mirror(apt_dir=apt, env={"CUTOVER_DEBIAN_MIRROR": "http://x/d"}).uri == \
        "http://x/d"

    (apt / "sources.list").write_text("")
    with pytest.raises(ImagesError, match="CUTOVER_DEBIAN_MIRROR"):
        find_mirror(apt_dir=apt, env={})


# -- the docker CLI wrapper, against fake docker commands --------------------------------------


def _fake_docker(tmp_path: Path, body: str) -> str:
    path = tmp_path / "docker"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


async def test_pull_gives_up_at_once_when_the_daemon_says_no_registry(tmp_path):
    cli = _fake_docker(tmp_path, 'echo "Error response from daemon: Get \\"https://r/v2/\\": '
                                 'dial tcp: lookup r on 10.0.0.1:53: no such host" >&2; exit 1')
    started = time.monotonic()
    pulled = await Docker(cli).pull("python:3.11-slim-bookworm", answer_timeout=5)
    assert not pulled.ok
    assert "no such host" in pulled.detail
    assert time.monotonic() - started < 3


async def test_pull_gives_up_after_the_answer_timeout_when_nothing_answers(tmp_path):
    cli = _fake_docker(tmp_path, "exec sleep 30")
    started = time.monotonic()
    pulled = await Docker(cli).pull("python:3.11-slim-bookworm", answer_timeout=0.5)
    assert not pulled.ok and "no answer" in pulled.detail
    assert time.monotonic() - started < 5


async def test_a_registry_that_answers_gets_time_to_finish_a_slow_pull(tmp_path):
    cli = _fake_docker(tmp_path, 'echo "3.11-slim-bookworm: Pulling from library/python"; '
                                 "sleep 1.5; echo Downloaded")
    pulled = await Docker(cli).pull("python:3.11-slim-bookworm", answer_timeout=0.5)
    assert pulled.ok


async def test_no_engine_is_one_line_saying_how_to_get_one(tmp_path):
    cli = _fake_docker(tmp_path, 'echo; echo "Cannot connect to the Docker daemon at '
                                 'unix:///var/run/docker.sock. Is the docker daemon running?" '
                                 ">&2; exit 1")
    with pytest.raises(EngineUnavailable) as caught:
        await Docker(cli).ensure_engine()
    message = str(caught.value)
    assert "\n" not in message
    assert "Cannot connect" in message and HOW_TO_GET_AN_ENGINE in message
    with pytest.raises(EngineUnavailable, match="no `/nonexistent/docker` command"):
        await Docker("/nonexistent/docker").ensure_engine()


# -- real builds -------------------------------------------------------------------------------


def _engine_answers() -> bool:
    try:
        info = subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=15)
        return info.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_engine = pytest.mark.skipif(not _engine_answers(),
                                  reason=f"no Docker engine answers: {HOW_TO_GET_AN_ENGINE}")


@pytest.fixture(scope="module")
def images() -> ImageSet:
    # Built (or found) once for the module; a cold build is debootstrap + wheels + two builds.
    return ensure_images_sync()


@needs_engine
@pytest.mark.slow
@pytest.mark.timeout(1200)  # a cold build on 2 cores, on a slow mirror
class TestRealImages:
    def test_a_second_run_builds_nothing(self, images: ImageSet):
        again = ensure_images_sync()
        assert (again.pipeline, again.influxdb) == (images.pipeline, images.influxdb)
        assert again.built == [], again.built
        assert any("same content hash" in line for line in again.reused)

    def test_the_pipeline_image_holds_the_services_and_the_simulators(self, images: ImageSet):
        result = subprocess.run(
            ["docker", "run", "--rm", images.pipeline, "python", "-c",
             ("import sys, pipeline.storage, pipeline.ingestion, simulators.weather; "
              "print(sys.version_info[:2])")],
            check=False, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "(3, 11)"

    def test_the_pipeline_image_with_no_command_says_how_to_choose_a_service(self, images):
        result = subprocess.run(["docker", "run", "--rm", images.pipeline],
                                check=False, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert "python -m pipeline." in result.stderr

    def test_the_influxdb_image_answers_ping(self, images: ImageSet):
        name = f"cutover-test-influx-{uuid.uuid4().hex[:8]}"
        # Published on loopback only: the test talks to 127.0.0.1 and nothing else.
        subprocess.run(["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8086",
                        images.influxdb], check=True, capture_output=True, timeout=60)
        try:
            port = subprocess.run(["docker", "port", name, "8086/tcp"], check=True,
                                  capture_output=True, text=True, timeout=30)
            address = port.stdout.splitlines()[0].strip()
            assert address.startswith("127.0.0.1:")
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                try:
                    status = httpx.get(f"http://{address}/ping", timeout=2).status_code
                    if status == 204:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            assert status == 204
        finally:
            subprocess.run(["docker", "rm", "-f", "-v", name], check=False, capture_output=True,
                           timeout=60)


def test_cutover_images_without_an_engine_exits_2_with_one_line(tmp_path):
    fake = _fake_docker(tmp_path, 'echo "Cannot connect to the Docker daemon" >&2; exit 1')
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "images"], check=False, capture_output=True,
        text=True, timeout=60, cwd=Path(__file__).parents[2],
        env={"PATH": f"{Path(fake).parent}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cutover images: no Docker engine answers")
    assert ".ci/docker-engine" in lines[0]
