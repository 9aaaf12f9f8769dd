"""Recent events, proxied from storage's `GET /api/v1/events?limit=N` (newest first)."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["UpstreamError", "fetch_recent_events"]


class UpstreamError(Exception):
    """Storage did not answer usable events; str() says how."""


async def fetch_recent_events(
    client: httpx.AsyncClient, storage_url: str, limit: int, *, timeout: float
) -> list[Any]:
    """Storage's newest `limit` events, as storage returns them (`{"events": [...]}`)."""
    try:
        response = await client.get(f"{storage_url}/api/v1/events", params={"limit": limit},
                                    timeout=timeout)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"storage at {storage_url} did not answer: "
                            f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise UpstreamError(f"storage answered HTTP {response.status_code}: "
                            f"{response.text[:200]}")
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamError("storage answered a body that is not JSON") from exc
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise UpstreamError("storage's answer has no 'events' list")
    return events[:limit]
