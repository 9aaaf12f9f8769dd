"""Free TCP ports on 127.0.0.1 for the services a runtime starts.

The kernel picks a free port for ``bind(("127.0.0.1", 0))``, but once that socket is closed
the same port may come back from the very next call. Two services of one run given the same
port is a run that fails in a misleading way (the first to bind answers for both: in one CI
run the weather simulator answered admin-api's requests with 404). So a run asks for all its
ports at once: every socket stays bound until the last port is chosen, which makes them
distinct.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["free_port", "free_ports"]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (bind them soon)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    with ExitStack() as held:
        ports: list[int] = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """One free port; a run that needs several asks ``free_ports`` for them together."""
    return free_ports(1)[0]
