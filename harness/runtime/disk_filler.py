"""Take every free byte of a file system with one filler file: the disk_full fault.

Standard library only and runnable as a script (``python disk_filler.py FILE`` prints the
filler's size), so the process runtime calls `fill_file` on the host and the containers runtime
sends this very file into the container (which has no harness code) through ``python -c``.
"""

from __future__ import annotations

import os
import sys


def free_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def fill_file(filler: str) -> int:
    """Grow ``filler`` until its file system is full; returns its size."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        # Twice: a service may free a page between the statvfs and the allocation, or take
        # one; what matters is that nothing is left when this returns.
        for _ in range(2):
            room = free_bytes(os.path.dirname(filler) or ".")
            if room <= 0:
                break
            try:
                os.posix_fallocate(fd, size, room)
                size += room
            except OSError:  # ENOSPC: someone took some of it first; take what is left
                size = _grow_to_full(fd, size)
    finally:
        os.close(fd)
    return size


def _grow_to_full(fd: int, size: int, chunk: int = 1 << 20) -> int:
    while chunk >= 4096:
        try:
            os.posix_fallocate(fd, size, chunk)
            size += chunk
        except OSError:
            chunk //= 2
    return size


if __name__ == "__main__":
    print(fill_file(sys.argv[1]))
