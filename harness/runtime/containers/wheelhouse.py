"""The wheelhouse: the project's runtime dependencies as wheels, downloaded on the host.

pip inside a container cannot reach a package index here (the engine's network is not the
host's), so the host downloads every wheel once and the Dockerfile installs them with
``pip install --no-index``. The container's Python is CPython 3.11 on glibc (Debian bookworm's
python3, or python:3.11-slim-bookworm): where the host runs CPython 3.11 on the same machine
architecture, ``pip wheel`` serves both (and builds a wheel for any sdist-only package);
elsewhere ``pip download`` asks for 3.11 manylinux wheels explicitly, which works as long as
every dependency publishes one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ImagesError

from .content import scratch_dir
from .engine import check
from .progress import Step

TARGET_PYTHON = (3, 11)  # Debian bookworm's python3 and the pinned python image
_GLIBC = (2, 36)  # bookworm's; manylinux wheels up to this run in the image
_DONE = ".complete"  # written last: a wheelhouse without it is a download cut short


@dataclass(frozen=True, slots=True)
class Wheelhouse:
    path: Path
    requirements: list[str]
    wheels: list[Path]
    fresh: bool  # downloaded by this call (False: found in the cache)


def runtime_requirements(pyproject: Path) -> list[str]:
    """``[project].dependencies``: what the services import at run time (no dev extras)."""
    with pyproject.open("rb") as f:
        project = tomllib.load(f).get("project", {})
    deps = project.get("dependencies")
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ImagesError(f"{pyproject}: [project].dependencies is not a list of strings")
    return list(deps)


def host_matches_target() -> bool:
    """True when wheels pip picks for this interpreter also install in the image."""
    return (sys.implementation.name == "cpython" and sys.version_info[:2] == TARGET_PYTHON
            and sys.platform == "linux")


def pip_argv(requirements_file: Path, dest: Path, *, host_matches: bool) -> list[str]:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    if host_matches:
        # pip wheel takes published wheels as they are and builds the rest from sdists.
        return [*pip, "wheel", "--wheel-dir", str(dest), "-r", str(requirements_file)]
    arch = platform.machine()
    platforms = [f"manylinux_{_GLIBC[0]}_{minor}_{arch}" for minor in range(_GLIBC[1], 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    major, minor = TARGET_PYTHON
    argv = [*pip, "download", "--dest", str(dest), "--only-binary=:all:",
            "--implementation", "cp", "--python-version", f"{major}.{minor}",
            "--abi", f"cp{major}{minor}", "--abi", "abi3", "--abi", "none"]
    for tag in platforms:
        argv += ["--platform", tag]
    return [*argv, "-r", str(requirements_file)]


def wheelhouse_key(requirements: Sequence[str], host_matches: bool) -> str:
    """Names the cached wheelhouse: same requirements for the same target, same wheels."""
    text = "\n".join([f"target=cp{TARGET_PYTHON[0]}{TARGET_PYTHON[1]}-{platform.machine()}",
                      f"method={'wheel' if host_matches else 'download'}", *sorted(requirements)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(root: Path, requirements: Sequence[str]) -> Wheelhouse | None:
    path = root / f"wheelhouse-{wheelhouse_key(requirements, host_matches_target())}"
    if not (path / _DONE).exists():
        return None
    return Wheelhouse(path, list(requirements), sorted(path.glob("*.whl")), fresh=False)


async def ensure_wheelhouse(root: Path, requirements: Sequence[str], step: Step) -> Wheelhouse:
    """The cached wheelhouse for ``requirements``, downloading it first if there is none."""
    found = cached(root, requirements)
    if found is not None:
        return found
    host_matches = host_matches_target()
    path = root / f"wheelhouse-{wheelhouse_key(requirements, host_matches)}"
    # Download into a scratch directory and rename at the end: an interrupted download never
    # passes for a complete wheelhouse.
    scratch = scratch_dir(root, "wheelhouse")
    try:
        req_file = scratch / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n")
        wheels_dir = scratch / "wheels"
        argv = pip_argv(req_file, wheels_dir, host_matches=host_matches)
        what = "pip wheel" if host_matches else "pip download (cp311 manylinux wheels)"
        await check(argv, what, on_line=step.line)
        leftovers = [p.name for p in wheels_dir.iterdir() if not p.name.endswith(".whl")]
        if leftovers:
            raise ImagesError(f"no wheel for {', '.join(leftovers)}: run this on CPython "
                             f"{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} so pip can build one")
        (wheels_dir / _DONE).write_text("\n".join(sorted(os.listdir(wheels_dir))) + "\n")
        if path.exists():  # another run finished first: keep its wheelhouse
            shutil.rmtree(wheels_dir)
        else:
            wheels_dir.rename(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Wheelhouse(path, list(requirements), sorted(path.glob("*.whl")), fresh=True)
