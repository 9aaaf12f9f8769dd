"""A throwaway real influxd for a bench: started in a temporary directory, waited for until
it answers ``/ping``, stopped at the end. Exits the bench with the reason when it cannot."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness.runtime.influxd import find_influxd, influxd_argv, write_config
from harness.runtime.ports import free_ports

__all__ = ["running_influxd"]


@contextmanager
def running_influxd() -> Iterator[str]:
    """Its base URL, while it runs."""
    binary = find_influxd()
    if binary is None:
        sys.exit("influxd not found: apt-get install influxdb")
    with tempfile.TemporaryDirectory() as tmp:
        port, rpc_port = free_ports(2)
        config = write_config(Path(tmp), port, rpc_port)
        proc = subprocess.Popen(influxd_argv(binary, config), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_ping(proc, url)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def _wait_for_ping(proc: subprocess.Popen[bytes], url: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"influxd exited with {proc.returncode} before answering /ping")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    sys.exit("influxd did not answer /ping within 30 s")
