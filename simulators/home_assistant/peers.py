"""What the fake notes about a client's connection in the ledger: who the client says it is,
and who ended the connection when the fake did not close it on purpose."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

__all__ = ["user_agent", "who_closed"]


def who_closed(ws: ServerConnection) -> dict[str, Any]:
    """Who ended a connection the fake did not close on purpose, from the close frames: the
    client (it sent a close first), the server (websockets' keepalive gave up on an unanswered
    ping: 1011 "keepalive ping timeout"), or neither (the TCP connection just ended)."""
    protocol = ws.protocol
    sent, received = protocol.close_sent, protocol.close_rcvd
    if sent is not None and not protocol.close_rcvd_then_sent:
        return {"reason": "server", "sent_code": int(sent.code), "sent_reason": sent.reason}
    if received is not None:
        return {"reason": "client"}
    return {"reason": "lost"}


def user_agent(ws: ServerConnection) -> str:
    """The client's User-Agent (the pipeline's readers name themselves in it), or ''."""
    request = getattr(ws, "request", None)
    return (request.headers.get("User-Agent") or "") if request is not None else ""
