"""A base image made from a Debian rootfs, for machines no container registry answers.

``debootstrap`` lays out a minimal bookworm with Python 3.11, Debian's influxdb package and
libfaketime (for ``clock_skew``),
from the same Debian mirror apt uses on this machine (read from its sources, so nothing here
names a host); ``docker import`` turns the tarball into an image. The tarball is cached, so a
lost image (``docker system prune``) costs an import, not another debootstrap.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ImagesError

from .content import scratch_dir
from .engine import Docker, check, run
from .progress import Step

SUITE = "bookworm"  # python3 is 3.11 there: the ABI of the wheelhouse
VARIANT = "minbase"
# libfaketime: the clock a clock_skew fault moves inside a pipeline container
# (harness/runtime/faketime.py); Debian's package, like the rest, since nothing is downloaded
# inside the image.
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "influxdb",
            "libfaketime")
BASE_REPO = "cutover-base"
# docker import makes an image with no config at all: give it what a Dockerfile's ENV PATH=...
# extends, a UTF-8 locale that needs no locales package, and a shell to land in.
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)
# Left out of the tarball: apt's downloaded .debs and package lists (about 100 MB) that the
# image never uses (nothing inside it can reach the mirror anyway).
_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists")


@dataclass(frozen=True, slots=True)
class Mirror:
    uri: str
    keyring: str | None  # Signed-By, handed to debootstrap so it checks the same keys apt does


def _parse_one_line(text: str) -> Iterable[tuple[str, list[str], list[str], dict[str, str]]]:
    """``deb [opts] uri suite comp...`` lines: (uri, suites, components, options)."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for opt in opts.split():
                key, _, value = opt.partition("=")
                options[key.lower()] = value
        parts = rest.split()
        if len(parts) >= 3:
            yield parts[0], [parts[1]], parts[2:], options


def _parse_deb822(text: str) -> Iterable[tuple[str, list[str], list[str], dict[str, str]]]:
    """deb822 ``.sources`` stanzas: (uri, suites, components, options) per URI."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:  # continuation line
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        options = {"signed-by": fields["signed-by"]} if "signed-by" in fields else {}
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split(), fields.get("components", "").split(), \
                options


def find_mirror(suite: str = SUITE, apt_dir: Path = Path("/etc/apt"),
                env: Mapping[str, str] | None = None) -> Mirror:
    """The mirror apt uses for ``suite``'s main component, from this machine's apt sources.

    ``CUTOVER_DEBIAN_MIRROR`` overrides it (for a host whose apt points elsewhere).
    """
    env = os.environ if env is None else env
    if env.get("CUTOVER_DEBIAN_MIRROR"):
        return Mirror(env["CUTOVER_DEBIAN_MIRROR"], None)
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        parse = _parse_deb822 if path.suffix == ".sources" else _parse_one_line
        for uri, suites, components, options in parse(text):
            if (suite in suites and "main" in components
                    and uri.startswith(("http://", "https://", "file:"))):
                return Mirror(uri, options.get("signed-by"))
    raise ImagesError(f"no Debian mirror for {suite} main in {apt_dir}/sources.list(.d): "
                      "set CUTOVER_DEBIAN_MIRROR, or CUTOVER_BASE_IMAGE to an image with "
                      "python3.11")


def rootfs_key() -> str:
    """Names the tarball and the base image: what debootstrap is asked for, not where from."""
    text = f"{SUITE} {VARIANT} {','.join(sorted(PACKAGES))} {os.uname().machine}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_tag() -> str:
    return f"{BASE_REPO}:{rootfs_key()}"


def tarball_path(cache: Path) -> Path:
    return cache / f"rootfs-{SUITE}-{rootfs_key()}.tar"


def debootstrap_argv(target: Path, mirror: Mirror) -> list[str]:
    argv = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}"]
    if mirror.keyring:
        argv.append(f"--keyring={mirror.keyring}")
    return [*argv, SUITE, str(target), mirror.uri]


def _require_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        raise ImagesError("no container registry answers and debootstrap is not installed: "
                          "`apt-get install debootstrap` (or `.ci/docker-engine`), or set "
                          "CUTOVER_BASE_IMAGE and CUTOVER_INFLUX_IMAGE to local images")
    if os.geteuid() != 0:
        raise ImagesError("building the base image from a Debian rootfs needs root "
                          "(debootstrap): run `cutover images` as root once, or set "
                          "CUTOVER_BASE_IMAGE and CUTOVER_INFLUX_IMAGE")


async def make_tarball(cache: Path, step: Step) -> Path:
    """debootstrap into a scratch directory, prune it, tar it into the cache (atomically)."""
    _require_debootstrap()
    mirror = find_mirror()
    target = tarball_path(cache)
    scratch = scratch_dir(cache, "rootfs")
    try:
        root = scratch / "root"
        await check(debootstrap_argv(root, mirror), f"debootstrap {SUITE} from {mirror.uri}",
                    on_line=step.line)
        for rel in _PRUNE:
            await asyncio.to_thread(_empty_dir, root / rel)
        step.line("tar of the rootfs")
        partial = scratch / "rootfs.tar"
        # --numeric-owner: the image's users are the rootfs's own uids, not this host's names.
        await check(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                    "tar of the rootfs", on_line=step.line)
        partial.rename(target)
    finally:
        await remove_tree(scratch)
    return target


async def remove_tree(path: Path) -> None:
    """rm -rf in a subprocess (a rootfs is tens of thousands of files: not on the event loop).

    --one-file-system: should a killed debootstrap have left /proc or a bind mount inside,
    rm stops at it instead of reaching into the host's; the directory then stays for a person.
    """
    await run(["rm", "-rf", "--one-file-system", str(path)])


def _empty_dir(path: Path) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        elif child.name != "lock":
            child.unlink()


async def import_base(docker: Docker, tarball: Path, step: Step) -> str:
    tag = base_tag()
    await docker.import_rootfs(tarball, tag, changes=IMPORT_CHANGES, on_line=step.line)
    return tag
