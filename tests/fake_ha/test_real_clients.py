"""The fake Home Assistant against two real client libraries it was never written against.

* ``home-assistant-js-websocket`` (the official JS client, what the frontend uses), driven by
  ``js_client/driver.js`` in a Node subprocess: auth, ``get_states`` / ``get_config``,
  ``subscribe_events``, ``subscribe_entities`` (compressed states, applied by the library),
  the config collection, coalesced frames, and its own reconnect after a server restart.
* ``hass-client`` (python, aiohttp): auth, version, ``get_states`` / ``get_config`` against its
  TypedDict models, ``subscribe_events`` (one type and all), ``subscribe_entities`` with an
  entity filter, unsubscribing, a refused token, and a server restart.

Each test runs the fake in-process on a free port.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulators.home_assistant.events import StateChange, event_object
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

from .conftest import TOKEN

try:
    from hass_client import client as hass_client
    from hass_client import exceptions as hass_exceptions
    from hass_client import models as hass_models
except ImportError:  # a dev dependency
    hass_client = None  # type: ignore[assignment]

needs_hass_client = pytest.mark.skipif(
    hass_client is None, reason="hass-client is not installed: pip install -e '.[dev]'")

JS_DIR = Path(__file__).parent / "js_client"
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                  "ENETUNREACH", "EHOSTUNREACH", "network", "request to https://")


def jsonable(value: Any) -> Any:
    """What a client decodes from the wire for ``value``."""
    return orjson.loads(orjson.dumps(value))


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


@pytest.fixture
async def ha(tmp_path: Path) -> AsyncIterator[FakeHomeAssistant]:
    # Frequent additions, removals, unavailable states and attribute type flips, so a few
    # hundred changes cover every shape of the compressed diff.
    spec = FleetSpec(entities=60, seed=3, p_add_remove=0.05, p_unavailable=0.1,
                     p_type_change=0.1)
    server = FakeHomeAssistant(ServerConfig(port=0, token=TOKEN), fleet=Fleet(spec),
                               ledger=Ledger(tmp_path / "ledger.jsonl"))
    async with server:
        yield server


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.02)


def subscribed_connections(ha: FakeHomeAssistant, *, entities: bool) -> list[Any]:
    """Connections of the fake listening to state_changed (and to entities if asked)."""
    return [c for c in ha.connections.values()
            if c.subs.state_changed_ids() and (c.subs.entities or not entities)]


def fire_in_batches(ha: FakeHomeAssistant, batches: list[int]) -> list[StateChange]:
    changes: list[StateChange] = []
    for n in batches:
        changes += ha.fire(n)
    return changes


# -- the JS client ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def js_client_dir() -> Path:
    """``npm ci`` into js_client/ once, skipped while node_modules matches the lockfile."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the home-assistant-js-websocket test: install "
                    "Node.js 20+ with npm (apt-get install nodejs npm, or https://nodejs.org)")
    lock = JS_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes() + (JS_DIR / "package.json").read_bytes()).hexdigest()
    stamp = JS_DIR / "node_modules" / ".installed-from-lock.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return JS_DIR
    try:
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("npm ci timed out after 300 s (no network to registry.npmjs.org?)")
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        cause = next((line for line in output.splitlines()
                      if any(marker in line for marker in NETWORK_ERRORS)), None)
        if cause is not None:
            pytest.skip(f"npm ci could not reach the npm registry (no network?): {cause.strip()}")
        pytest.fail(f"npm ci failed in {JS_DIR}:\n{output}")
    stamp.write_text(digest)
    return JS_DIR


class JsClient:
    """The driver script in a Node subprocess: JSON lines out, one command a line in."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Any) -> None:
        self.proc = proc
        self.stderr = stderr
        self.lines: list[dict[str, Any]] = []
        self._more = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, directory: Path, url: str, token: str) -> JsClient:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the JsClient owns it; close() closes it
        proc = await asyncio.create_subprocess_exec(
            "node", "driver.js", url, token, cwd=directory, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=stderr, limit=64 * 1024 * 1024)
        return cls(proc, stderr)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(orjson.loads(line))
            self._more.set()
        self._more.set()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == kind]

    def events(self) -> list[dict[str, Any]]:
        return [line["event"] for line in self.of_kind("event")]

    async def wait_for(self, kind: str, *, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """The ``count``-th line of ``kind``, once it is there."""
        deadline = time.monotonic() + timeout
        while len(found := self.of_kind(kind)) < count:
            if self._reader.done():
                raise AssertionError(f"driver exited waiting for {kind!r}: {self.diagnostics()}")
            self._more.clear()
            try:
                await asyncio.wait_for(self._more.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"no {kind!r} #{count} from the JS client within "
                                     f"{timeout}s: {self.diagnostics()}") from None
        return found[count - 1]

    async def wait_events(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self.wait_for("event", count=n, timeout=timeout)
        return self.events()

    async def dump(self) -> dict[str, Any]:
        self.send("dump")
        return (await self.wait_for("dump", count=len(self.of_kind("dump")) + 1))["entities"]

    def diagnostics(self) -> str:
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")[-2000:]
        kinds = [line["kind"] for line in self.lines][-20:]
        return f"last lines {kinds}, rc {self.proc.returncode}, stderr: {err!r}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                self.send("close")
                await asyncio.wait_for(self.proc.wait(), 3)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        self.stderr.close()


@pytest.fixture
async def js(ha: FakeHomeAssistant, js_client_dir: Path) -> AsyncIterator[JsClient]:
    client = await JsClient.start(js_client_dir, f"http://{ha.config.host}:{ha.port}", TOKEN)
    try:
        await client.wait_for("subscribed")
        # Entities and config subscriptions are made in the background: wait until the server
        # has them, so that nothing fired from here on can be missed.
        await eventually(lambda: subscribed_connections(ha, entities=True), what="subscriptions")
        await client.wait_for("config_collection")
        yield client
    finally:
        await client.close()


def assert_view_matches(view: dict[str, Any], states: list[dict[str, Any]]) -> None:
    """The JS client's entity view (from compressed states) equals the server's states."""
    expected = {s["entity_id"]: s for s in states}
    assert sorted(view) == sorted(expected)
    for eid, got in view.items():
        want = expected[eid]
        assert got["entity_id"] == eid
        assert got["state"] == want["state"], eid
        assert got["attributes"] == want["attributes"], eid
        assert got["context"] == want["context"], eid
        # Compressed times are float epoch seconds; the library makes millisecond ISO strings.
        for key in ("last_changed", "last_updated"):
            assert abs(epoch_ms(got[key]) - epoch_ms(want[key])) <= 1.0, (eid, key, got, want)


async def test_js_client_states_config_events_and_entity_view(ha, js) -> None:
    connected = js.of_kind("connected")[0]
    assert connected["haVersion"] == ha.config.ha_version
    assert js.of_kind("states")[0]["states"] == jsonable(ha.current_states())
    assert js.of_kind("config")[0]["config"] == jsonable(ha.ha_config())
    # subscribeConfig: get_config plus its two event subscriptions.
    assert js.of_kind("config_collection")[0]["config"] == jsonable(ha.ha_config())
    (conn,) = ha.connections.values()
    assert sorted(conn.subs.events.values()) == [
        "component_loaded", "core_config_updated", "state_changed"]
    # The initial {"a": ...} of subscribe_entities, before anything fired.
    assert_view_matches(await js.dump(), ha.current_states())

    changes = []
    for n in (1, 40, 3, 150, 10, 90):
        changes += ha.fire(n)
        await asyncio.sleep(0.01)  # several frames, some coalesced arrays
    # The run covers every shape of compressed message.
    assert any(c.old_state is None for c in changes), "no addition fired"
    assert any(c.new_state is None for c in changes), "no removal fired"
    assert any(c.old_state and c.new_state and c.old_state["attributes"].keys()
               - c.new_state["attributes"].keys() for c in changes), "no attribute removed"
    assert any(c.old_state and c.new_state and c.old_state["state"] == c.new_state["state"]
               for c in changes), "no attribute-only change"

    events = await js.wait_events(len(changes))
    assert [e["context"]["id"] for e in events] == [c.context_id for c in changes]
    assert events == [jsonable(event_object(c)) for c in changes]
    # It asked for coalesce_messages (id 1) and got arrays; it handled them.
    assert conn.frames_sent < conn.messages_sent

    assert_view_matches(await js.dump(), ha.current_states())
    # A fresh get_states through the library agrees too.
    js.send("states")
    assert (await js.wait_for("states", count=2))["states"] == jsonable(ha.current_states())
    assert not js.of_kind("fatal") and not js.of_kind("command_error")


async def test_js_client_is_refused_with_a_wrong_token(ha, js_client_dir) -> None:
    client = await JsClient.start(js_client_dir, f"http://{ha.config.host}:{ha.port}", "wrong")
    try:
        failed = await client.wait_for("connect_failed")
        assert failed["error"] == 2  # ERR_INVALID_AUTH: the library gives up, no retry
        assert await asyncio.wait_for(client.proc.wait(), 3) == 3
    finally:
        await client.close()
    await eventually(lambda: not ha.connections, what="the refused connection to close")


async def test_js_client_reconnects_by_itself_after_a_restart(ha, js) -> None:
    before = ha.fire(20)
    await js.wait_events(20)
    (old_conn,) = ha.connections.values()

    started = time.monotonic()
    await ha.restart(0.5)
    await js.wait_for("disconnected")
    # Its own backoff: an immediate attempt (refused while down), then one a second later.
    await js.wait_for("ready", timeout=10)
    reconnected_after = time.monotonic() - started
    new_conn = await eventually(lambda: [c for c in subscribed_connections(ha, entities=True)
                                         if c is not old_conn], what="resubscription")
    await eventually(lambda: len(new_conn[0].subs.events) == 3, what="all three resubscribed")
    assert 0.5 <= reconnected_after < 5, reconnected_after

    after = ha.fire(60)
    events = await js.wait_events(len(before) + len(after))
    assert [e["context"]["id"] for e in events] == [c.context_id for c in before + after]
    assert events[len(before):] == [jsonable(event_object(c)) for c in after]
    assert len(js.of_kind("connected")) == 1  # the same Connection object throughout
    assert_view_matches(await js.dump(), ha.current_states())


# -- hass-client ----------------------------------------------------------------------------------



@pytest.fixture
async def hc(ha: FakeHomeAssistant) -> AsyncIterator[Any]:
    async with hass_client.HomeAssistantClient(ha.url, TOKEN) as client:
        yield client


@needs_hass_client
async def test_hass_client_states_and_config_match_its_models(ha, hc) -> None:
    assert hc.connected and hc.version == ha.config.ha_version
    states = await hc.get_states()
    assert states == jsonable(ha.current_states())
    for state in states:
        assert hass_models.State.__required_keys__ <= state.keys()
        assert hass_models.Context.__required_keys__ <= state["context"].keys()
    config = await hc.get_config()
    assert config == jsonable(ha.ha_config())
    missing = hass_models.Config.__required_keys__ - config.keys()
    assert not missing, f"get_config lacks keys hass-client models: {missing}"
    assert hass_models.UnitSystemDetails.__required_keys__ <= config["unit_system"].keys()


@needs_hass_client
async def test_hass_client_receives_every_state_changed_event_until_it_unsubscribes(
        ha, hc) -> None:
    changed: list[dict[str, Any]] = []
    everything: list[dict[str, Any]] = []
    unsub = await hc.subscribe_events(changed.append, "state_changed")
    await hc.subscribe_events(everything.append)  # sent as event_type "*"
    changes = fire_in_batches(ha, [1, 50, 5, 200])
    await eventually(lambda: len(everything) >= len(changes), what="all events")
    await eventually(lambda: len(changed) >= len(changes), what="state_changed events")
    expected = [jsonable(event_object(c)) for c in changes]
    assert changed == expected and everything == expected
    for event in changed:
        assert hass_models.Event.__required_keys__ <= event.keys()
        assert hass_models.Context.__required_keys__ <= event["context"].keys()

    unsub()  # unsubscribe_events, in the background
    await eventually(lambda: all(len(c.subs.events) == 1 for c in ha.connections.values()),
                     what="unsubscribe_events")
    later = ha.fire(5)
    # Same connection, in order: once the "*" subscription has them, state_changed had its turn.
    await eventually(lambda: len(everything) == len(changes) + 5, what="events after unsub")
    assert [e["context"]["id"] for e in everything[-5:]] == [c.context_id for c in later]
    assert len(changed) == len(changes)


def apply_compressed(view: dict[str, dict[str, Any]], message: dict[str, Any]) -> None:
    """What a hass-client user does with subscribe_entities messages (the JS client's logic)."""
    for eid, comp in message.get("a", {}).items():
        c = comp["c"]  # a bare id, or the whole context when it has a parent or a user
        context = {"id": c, "parent_id": None, "user_id": None} if isinstance(c, str) else c
        view[eid] = {"s": comp["s"], "a": comp["a"], "c": context, "lc": comp["lc"],
                     "lu": comp.get("lu", comp["lc"])}
    for eid in message.get("r", []):
        del view[eid]
    for eid, diff in message.get("c", {}).items():
        entity = view[eid]
        plus, minus = diff.get("+", {}), diff.get("-", {})
        if "s" in plus:
            entity["s"] = plus["s"]
        if isinstance(plus.get("c"), str):  # only the id changed
            entity["c"] = {**entity["c"], "id": plus["c"]}
        elif "c" in plus:  # the parts that changed
            entity["c"] = {**entity["c"], **plus["c"]}
        if "lc" in plus:
            entity["lc"] = entity["lu"] = plus["lc"]
        elif "lu" in plus:
            entity["lu"] = plus["lu"]
        entity["a"] = {**entity["a"], **plus.get("a", {})}
        for key in minus.get("a", []):
            del entity["a"][key]


@needs_hass_client
async def test_hass_client_subscribe_entities_with_a_filter(ha, hc) -> None:
    watched = ha.fleet.entity_ids()[:30] + ["sensor.does_not_exist"]
    messages: list[dict[str, Any]] = []
    await hc.subscribe_entities(messages.append, watched)
    first = await eventually(lambda: messages and messages[0], what="initial entities")
    assert sorted(first) == ["a"]
    assert sorted(first["a"]) == sorted(watched[:30])

    changes = fire_in_batches(ha, [100, 100, 100])
    relevant = [c for c in changes if c.entity_id in watched]
    assert len({c.entity_id for c in relevant}) > 5
    assert any(c.new_state is None for c in relevant), "no watched entity removed"
    assert any(c.old_state is None for c in relevant), "no watched entity (re-)added"
    await eventually(lambda: len(messages) >= 1 + len(relevant), what="entity changes")
    assert len(messages) == 1 + len(relevant)
    for message, change in zip(messages[1:], relevant, strict=True):
        (kind,) = message
        assert change.entity_id in message[kind]

    view: dict[str, dict[str, Any]] = {}
    for message in messages:
        apply_compressed(view, message)
    expected = {s["entity_id"]: s for s in ha.current_states() if s["entity_id"] in watched}
    assert sorted(view) == sorted(expected)
    for eid, state in expected.items():
        got = view[eid]
        assert (got["s"], got["a"], got["c"]) == (
            state["state"], jsonable(state["attributes"]), state["context"]), eid
        assert got["lc"] == pytest.approx(epoch_ms(state["last_changed"]) / 1000, abs=1e-6)
        assert got["lu"] == pytest.approx(epoch_ms(state["last_updated"]) / 1000, abs=1e-6)


@needs_hass_client
async def test_hass_client_wrong_token_is_authentication_failed(ha) -> None:
    client = hass_client.HomeAssistantClient(ha.url, "wrong-token")
    try:
        with pytest.raises(hass_exceptions.AuthenticationFailed,
                           match="^Invalid access token or password$"):
            await client.connect()
        assert not client.connected
    finally:
        await client.disconnect()


@needs_hass_client
async def test_hass_client_survives_a_restart_and_nothing_is_replayed(ha) -> None:
    client = hass_client.HomeAssistantClient(ha.url, TOKEN)
    try:
        await client.connect()
        listener = asyncio.create_task(client.start_listening())
        received: list[dict[str, Any]] = []
        await client.subscribe_events(received.append, "state_changed")
        before = ha.fire(10)
        await eventually(lambda: len(received) == 10, what="events before the restart")

        restart = asyncio.create_task(ha.restart(0.5))
        # A clean close (1000) ends its listener without an error (ConnectionFailed otherwise).
        await asyncio.wait_for(listener, 3)
        assert not client.connected
        await asyncio.sleep(0.1)
        lost = ha.fire(7)  # nobody connected: never delivered, never replayed
        await restart

        await client.connect()
        listener = asyncio.create_task(client.start_listening())
        await client.subscribe_events(received.append, "state_changed")
        states = await client.get_states()
        assert states == jsonable(ha.current_states())  # resynchronised, lost changes included
        after = ha.fire(10)
        await eventually(lambda: len(received) >= 20, what="events after the restart")
        await asyncio.sleep(0.05)
        ids = [e["context"]["id"] for e in received]
        assert ids == [c.context_id for c in before + after]
        assert not {c.context_id for c in lost} & set(ids)
    finally:
        await client.disconnect()
