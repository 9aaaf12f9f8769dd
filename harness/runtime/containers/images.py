"""The images the containers runtime runs: built here, named by their content hash.

``ensure_images()`` returns the pipeline and InfluxDB image refs, building only what the engine
does not have yet: each tag is a hash of everything that goes into the image (see
``content.py``), so a second run with nothing changed builds nothing. Where no registry
answers, the base is made from a Debian rootfs and Python packages come from a wheelhouse
downloaded on the host (``rootfs.py``, ``wheelhouse.py``); ``bases.py`` says which base and why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from filelock import AsyncFileLock
from rich.console import Console

from harness.errors import CommandFailed, EngineUnavailable, ImagesError
from harness.runtime.influxd import CONFIG_TEMPLATE

from . import rootfs
from .bases import BaseChoice, Bases, choose_bases
from .content import (
    DOCKER_DIR,
    REPO_ROOT,
    Entry,
    cache_dir,
    content_hash,
    package_sources,
    scratch_dir,
    stage,
    stale_scratch,
)
from .engine import Docker
from .place import engine_place
from .progress import Reporter
from .ship import image_source, send_missing
from .wheelhouse import Wheelhouse, ensure_wheelhouse, runtime_requirements

__all__ = ["CommandFailed", "EngineUnavailable", "ImageSet", "ImagesError", "ensure_images",
           "ensure_images_sync", "influxd_config"]

PIPELINE_REPO = "cutover-pipeline"
INFLUXDB_REPO = "cutover-influxdb"
INFLUXDB_PORT = 8086
INFLUXDB_DATA = "/var/lib/influxdb"  # the image's VOLUME
HASH_LABEL = "io.ha-cutover.content-hash"


@dataclass(slots=True)
class ImageSet:
    """The image refs to run, and an account of this call.

    ``built``: what this call made or fetched (a build, an import, a debootstrap, a pull);
    ``reused``: what it found ready. One line each, with the reason.
    """

    pipeline: str
    influxdb: str
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def influxd_config() -> str:
    """The process runtime's influxd config, for a container: data in the volume, HTTP on
    every interface (the RPC port, used only by backup/restore, stays on loopback)."""
    text = CONFIG_TEMPLATE.format(root=INFLUXDB_DATA, port=INFLUXDB_PORT, rpc_port=8088)
    local = f'bind-address = "127.0.0.1:{INFLUXDB_PORT}"'
    if text.count(local) != 1:  # the template changed shape: say so rather than ship it
        raise ImagesError(f"harness/runtime/influxd.py CONFIG_TEMPLATE: expected one {local}")
    return text.replace(local, f'bind-address = "0.0.0.0:{INFLUXDB_PORT}"')


def pipeline_entries(repo: Path, wheels: Wheelhouse) -> list[Entry]:
    requirements = ("\n".join(wheels.requirements) + "\n").encode()
    return [Entry("Dockerfile", DOCKER_DIR / "pipeline.Dockerfile"),
            Entry("requirements.txt", requirements),
            *(Entry(f"wheels/{w.name}", w) for w in wheels.wheels),
            *package_sources(repo)]


def influxdb_entries() -> list[Entry]:
    return [Entry("Dockerfile", DOCKER_DIR / "influxdb.Dockerfile"),
            Entry("influxd.conf", influxd_config().encode())]


class ImageBuilder:
    """One ``ensure`` run: the engine, where caches live, and where progress goes."""

    def __init__(self, docker: Docker, cache: Path, repo: Path, reporter: Reporter,
                 env: Mapping[str, str] | None = None) -> None:
        self.docker = docker
        self.cache = cache
        self.repo = repo
        self.reporter = reporter
        self.env = os.environ if env is None else env
        self.built: list[str] = []
        self.reused: list[str] = []

    async def ensure(self, *, force: bool = False) -> ImageSet:
        started = time.monotonic()
        self.built, self.reused = [], []
        await self.docker.ensure_engine()
        for left in stale_scratch(self.cache):
            await rootfs.remove_tree(left)
        with self.reporter.step("choosing the base images") as step:
            bases = await choose_bases(self.docker, self.env, on_line=step.line)
        if force:
            await asyncio.to_thread(self._forget_caches, bases)

        # The rootfs (debootstrap, about a minute) and the wheel download are independent:
        # run them side by side.
        rootfs_base: str | None = None
        try:
            async with asyncio.TaskGroup() as group:
                base_task = (group.create_task(self._rootfs_base(bases, force))
                             if bases.needs_rootfs else None)
                wheels_task = group.create_task(self._wheelhouse())
        except BaseExceptionGroup as failed:  # the first one-line error, not a group
            raise failed.exceptions[0] from None
        if base_task is not None:
            rootfs_base = base_task.result()
        wheels = wheels_task.result()

        pipeline_base = self._base_ref(bases.pipeline, rootfs_base, "pipeline")
        pipeline = await self._image("pipeline image", PIPELINE_REPO, pipeline_base,
                                     pipeline_entries(self.repo, wheels), force)
        if bases.influxdb.source == "override":
            influxdb = bases.influxdb.ref or ""
            self.reused.append(f"InfluxDB image {influxdb} used as is: {bases.influxdb.reason}")
        else:
            influx_base = self._base_ref(bases.influxdb, rootfs_base, "InfluxDB")
            influxdb = await self._image("InfluxDB image", INFLUXDB_REPO, influx_base,
                                         influxdb_entries(), force)
        return ImageSet(pipeline, influxdb, self.built, self.reused,
                        time.monotonic() - started)

    def _base_ref(self, choice: BaseChoice, rootfs_base: str | None, image: str) -> str:
        if choice.source == "rootfs":
            assert rootfs_base is not None
            return rootfs_base
        assert choice.ref is not None
        (self.built if choice.source == "registry" else self.reused).append(
            f"{image} base {choice.ref}: {choice.reason}")
        return choice.ref

    def _forget_caches(self, bases: Bases) -> None:
        """``force``: start cold (debootstrap and wheel download again, builds with no cache)."""
        if bases.needs_rootfs:
            rootfs.tarball_path(self.cache).unlink(missing_ok=True)
        for old in self.cache.glob("wheelhouse-*"):
            shutil.rmtree(old, ignore_errors=True)

    async def _rootfs_base(self, bases: Bases, force: bool) -> str:
        tag = rootfs.base_tag()
        why = (bases.pipeline if bases.pipeline.source == "rootfs" else bases.influxdb).reason
        if not force and await self.docker.image_id(tag) is not None:
            self.reused.append(f"base {tag} reused: already imported; made from a Debian "
                               f"rootfs as {why}")
            return tag
        tarball = rootfs.tarball_path(self.cache)
        made = False
        if not tarball.exists():
            title = f"debootstrap {rootfs.SUITE} {rootfs.VARIANT} + {len(rootfs.PACKAGES)} packages"
            with self.reporter.step(title) as step:
                await rootfs.make_tarball(self.cache, step)
            made = True
        with self.reporter.step(f"docker import {tag}") as step:
            await rootfs.import_base(self.docker, tarball, step)
        how = "built from a Debian rootfs" if made else "imported from the cached rootfs tarball"
        self.built.append(f"base {tag} {how}: {why}")
        return tag

    async def _wheelhouse(self) -> Wheelhouse:
        requirements = runtime_requirements(self.repo / "pyproject.toml")
        with self.reporter.step(f"wheelhouse: {len(requirements)} runtime dependencies") as step:
            wheels = await ensure_wheelhouse(self.cache, requirements, step)
        if wheels.fresh:
            self.built.append(f"wheelhouse of {len(wheels.wheels)} wheels downloaded: "
                              "pip in a container build cannot reach an index")
        else:
            self.reused.append(f"wheelhouse of {len(wheels.wheels)} wheels reused: "
                               f"same requirements ({wheels.path})")
        return wheels

    async def _image(self, what: str, repo_name: str, base: str, entries: list[Entry],
                     force: bool) -> str:
        base_id = await self.docker.image_id(base)
        if base_id is None:
            raise ImagesError(f"{what}: the base image {base} is not in the engine")
        params = {"base_id": base_id, "BASE_IMAGE": base}
        digest = await asyncio.to_thread(content_hash, entries, params)
        tag = f"{repo_name}:{digest}"
        if not force and await self.docker.image_id(tag) is not None:
            self.reused.append(f"{what} {tag} reused: same content hash")
            return tag
        context = scratch_dir(self.cache, "context")
        try:
            await asyncio.to_thread(stage, entries, context)
            with self.reporter.step(f"docker build {tag}") as step:
                await self.docker.build(context, context / "Dockerfile", tag,
                                        build_args={"BASE_IMAGE": base},
                                        labels={HASH_LABEL: digest}, no_cache=force,
                                        on_line=step.line)
        finally:
            await asyncio.to_thread(shutil.rmtree, context, True)
        why = "forced" if force else "no image with this content hash yet"
        self.built.append(f"{what} {tag} built on {base}: {why}")
        return tag


def account(images: ImageSet) -> list[str]:
    """What a person reads at the end: what was built or reused and why, then the refs."""
    lines = [f"built   {line}" for line in images.built]
    lines += [f"reused  {line}" for line in images.reused]
    lines += [f"pipeline image: {images.pipeline}", f"InfluxDB image: {images.influxdb}",
              f"({images.seconds:.1f} s)"]
    return lines


async def ensure_images(console: Console | None = None, *, force: bool = False) -> ImageSet:
    """The pipeline and InfluxDB images, built if the engine lacks them (see module doc).

    Raises EngineUnavailable when no Docker engine answers, and ImagesError (one line, saying
    what to do) when an image cannot be had. ``force`` starts cold: debootstrap and wheel
    download again and build without docker's layer cache. Progress goes to ``console``.
    """
    reporter = Reporter(console)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    place = engine_place()
    target = Docker()  # the CLI finds the run's engine as testcontainers does
    # One builder at a time per cache (pytest -n workers, two terminals): the second waits,
    # then finds the images by content hash and reuses them instead of building them again.
    async with AsyncFileLock(cache / "images.lock"):
        with reporter:
            # An engine elsewhere gets what the local engine built (its caches are here),
            # sent; with no local engine, it builds them itself from the context we upload.
            await target.ensure_engine()  # the run's engine answers, or say how to get one
            source = await image_source(place)
            images = await ImageBuilder(source or target, cache, REPO_ROOT, reporter).ensure(
                force=force)
            if source is not None:
                shipment = await send_missing([images.pipeline, images.influxdb], source,
                                              target, reporter, place.docker_host or "")
                images.built += shipment.sent
                images.reused += shipment.there + shipment.nowhere
    for line in account(images):
        reporter.say(line)
    return images


def ensure_images_sync(console: Console | None = None, *, force: bool = False) -> ImageSet:
    """``ensure_images`` for callers with no event loop (tests, scripts)."""
    return asyncio.run(ensure_images(console, force=force))
