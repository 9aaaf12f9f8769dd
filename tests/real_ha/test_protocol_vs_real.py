"""The fake Home Assistant against a real one (2025.4.4, started locally by ``real_ha``).

One probe (``probe.py``: a raw websockets client, not the pipeline) runs against both servers.
``test_real_*`` pin what the real server answers, so the probe itself is known to be right;
``test_fake_matches_real[aspect]`` then compares the fake's answer aspect by aspect: shapes,
key orders, codes, messages and close codes, never values.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig
from tests.fixtures.fake_ha import HA_TOKEN
from tests.fixtures.real_ha import RealHomeAssistant

from .probe import ProbeReport, SelfFiring, probe

# The first test of a session pays for a cold install of Home Assistant (~3 min on 2 cores)
# and its first start; every wait inside the probe has its own few-second timeout.
pytestmark = [pytest.mark.slow, pytest.mark.real_ha, pytest.mark.timeout(900)]

FRAME_KEYS = ["type", "event", "id"]
EVENT_KEYS = ["event_type", "data", "origin", "time_fired", "context"]
DATA_KEYS = ["entity_id", "old_state", "new_state"]
STATE_KEYS = ["entity_id", "state", "attributes", "last_changed", "last_reported",
              "last_updated", "context"]
CONTEXT_SHAPE = {"id": "ulid", "parent_id": "null-or-ulid", "user_id": "null-or-str"}
BAD_FORMAT = "Message incorrectly formatted."


def error(msg_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": False,
            "error": {"code": code, "message": message}}


def closed_after(*frames: dict[str, Any]) -> dict[str, Any]:
    """The server sent ``frames`` and then closed normally (1000)."""
    return {"frames_then": list(frames), "close_code": 1000, "close_reason": ""}


def auth_invalid(message: str) -> dict[str, Any]:
    return closed_after({"type": "auth_invalid", "message": message})


class FakeFiring:
    """The fake fires when asked, the way tests drive it."""

    def __init__(self, server: FakeHomeAssistant) -> None:
        self.server = server

    async def produce(self, n: int) -> None:
        self.server.fire(n)


async def _probe_fake(ledger_dir: Path) -> ProbeReport:
    server = FakeHomeAssistant(ServerConfig(port=0, token=HA_TOKEN),
                               fleet=Fleet(FleetSpec(entities=100, seed=11)),
                               ledger=Ledger(ledger_dir / "ledger.jsonl"))
    async with server:
        return await probe(server.url, HA_TOKEN, FakeFiring(server), context_window_s=2.0)


# Both reports are plain data read by many tests, so each probe runs once, in a loop of its own
# (asyncio.run): no test's event loop has to outlive the test.


@pytest.fixture(scope="module")
def real_report(real_ha: RealHomeAssistant) -> ProbeReport:
    real_ha.ensure_running()
    return asyncio.run(probe(real_ha.ws_url, real_ha.token, SelfFiring()))


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory: pytest.TempPathFactory) -> ProbeReport:
    return asyncio.run(_probe_fake(tmp_path_factory.mktemp("fake_ha_probe")))


# -- what the real server says (the probe is right) ------------------------------------------


def test_real_handshake_and_auth_failures(real_report: ProbeReport) -> None:
    a = real_report.aspects
    assert a["auth_required"] == {"type": "auth_required", "ha_version": "str"}
    assert a["auth_ok"] == {"type": "auth_ok", "ha_version": "str"}
    assert a["auth_before_auth_required"] == [a["auth_required"], a["auth_ok"]]
    assert a["auth:bad_token"] == auth_invalid("Invalid access token or password")
    assert a["auth:auth_without_token"] == auth_invalid("Invalid access token or password")
    prefix = "Auth message incorrectly formatted: "
    assert a["auth:auth_with_id"] == auth_invalid(
        prefix + "extra keys not allowed @ data['id']. Got 1")
    assert a["auth:auth_wrong_type"] == auth_invalid(
        prefix + "not a valid value for dictionary value @ data['type']. Got 'login'")
    assert a["auth:auth_token_not_str"] == auth_invalid(
        prefix + "expected str for dictionary value @ data['access_token']. Got 42")
    assert a["auth:auth_not_object"] == auth_invalid(prefix + "expected a dictionary. Got []")
    assert a["auth:auth_invalid_json"] == closed_after()
    assert a["auth:auth_binary_frame"] == closed_after()
    assert a["after_auth:invalid_json"] == closed_after()
    assert a["after_auth:empty_binary_frame"] == closed_after()
    assert a["after_auth:binary_frame_for_no_handler"] == {
        "frames_then": [], "close_code": "still open", "then_ping": {"id": 1, "type": "pong"}}


def test_real_command_errors(real_report: ProbeReport) -> None:
    a = real_report.aspects
    assert a["ping"] == {"id": 1, "type": "pong"}
    assert a["id_reuse"] == error(1, "id_reuse", "Identifier values have to increase.")
    assert a["unknown_command"] == error(2, "unknown_command", "Unknown command.")
    assert a["unknown_command:then_same_id"] == {"id": 2, "type": "pong"}
    # A broken envelope echoes whatever id it had (0 only when the message is not an object)
    # and does not use the id up.
    echoed = {"no_id": None, "id_str": "7", "id_bool": True, "id_zero": 0, "id_negative": -1,
              "no_type": 7, "type_not_str": 7, "not_object": 0}
    for name, msg_id in echoed.items():
        assert a[f"invalid_format:{name}"] == error(msg_id, "invalid_format", BAD_FORMAT), name
    assert a["invalid_format:envelope_then_lower_id"] == {"id": 3, "type": "pong"}
    # A command failing its own schema gets voluptuous' words, unprefixed, and its id IS used up.
    assert a["invalid_format:schema_event_type"] == error(
        4, "invalid_format", "expected str for dictionary value @ data['event_type']. Got 42")
    assert a["invalid_format:schema_then_same_id"] == error(
        4, "id_reuse", "Identifier values have to increase.")
    assert a["invalid_format:schema_extra_key"] == error(
        5, "invalid_format", "extra keys not allowed. Got {'id': 5, 'type': 'ping', 'x': 1}")
    assert a["invalid_format:schema_missing_key"] == error(
        6, "invalid_format", "required key not provided @ data['subscription']. Got None")
    assert a["unsubscribe_events"] == {"id": 13, "type": "result", "success": True,
                                       "result": None}
    for name, msg_id in (("again", 14), ("never_subscribed", 15)):
        assert a[f"unsubscribe_events:{name}"] == error(
            msg_id, "not_found", "Subscription not found.")


def test_real_event_and_state_shapes(real_report: ProbeReport) -> None:
    a = real_report.aspects
    assert a["subscribe_events:result"] == {"id": 12, "type": "result", "success": True,
                                            "result": None}
    assert a["event:frame_key_order"] == [tuple(FRAME_KEYS)]
    assert a["event:event_key_order"] == [tuple(EVENT_KEYS)]
    assert a["event:data_key_order"] == [tuple(DATA_KEYS)]
    assert a["event:state_key_order"] == [tuple(STATE_KEYS)]
    assert a["get_states:state_key_orders"] == [tuple(STATE_KEYS)]
    assert a["event:context_shape"] == [CONTEXT_SHAPE]
    assert a["event:time_fired_kind"] == ["iso8601-us-utc"]
    assert a["event:context_is_new_state_context"] is True
    assert a["event:time_fired_is_new_state_last_updated"] is True
    assert a["event:subscription_id"] == [12]
    assert a["get_config:state"] == "RUNNING"
    for key in ("location_name", "latitude", "longitude", "elevation", "unit_system",
                "time_zone", "version", "components", "state"):
        assert key in a["get_config:keys"], key


def test_real_coalescing(real_report: ProbeReport) -> None:
    a = real_report.aspects
    assert a["coalesced_without_the_feature"] is False
    assert a["supported_features"] == {"id": 1, "type": "result", "success": True,
                                       "result": None}
    # subscribe_events then get_states, read by HA together (one TCP write): one array frame
    # holds both replies. (Sent by two writes, only some pairs coalesce: see probe.py.)
    assert a["coalescing:frames"] == ["array(2)"]
    assert a["coalescing:replies"] == [{"id": 2, "type": "result", "success": True},
                                       {"id": 3, "type": "result", "success": True}]


def test_real_history(real_report: ProbeReport) -> None:
    a = real_report.aspects
    assert a["history:missing_entity_ids"] == error(
        16, "invalid_format", "required key not provided @ data['entity_ids']. Got None")
    assert a["history:bad_start_time"] == error(17, "invalid_start_time", "Invalid start_time")
    assert a["history:reply"] == {"id": 18, "type": "result", "success": True}
    assert a["history:result_keys_are_asked_entities"] is True
    # lc, when present, comes after lu (HA adds it only when last_changed differs).
    allowed = [{"s": "str", "a": "object", "lu": "float", "lc": "float"},
               {"s": "str", "a": "object", "lu": "float"}]
    shapes = a["history:compressed_state_shapes"]
    assert shapes and all(s in allowed for s in shapes), shapes
    assert [list(s) for s in shapes if "lc" in s] in ([], [["s", "a", "lu", "lc"]])
    assert a["history:lc_only_when_it_differs_from_lu"] is True


def test_real_automation_run_shares_one_context(real_report: ProbeReport) -> None:
    a, stats = real_report.aspects, real_report.stats["contexts"]
    assert a["contexts:events_share_a_context"] is True
    assert a["contexts:an_automation_run_changes_its_entity_twice_under_one_context"] is True
    run = stats["example_run"]
    automation = next(e for e in run if e.startswith("automation."))
    assert run.count(automation) == 2 and len(run) >= 4, run
    # The chain automation runs in a child context of tick's run.
    assert a["contexts:parent_id_kinds"] == ["null", "ulid"]
    assert stats["child_contexts_with_a_parent_seen"] >= 1, stats
    assert stats["events_per_s"] >= 3, stats  # a few per second, as configured


# -- the fake, aspect by aspect --------------------------------------------------------------

ASPECTS = [
    "auth_required", "auth_ok", "auth_before_auth_required",
    "auth:bad_token", "auth:auth_with_id", "auth:auth_without_token", "auth:auth_wrong_type",
    "auth:auth_token_not_str", "auth:auth_not_object", "auth:auth_invalid_json",
    "auth:auth_binary_frame", "after_auth:invalid_json", "after_auth:empty_binary_frame",
    "after_auth:binary_frame_for_no_handler",
    "ping", "id_reuse", "unknown_command", "unknown_command:then_same_id",
    "invalid_format:no_id", "invalid_format:id_str", "invalid_format:id_bool",
    "invalid_format:id_zero", "invalid_format:id_negative", "invalid_format:no_type",
    "invalid_format:type_not_str", "invalid_format:not_object",
    "invalid_format:envelope_then_lower_id", "invalid_format:schema_event_type",
    "invalid_format:schema_then_same_id", "invalid_format:schema_extra_key",
    "invalid_format:schema_missing_key",
    "get_states:reply", "get_states:state_key_orders", "get_states:state_shapes",
    "get_config:reply", "get_config:keys", "get_config:state",
    "subscribe_events:result", "event:frame_shapes", "event:frame_key_order",
    "event:event_key_order", "event:data_key_order", "event:state_key_order",
    "event:context_shape", "event:time_fired_kind", "event:context_is_new_state_context",
    "event:time_fired_is_new_state_last_updated", "event:subscription_id",
    "unsubscribe_events", "unsubscribe_events:again", "unsubscribe_events:never_subscribed",
    "history:missing_entity_ids", "history:bad_start_time", "history:reply",
    "history:result_keys_are_asked_entities", "history:compressed_state_shapes",
    "history:lc_only_when_it_differs_from_lu",
    "coalesced_without_the_feature", "supported_features", "coalescing:frames",
    "coalescing:replies",
    "contexts:events_share_a_context", "contexts:parent_id_kinds",
    "contexts:an_automation_run_changes_its_entity_twice_under_one_context",
]
# Shapes that depend on which entities happened to change: the fake's must be among the real
# server's, not all of them (its fleet has no scenes, its history holds other entities).
SUBSET_ASPECTS = {"history:compressed_state_shapes"}


def pretty(value: Any) -> str:
    """Multi-line JSON in the report's own key order, so a failure shows a readable diff."""
    return json.dumps(value, indent=1, default=list, ensure_ascii=False)


def test_every_aspect_is_compared(real_report: ProbeReport) -> None:
    assert sorted(real_report.aspects) == sorted(ASPECTS)


@pytest.mark.parametrize("aspect", ASPECTS)
def test_fake_matches_real(aspect: str, real_report: ProbeReport,
                           fake_report: ProbeReport) -> None:
    real, fake = real_report.aspects[aspect], fake_report.aspects.get(aspect, "(not reported)")
    if aspect in SUBSET_ASPECTS and isinstance(real, list) and isinstance(fake, list) and fake:
        extra = [s for s in fake if s not in real]
        assert not extra, f"the fake answers shapes real HA never does:\n{pretty(extra)}\n" \
                          f"real HA:\n{pretty(real)}"
        return
    assert pretty(fake) == pretty(real), f"fake (left) vs real Home Assistant (right): {aspect}"
