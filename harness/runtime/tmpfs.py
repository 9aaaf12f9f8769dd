"""A small disk for a service's data directory, and a filler that takes its free space.

The process runtime mounts a tmpfs of the asked size on the data directory before the
service first starts (``mount -t tmpfs -o size=...``: needs root, or CAP_SYS_ADMIN, as in CI),
and unmounts it when the run is closed. ``disk_full`` is then a filler file allocated with
``posix_fallocate`` over every free byte (tmpfs allocates pages on fallocate, so the space is
really gone, not promised), removed when the fault heals: the service's own files are never
touched. A tmpfs rather than a loop-mounted image file: no file system to make, nothing left
on the real disk, and the size is exact.

What a full disk does to SQLite: a commit that needs a page the write-ahead log does not
already have fails with ``database or disk is full``. A queue whose WAL has grown to its
checkpoint size (about 4 MiB) keeps committing into it while its depth stays under what it
held before, so a full disk bites when a queue has to grow, as on a real host.

mount and umount run as subprocesses (never blocking the event loop); fallocate runs on a
worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from harness.errors import TmpfsError

from . import disk_filler

__all__ = ["FILLER_NAME", "TmpfsError", "fill", "free", "free_bytes", "is_mounted", "mount",
           "unmount"]

FILLER_NAME = ".cutover-disk-full"


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


def is_mounted(path: Path) -> bool:
    """Whether a file system is mounted at ``path`` (its device differs from its parent's)."""
    return os.path.ismount(path)


async def mount(path: Path, size_bytes: int) -> None:
    """A tmpfs of ``size_bytes`` on ``path`` (created if need be). Idempotent."""
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
    if await asyncio.to_thread(is_mounted, path):
        return
    code, out = await _run("mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755",
                           "cutover-disk", str(path))
    if code != 0:
        raise TmpfsError(f"cannot mount a {size_bytes} byte tmpfs on {path}: {out or code}; a "
                         "disk_full fault needs root (or CAP_SYS_ADMIN) on --runtime process, "
                         "or --runtime containers")


async def unmount(path: Path) -> None:
    """Unmount (lazily: a service killed a moment ago may still hold a file open)."""
    if not await asyncio.to_thread(is_mounted, path):
        return
    code, out = await _run("umount", "--lazy", str(path))
    if code != 0:
        raise TmpfsError(f"cannot unmount {path}: {out or code}")


def free_bytes(path: Path) -> int:
    return disk_filler.free_bytes(str(path))


def _fill(path: Path) -> int:
    return disk_filler.fill_file(str(path / FILLER_NAME))


async def fill(path: Path) -> int:
    """Take every free byte of the file system at ``path``; returns the filler's size."""
    if not await asyncio.to_thread(is_mounted, path):
        raise TmpfsError(f"{path} is not a small disk of the run: refusing to fill the "
                         "machine's own disk")
    return await asyncio.to_thread(_fill, path)


async def free(path: Path) -> None:
    """Remove the filler; the service's files stay as they are."""
    def remove() -> None:
        with contextlib.suppress(FileNotFoundError):
            (path / FILLER_NAME).unlink()
    await asyncio.to_thread(remove)
