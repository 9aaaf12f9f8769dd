"""The Home Assistant client against the real fake Home Assistant (in this event loop)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pipeline.common.ha_client import HomeAssistantClient
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant
from tests.fixtures.fake_ha import HA_TOKEN
from tests.pipeline.keys import key_of


class Sink:
    """The callback: records what it is handed, as a service's intake would (no awaiting)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.received_at: list[int] = []
        self.fail_first = 0

    def __call__(self, event: Any, received_at_ns: int) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("callback bug")
        self.events.append(event)
        self.received_at.append(received_at_ns)

    @property
    def ids(self) -> list[str]:
        return [key_of(e) for e in self.events]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def subscriptions_per_connection(ledger: Ledger) -> dict[str, list[str]]:
    """Each connection's lifecycle steps, in order (opened, authenticated, subscribed, closed)."""
    steps: dict[str, list[str]] = defaultdict(list)
    for record in ledger.connections:
        steps[record.connection].append(record.what)
    return dict(steps)


def assert_one_subscription_each(ledger: Ledger) -> None:
    for conn, steps in subscriptions_per_connection(ledger).items():
        if "subscribed" in steps:
            assert steps.count("subscribed") == 1, (conn, steps)
            # never before auth_ok (FAILURE_MODES.md #4)
            assert steps.index("authenticated") < steps.index("subscribed"), (conn, steps)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def client(fake_ha: FakeHomeAssistant, sink: Sink) -> AsyncIterator[HomeAssistantClient]:
    ha = HomeAssistantClient(fake_ha.url, HA_TOKEN, sink, backoff_base=0.02)
    ha.start()
    await ha.wait_subscribed(5)
    yield ha
    await ha.stop()


async def test_events_arrive_in_order_with_their_receive_time(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient, sink: Sink
) -> None:
    before = time.time_ns()
    changes = fake_ha.fire(50)
    await wait_until(lambda: len(sink.events) >= 50)
    assert sink.ids == [key_of(c) for c in changes]
    assert all(before <= t <= time.time_ns() for t in sink.received_at)
    state = client.state
    assert (state.connected, state.authenticated, state.subscribed) == (True, True, True)
    assert state.events == 50 and state.reconnects == 0 and state.fatal_error is None
    assert state.last_event_ns == sink.received_at[-1]
    assert state.ha_version and state.down_for() == 0.0
    await client.stop()
    assert (state.connected, state.subscribed) == (False, False)
    assert_one_subscription_each(fake_ha.ledger)


async def test_coalesced_frames_are_unpacked(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient, sink: Sink
) -> None:
    changes = fake_ha.fire(3000)  # queued at once: the server sends JSON arrays
    await wait_until(lambda: len(sink.events) >= 3000)
    assert sink.ids == [key_of(c) for c in changes]
    # supported_features was sent: many events per frame (3 frames were the handshake replies)
    assert client.state.frames < 1000
    assert fake_ha.frames_sent < fake_ha.messages_sent


@pytest.mark.parametrize("fault", ["drop", "drop_abort", "restart"])
async def test_reconnects_with_exactly_one_subscription(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient, sink: Sink, fault: str
) -> None:
    first = fake_ha.fire(20)
    await wait_until(lambda: len(sink.events) == 20)
    if fault == "restart":
        await fake_ha.restart(downtime=0.2)
    else:
        await fake_ha.drop_connections(abort=fault == "drop_abort")
    await wait_until(lambda: client.state.connects == 2)
    second = fake_ha.fire(40)
    await wait_until(lambda: len(sink.events) >= 60)
    await asyncio.sleep(0.1)  # a duplicate subscription would deliver a second copy by now
    counts = Counter(sink.ids)
    assert set(counts) == {key_of(c) for c in first + second}
    assert max(counts.values()) == 1, "an event was delivered twice"
    # a drop is retried at once; a restart refuses connections for 0.2 s (0, 1, 2... x 0.02 s)
    assert client.state.reconnects == 1 if fault != "restart" else client.state.reconnects >= 2
    steps = subscriptions_per_connection(fake_ha.ledger)
    assert len(steps) == 2
    assert_one_subscription_each(fake_ha.ledger)
    # the second batch went to exactly one (the new) connection
    assert {e.connections for e in list(fake_ha.ledger)[20:]} == {("c2",)}


async def test_half_open_connection_is_detected_and_replaced(
    fake_ha: FakeHomeAssistant, sink: Sink
) -> None:
    ha = HomeAssistantClient(fake_ha.url, HA_TOKEN, sink, backoff_base=0.02,
                             ping_interval=0.1, pong_timeout=0.2, command_timeout=5)
    ha.start()
    await ha.wait_subscribed(5)
    stalled_at = time.monotonic()
    fake_ha.stall(1.0)  # socket open, nothing answered: like a dead peer without a FIN
    await wait_until(lambda: ha.state.heartbeat_timeouts == 1, timeout=2)
    detected_after = time.monotonic() - stalled_at
    assert detected_after <= 0.1 + 0.2 + 0.2  # ping interval + pong timeout + scheduling slack
    await wait_until(lambda: not ha.state.subscribed)
    assert "half-open" in (ha.state.last_error or "")
    await wait_until(lambda: ha.state.connects == 2, timeout=5)  # after the stall ends
    changes = fake_ha.fire(10)
    await wait_until(lambda: len(sink.events) >= 10)
    await asyncio.sleep(0.1)
    assert sink.ids == [key_of(c) for c in changes]
    assert_one_subscription_each(fake_ha.ledger)
    await ha.stop()


async def test_auth_invalid_is_final(fake_ha: FakeHomeAssistant, sink: Sink) -> None:
    ha = HomeAssistantClient(fake_ha.url, "wrong-token", sink, backoff_base=0.01)
    task = ha.start()
    await asyncio.wait_for(task, 5)  # the client gave up by itself: no retry loop
    assert ha.state.fatal_error == ("Home Assistant refused the token: "
                                    "Invalid access token or password")
    assert not ha.state.subscribed and ha.state.reconnects == 0
    assert [r.what for r in fake_ha.ledger.connections] == ["opened", "closed"]
    await ha.stop()


async def test_revoked_token_stops_the_client_after_one_retry(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient
) -> None:
    task = client._task
    assert task is not None
    await fake_ha.revoke_token()
    await asyncio.wait_for(asyncio.shield(task), 5)
    assert "Invalid access token" in (client.state.fatal_error or "")
    assert client.state.reconnects == 1 and not client.state.connected


async def test_commands_share_the_one_reader_without_losing_events(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient, sink: Sink
) -> None:
    fired: list[str] = []
    for _ in range(20):
        fired += [key_of(c) for c in fake_ha.fire(25)]
        states = await client.call("get_states")  # replies and events interleave on one socket
        assert len(states) == len(fake_ha.current_states())
    config = await client.call("get_config")
    assert config["state"] == "RUNNING"
    await wait_until(lambda: len(sink.events) >= len(fired))
    assert sink.ids == fired
    assert client.state.unexpected == 0


async def test_bad_frames_and_callback_errors_do_not_end_the_connection(
    fake_ha: FakeHomeAssistant, client: HomeAssistantClient, sink: Sink
) -> None:
    # One at a time: the fake coalesces whatever is queued into one array frame, and a broken
    # message would break the whole array (real HA only ever queues valid JSON).
    for kind in ("not_json", "truncated", "unknown_type"):
        frames = client.state.frames
        fake_ha.send_malformed_frame(kind)
        await wait_until(lambda frames=frames: client.state.frames == frames + 1)
    sink.fail_first = 1
    changes = fake_ha.fire(5)
    await wait_until(lambda: len(sink.events) >= 4)
    assert sink.ids == [key_of(c) for c in changes[1:]]
    assert client.state.bad_frames == 2  # the two frames that are not JSON
    assert client.state.unexpected == 1  # the unknown message type
    assert client.state.callback_errors == 1
    assert client.state.connects == 1 and client.state.reconnects == 0


async def test_retries_with_backoff_while_home_assistant_refuses_connections(
    fake_ha: FakeHomeAssistant, sink: Sink
) -> None:
    await fake_ha.refuse_connections(0.5)
    ha = HomeAssistantClient(fake_ha.url, HA_TOKEN, sink, backoff_base=0.05)
    ha.start()
    await wait_until(lambda: ha.state.reconnects >= 2)
    assert not ha.state.connected and ha.state.last_error
    assert ha.state.down_for() > 0
    await ha.wait_subscribed(3)
    # schedule 0, 1, 2, 3... x 0.05 s: about 0.5 s of refusals takes 4 to 6 attempts
    assert 2 <= ha.state.reconnects <= 7
    await ha.stop()
