"""What goes into an image, and the content hash that names it.

An image's tag is a hash of every file its build context holds (Dockerfile, config, wheels,
sources) plus the base image's id and the build arguments: the same inputs give the same tag,
so ``docker image inspect`` on the tag is the whole cache check. Files that do not go into the
image (README.md, tests/, the harness) are not hashed, so editing them rebuilds nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: The repository this package lives in (harness/runtime/containers/ -> repo root).
REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKER_DIR = Path(__file__).resolve().parent / "docker"

#: The packages the pipeline image runs; their whole trees go in, bytecode caches excepted.
IMAGE_PACKAGES = ("pipeline", "simulators")
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")

HASH_CHARS = 16  # of sha256 hex: plenty against collisions among a developer's images
#: Scratch directories in the cache start with this; ones a killed run left are swept later.
SCRATCH_PREFIX = ".tmp-"
_STALE_SCRATCH_S = 3 * 3600  # older than any build: no live run still uses it


def scratch_dir(cache: Path, kind: str) -> Path:
    """A fresh scratch directory in the cache (same filesystem: results are renamed in)."""
    cache.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{kind}-", dir=cache))


def stale_scratch(cache: Path, now: float | None = None) -> list[Path]:
    """Scratch directories a killed run left behind (a debootstrap one is ~300 MB)."""
    now = time.time() if now is None else now
    if not cache.is_dir():
        return []
    return [p for p in cache.glob(f"{SCRATCH_PREFIX}*")
            if p.is_dir() and now - p.stat().st_mtime > _STALE_SCRATCH_S]


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the rootfs tarball and the wheelhouse are kept between runs.

    Outside the work tree (XDG cache) so that every clone on the machine, CI's fresh clone
    included, shares one debootstrap and one download.
    """
    env = os.environ if env is None else env
    if env.get("CUTOVER_CACHE_DIR"):
        return Path(env["CUTOVER_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ha-cutover"


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a build context: where it goes in it, and a file to copy or bytes to write."""

    arcname: str
    source: Path | bytes

    def read(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()


def package_sources(root: Path, packages: Iterable[str] = IMAGE_PACKAGES) -> list[Entry]:
    """The files of ``packages`` under ``root`` and ``pyproject.toml``, as ``app/...`` entries."""
    entries = [Entry("app/pyproject.toml", root / "pyproject.toml")]
    for package in packages:
        for dirpath, dirnames, filenames in os.walk(root / package):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                if name.endswith(_SKIP_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                entries.append(Entry(f"app/{path.relative_to(root).as_posix()}", path))
    return entries


def content_hash(entries: Iterable[Entry], params: Mapping[str, str]) -> str:
    """sha256 over each entry's name and bytes and over ``params`` (base id, build args).

    Blocking (it reads every file, wheels included): call it through ``asyncio.to_thread``.
    """
    digest = hashlib.sha256()
    for key in sorted(params):
        digest.update(f"param {key}={params[key]}\n".encode())
    for entry in sorted(entries, key=lambda e: e.arcname):
        data = entry.read()
        digest.update(f"file {entry.arcname} {len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()[:HASH_CHARS]


def stage(entries: Iterable[Entry], context: Path) -> None:
    """Lay the entries out as a build context (hard links where possible: wheels are big)."""
    for entry in entries:
        target = context / entry.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry.source, bytes):
            target.write_bytes(entry.source)
            continue
        try:
            os.link(entry.source, target)
        except OSError:  # another filesystem, or links not allowed: copy
            target.write_bytes(entry.source.read_bytes())
