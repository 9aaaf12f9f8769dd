"""Addresses and the one error type: ``host:port`` parsing, and :class:`FaultProxyError`
(an error the HTTP API answers with its status); shared by proxies, the collection and the API."""

from __future__ import annotations

import socket


class FaultProxyError(Exception):
    """An error the HTTP API answers with its status: 400, 404, 409 or 500."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def split_address(address: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; an empty host means every interface) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise FaultProxyError(400, f"{what} must be host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve(address: str, what: str) -> tuple[str, int]:
    """``host:port`` -> the (host, port) to bind, looked up; 400 if it cannot be."""
    host, port = split_address(address, what)
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise FaultProxyError(400, f"{what} {address!r}: {exc}") from None
    return str(infos[0][4][0]), int(infos[0][4][1])


# --------------------------------------------------------------------------- statistics

__all__ = ["FaultProxyError", "join_address", "resolve", "split_address"]
