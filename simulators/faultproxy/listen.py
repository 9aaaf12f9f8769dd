"""Where a proxy may listen: loopback only, unless the server was started to allow more.

A deliberate difference from Toxiproxy, which listens wherever it is asked: anything that can
reach the API (any local process, with a browser's User-Agent already refused) could
otherwise open a listener on every interface that forwards into a service meant to stay
private. ``python -m simulators.faultproxy --allow-remote-listen`` (``FaultProxy(...,
allow_remote_listen=True)``) lifts the rule, e.g. inside a container whose own network
namespace is the boundary.
"""

from __future__ import annotations

import ipaddress
import socket

#: the hosts a proxy may listen on by default, as said in the refusal
LOOPBACK_HINT = "127.0.0.1, ::1 or localhost"


def is_loopback(host: str) -> bool:
    """True if every address ``host`` names is a loopback one (an empty host, every
    interface, is not). A name is resolved: ``localhost`` is loopback, a LAN name is not."""
    if not host:
        return False
    try:
        return _loopback_ip(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # unresolvable: not provably loopback; binding would fail anyway
    return bool(infos) and all(_loopback_ip(str(info[4][0])) for info in infos)


def _loopback_ip(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _every_interface(host: str) -> bool:
    try:
        return not host or ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def listen_problem(host: str, listen: str, *, allow_remote: bool) -> str | None:
    """Why ``listen`` (whose host is ``host``) is refused, or None if it may be used."""
    if allow_remote or is_loopback(host):
        return None
    where = "every interface" if _every_interface(host) else f"{host!r}, not a loopback address"
    return (f"listen {listen!r} is {where}: this fault proxy only listens on loopback "
            f"({LOOPBACK_HINT}); start it with --allow-remote-listen to accept other addresses")


__all__ = ["LOOPBACK_HINT", "is_loopback", "listen_problem"]
