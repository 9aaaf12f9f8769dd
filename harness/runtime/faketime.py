"""A clock the harness can move under a running process: Debian's libfaketime, preloaded.

The process is started with ``LD_PRELOAD`` = libfaketime and ``FAKETIME_TIMESTAMP_FILE`` = a
file of ours holding the offset (``+30.000``, ``-120.000``, ``+0``); libfaketime reads that
file again every ``FAKETIME_CACHE_DURATION`` seconds, so an offset is set and healed without a
restart (within about two seconds: measured 1.3 to 2.0 s with a one-second cache). Reading it
on every call (``FAKETIME_NO_CACHE``) would be exact but costs a file read per
``time.time()``, which the services call for every event.

``FAKETIME_DONT_FAKE_MONOTONIC=1``: a real clock skew moves the wall clock only. Without it
libfaketime shifts CLOCK_MONOTONIC by the offset too, and a change of offset would jump every
asyncio timer of the service by minutes (a ``-2m`` skew would freeze its event loop for two
minutes), which is a different fault. The price, in libfaketime 0.9.10 (Debian 12): Python
3.11's ``time.sleep`` fails with EINVAL under this setting (libfaketime issue #426:
clock_nanosleep on an absolute monotonic deadline). The services never call ``time.sleep``
(asyncio's sleeps, condition waits and aiosqlite's queue are unaffected; checked), so the
fault is what it claims to be.

The file is outside the service's data directory: a full disk (``disk_full``) must not stop
the harness from moving a clock back.
"""

from __future__ import annotations

import asyncio
import glob
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LIBFAKETIME_GLOB", "ClockFile", "faketime_env", "find_libfaketime", "offset_text"]

LIBFAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
CACHE_DURATION_S = 1
# How long after a new offset is written a service may still read the old one (the cache
# interval plus libfaketime's own rounding, measured up to 2.0 s).
PICKUP_S = 2.5
HOW_TO_GET_IT = "install Debian's faketime package (`apt-get install faketime`, or .ci/system-deps)"


def find_libfaketime() -> str | None:
    """The preload library's path (multiarch directory: any machine), or None."""
    found = sorted(glob.glob(LIBFAKETIME_GLOB))
    return found[0] if found else None


def offset_text(offset_s: float) -> str:
    """What libfaketime reads from the file: a signed offset in seconds (``+0`` = true time)."""
    if offset_s == 0:
        return "+0"
    return f"{offset_s:+.3f}"


def faketime_env(library: str, offset_file: str) -> dict[str, str]:
    """The environment that starts a process on a clock read from ``offset_file``."""
    return {"LD_PRELOAD": library, "FAKETIME_TIMESTAMP_FILE": offset_file,
            "FAKETIME_CACHE_DURATION": str(CACHE_DURATION_S),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


@dataclass(frozen=True, slots=True)
class ClockFile:
    """The offset file of one service on this machine (the process runtime's)."""

    path: Path

    def env(self, library: str) -> dict[str, str]:
        return faketime_env(library, str(self.path))

    def reset(self) -> None:
        """True time, before the service starts (libfaketime wants the file to exist)."""
        self._write(0.0)

    async def set(self, offset_s: float) -> None:
        await asyncio.to_thread(self._write, offset_s)

    def read(self) -> str:
        return self.path.read_text().strip()

    def _write(self, offset_s: float) -> None:
        # Written beside and renamed over: libfaketime must never read a half-written offset.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(offset_text(offset_s) + "\n")
        os.replace(tmp, self.path)
