"""RoutingFollower against a tiny real admin-api: polling, waiting for coverage, staleness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Receive, Scope, Send

from pipeline.common.routing import RoutingEntry, RoutingFollower, RoutingTable, TableConflict
from tests.pipeline_kit._servers import LocalServer, wait_until

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC


class FakeAdmin:
    """Serves `table` at GET /api/v1/migration, or `status` when that is set."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self.status: int | None = None
        self.raw: bytes | None = None
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http" and scope["path"] == "/api/v1/migration"
        self.hits += 1
        status = self.status or 200
        body = self.raw if self.raw is not None else self.table.to_json().encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body if status == 200 else b"{}"})


def table(valid_until: int, *entries: tuple[int, int]) -> RoutingTable:
    return RoutingTable(
        entries=tuple(RoutingEntry(effective_from_ns=t, new_percent=p) for t, p in entries),
        valid_until_ns=valid_until,
    )


@pytest.fixture
async def admin() -> AsyncIterator[tuple[FakeAdmin, LocalServer]]:
    fake = FakeAdmin(table(T0 + 5 * SEC, (T0, 10)))
    server = LocalServer(fake)
    await server.start()
    yield fake, server
    await server.stop()


async def test_refresh_fetches_the_table(admin: tuple[FakeAdmin, LocalServer]) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=10)
    assert follower.stale and follower.table is None
    got = await follower.refresh()
    assert got == fake.table and follower.table == fake.table
    assert not follower.stale
    assert await follower.wait_covering(T0 + 5 * SEC, timeout=0) == fake.table
    await follower.stop()


async def test_an_event_beyond_valid_until_waits_for_a_table_that_covers_it(
    admin: tuple[FakeAdmin, LocalServer],
) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=0.05)
    follower.start()
    await wait_until(lambda: follower.table is not None)
    later = T0 + 8 * SEC
    waiter = asyncio.create_task(follower.owner("light.kitchen", later, timeout=5))
    await wait_until(lambda: follower.waiting == 1)
    await asyncio.sleep(0.2)  # several polls: still not covered, still waiting
    assert not waiter.done()
    fake.table = fake.table.extended(now_ns=T0 + 4 * SEC, lead_ns=5 * SEC)
    assert await waiter in ("legacy", "new")
    assert follower.waiting == 0
    await follower.stop()


async def test_a_waiter_triggers_a_poll_without_waiting_for_the_interval(
    admin: tuple[FakeAdmin, LocalServer],
) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=30)  # polling alone: 30 s
    follower.start()
    await wait_until(lambda: follower.table is not None)
    fake.table = fake.table.extended(now_ns=T0 + 10 * SEC, lead_ns=5 * SEC)
    got = await follower.wait_covering(T0 + 12 * SEC, timeout=2)
    assert got.valid_until_ns == T0 + 15 * SEC
    await follower.stop()


async def test_unreachable_admin_keeps_the_last_table_and_holds_later_events(
    admin: tuple[FakeAdmin, LocalServer],
) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=0.05)
    follower.start()
    await wait_until(lambda: follower.table is not None and not follower.stale)
    kept = follower.table
    fake.status = 503
    await wait_until(lambda: follower.stale)
    assert follower.table == kept
    # an event the old table covers is still decided...
    assert await follower.wait_covering(T0 + SEC, timeout=0.1) == kept
    # ...one beyond it is held (TimeoutError: the caller keeps it), never guessed
    with pytest.raises(TimeoutError):
        await follower.wait_covering(T0 + 6 * SEC, timeout=0.2)
    assert follower.waiting == 0
    assert follower.fetch_errors >= 1
    # admin-api comes back: the same event now goes through
    fake.table = fake.table.extended(now_ns=T0 + 2 * SEC, lead_ns=5 * SEC)
    fake.status = None
    assert (await follower.wait_covering(T0 + 6 * SEC, timeout=2)).valid_until_ns == T0 + 7 * SEC
    assert not follower.stale
    await follower.stop()


async def test_admin_down_before_the_first_table_holds_everything() -> None:
    server = LocalServer(FakeAdmin(RoutingTable()))  # never started: connection refused
    follower = RoutingFollower(server.url, interval=0.05)
    follower.start()
    with pytest.raises(TimeoutError):
        await follower.wait_covering(T0, timeout=0.2)
    assert follower.stale and follower.table is None and follower.fetch_errors >= 1
    await follower.stop()
    await server.stop()


async def test_a_table_rewriting_settled_history_is_refused(
    admin: tuple[FakeAdmin, LocalServer],
) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=10)
    kept = await follower.refresh()
    # admin-api lost its state and announces a change at a time we already decided with 10 %
    fake.table = table(T0 + 9 * SEC, (T0, 10), (T0 + 3 * SEC, 50))
    with pytest.raises(TableConflict):
        await follower.refresh()
    assert follower.table == kept and follower.stale and follower.conflicts == 1
    await follower.stop()


async def test_an_older_view_never_shrinks_coverage(admin: tuple[FakeAdmin, LocalServer]) -> None:
    fake, server = admin
    follower = RoutingFollower(server.url, interval=10)
    await follower.refresh()
    fake.table = table(T0 + 2 * SEC, (T0, 10))
    await follower.refresh()
    assert follower.table is not None and follower.table.valid_until_ns == T0 + 5 * SEC
    await follower.stop()


@pytest.mark.parametrize("raw", [b'{"entries": []}', b"not json", b'{"entries": 3}'])
async def test_a_table_without_valid_until_or_malformed_is_refused(
    admin: tuple[FakeAdmin, LocalServer], raw: bytes,
) -> None:
    fake, server = admin
    fake.raw = raw
    follower = RoutingFollower(server.url, interval=10)
    with pytest.raises(ValueError):
        await follower.refresh()
    assert follower.table is None and follower.stale
    await follower.stop()
