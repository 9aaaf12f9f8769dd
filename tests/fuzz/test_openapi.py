"""Every HTTP API of the pipeline, fuzzed by schemathesis from the service's own OpenAPI spec.

The five services run as real processes against a real influxd and the fake Home Assistant
(tests/fuzz/conftest.py); schemathesis sends schema-valid and schema-violating requests, over
real HTTP, to every operation of each one's spec. The specs are built from the apps at import
(schemathesis' lazy ``from_fixture`` loader does not work with pytest 9.2: it sets
``Node._nodeid``, which pytest no longer has), and `test_served_spec_is_the_one_fuzzed` checks
that each running service serves exactly that spec at ``/openapi.json``. For every operation:

- no 5xx (the stack is healthy, so even a 503 would be a failure here);
- the answer conforms to the spec: declared status, content type and body schema;
- a schema-violating request is refused (4xx), and every refusal is
  ``{"error": <reason>, "detail": <a sentence naming the problem>}``;
- ``POST /api/v1/events`` judges each event alone: a 200 accounts for every event sent
  (accepted + rejected), each rejection names its field, and an invalid batch either gets a 4xx
  or has the invalid event(s) rejected;
- the admin mutations refuse a request without the bearer token (schemathesis' ignored_auth);
- afterwards, whatever was accepted reached InfluxDB (no dead letter, queues drained).

The tests at the end pin what the fuzzing found, each with the fix it needed.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, settings

from pipeline.admin.settings import AdminSettings
from pipeline.common.config import load_settings
from pipeline.common.events import MAX_TIME_NS, dumps_event
from pipeline.common.normalise import normalise
from pipeline.enrichment.settings import EnrichmentSettings
from pipeline.ingestion.settings import IngestionSettings
from pipeline.legacy.settings import LegacySettings
from pipeline.storage.settings import StorageSettings
from tests.pipeline.ha_factory import T0_NS, ha_event

from .conftest import ADMIN_TOKEN, SERVICES, Stack

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: pip install -e '.[dev]'")
from schemathesis import Case, CheckContext, Response  # noqa: E402
from schemathesis.openapi.checks import RejectedPositiveData  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    negative_data_rejection,
    positive_data_acceptance,
)

pytestmark = pytest.mark.slow

#: Per operation and generation mode; 23 operations in all. Enough to hit every declared
#: constraint and its negation (schemathesis also runs its coverage phase of edge cases).
MAX_EXAMPLES = 30

#: Schema-valid requests a service may still refuse, for constraints JSON Schema cannot
#: express (across parameters; "no other parameters"; 7.0 is an integer to JSON Schema, not to
#: a strict body). Operation -> phrases, one of which the 4xx's detail must contain.
_QUERY_PROSE = ("must be after since", "outside InfluxDB's time range", "unknown parameter",
                "given more than once")
EXPRESSIBLE_ONLY_IN_PROSE = {
    "GET /api/v1/events": _QUERY_PROSE,
    "GET /api/v1/events/count": _QUERY_PROSE,
    "PUT /api/v1/migration": ("should be a valid integer",),
}


def _spec(name: str) -> dict[str, Any]:
    """The service's OpenAPI spec, built in-process from its app (no server needed to collect
    the tests; `test_served_spec_is_the_one_fuzzed` checks the running service serves it)."""
    module = importlib.import_module(f"pipeline.{name}.app")
    settings_cls = {"legacy": LegacySettings, "ingestion": IngestionSettings,
                    "enrichment": EnrichmentSettings, "storage": StorageSettings,
                    "admin": AdminSettings}[name]
    env = {"CUTOVER_HA_TOKEN": "x"} if name in ("legacy", "ingestion") else {}
    spec: dict[str, Any] = module.build_app(load_settings(settings_cls, env)).openapi()
    spec["info"]["x-service"] = name  # which launched process a case is sent to
    return spec


SPECS = {name: _spec(name) for name in SERVICES}
SCHEMAS = {name: schemathesis.openapi.from_dict(spec) for name, spec in SPECS.items()}


# -- checks of our own ---------------------------------------------------------------------------


def _body(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def refusal_says_why(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is the common error body, its detail a sentence rather than a code."""
    if not 400 <= response.status_code < 500:
        return None
    body = _body(response)
    assert isinstance(body, dict), (
        f"{response.status_code}, not a JSON object: {response.text:.200}"
    )
    assert isinstance(body.get("error"), str) and body["error"], f"no 'error' reason: {body}"
    detail = body.get("detail")
    assert isinstance(detail, str) and len(detail) >= 15, f"no explanatory 'detail': {body}"
    return True


def batch_verdicts_add_up(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """POST /api/v1/events: every event accounted for, rejections name the field, and an
    invalid batch is not accepted whole."""
    if case.operation.label != "POST /api/v1/events":
        return None
    sent = case.body.get("events") if isinstance(case.body, dict) else None
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        return True
    assert isinstance(sent, list), f"200 for a body that is not a batch: {case.body!r:.200}"
    assert set(case.body) == {"events"}, f"200 for unknown top-level fields: {sorted(case.body)}"
    answer = response.json()
    rejected = answer["rejected"]
    assert answer["accepted"] + len(rejected) == len(sent), answer
    indexes = [r["index"] for r in rejected]
    assert len(set(indexes)) == len(indexes) and all(0 <= i < len(sent) for i in indexes), answer
    for r in rejected:
        # "<field path>: <what is wrong>", e.g. "entity_id: ... is not of the form ..."
        reason = r["reason"]
        assert reason.startswith("expected an event object") or (
            ": " in reason and len(reason) >= 15), r
    if negative and sent:
        assert rejected, f"a schema-violating batch was accepted whole: {case.body!r:.300}"
    return True


def valid_request_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' positive_data_acceptance, except for refusals the spec can only state in
    prose (EXPRESSIBLE_ONLY_IN_PROSE), which must then say exactly that."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        allowed = EXPRESSIBLE_ONLY_IN_PROSE.get(case.operation.label, ())
        if response.status_code in (400, 422) and allowed:
            detail = response.json()["detail"]
            if any(phrase in detail for phrase in allowed):
                return True
        raise


def invalid_request_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' negative_data_rejection, except that a batch of events is answered 200
    with the invalid events rejected one by one (checked by batch_verdicts_add_up)."""
    if case.operation.label == "POST /api/v1/events" and response.status_code == 200:
        return True
    return negative_data_rejection(ctx, response, case)


# -- the test ------------------------------------------------------------------------------------


@schemathesis.pytest.parametrize(**SCHEMAS)
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck), print_blob=True)
def test_every_operation_of_every_service(case: Case, stack: Stack) -> None:
    service = case.operation.schema.raw_schema["info"]["x-service"]
    case.call_and_validate(
        base_url=stack.url(service),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
        additional_checks=[refusal_says_why, batch_verdicts_add_up, valid_request_accepted,
                           invalid_request_refused],
    )


def test_what_was_accepted_during_the_fuzzing_was_stored(stack: Stack) -> None:
    """After the fuzzing (same stack): every event enrichment or storage answered 200 for has
    left their queues for InfluxDB, and InfluxDB refused none of it (no dead letters)."""
    deadline = time.monotonic() + 30
    while True:
        enrichment = httpx.get(f"{stack.url('enrichment')}/api/v1/stats", timeout=5).json()
        storage = httpx.get(f"{stack.url('storage')}/api/v1/stats", timeout=5).json()
        if enrichment["queue_depth"] == 0 and storage["queue_depth"] == 0:
            break
        assert time.monotonic() < deadline, (enrichment, storage)
        time.sleep(0.2)
    assert (enrichment["dead_letters"], enrichment["forward_failures"]) == (0, 0), enrichment
    assert storage["dead_lettered"] == 0, storage["databases"]


@pytest.mark.parametrize("name", SERVICES)
def test_served_spec_is_the_one_fuzzed(stack: Stack, name: str) -> None:
    served = httpx.get(f"{stack.url(name)}/openapi.json", timeout=5).json()
    served["info"]["x-service"] = name
    assert served == SPECS[name]


# -- what the fuzzing found, pinned (each failed before its fix) --------------------------------


def _event(n: int, **override: Any) -> dict[str, Any]:
    event = normalise(ha_event("sensor.fuzz", "1", str(n), time_fired_ns=T0_NS + n * 1000),
                      T0_NS + 10**9)
    return {**orjson.loads(dumps_event(event)), **override}


def test_a_boundary_past_year_9999_is_a_422_not_a_500(stack: Stack) -> None:
    """effective_from_ns had no upper bound: 10**21 crashed the change record's ISO date."""
    response = httpx.put(f"{stack.url('admin')}/api/v1/migration",
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         json={"reason": "fuzz", "new_percent": 10, "effective_from_ns": 10**21})
    assert response.status_code == 422, response.text
    assert "effective_from_ns" in response.json()["detail"]


@pytest.mark.parametrize("service", ["enrichment", "storage"])
def test_numbers_influxdb_cannot_store_are_rejected_by_name(stack: Stack, service: str) -> None:
    """time_fired_ns past 2262 and 64-bit overflows were accepted with a 200, then refused by
    InfluxDB: dead-lettered by storage, never stored, the sender told all was well."""
    events = [_event(1, time_fired_ns=2**63), _event(2, received_at_ns=2**64),
              _event(3, time_fired_ns=MAX_TIME_NS + 1), _event(4)]
    response = httpx.post(f"{stack.url(service)}/api/v1/events", json={"events": events})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert reasons.keys() == {0, 1, 2}
    assert reasons[0].startswith("time_fired_ns:") and reasons[2].startswith("time_fired_ns:")
    assert reasons[1].startswith("received_at_ns:")


@pytest.mark.parametrize("service", ["enrichment", "storage"])
def test_unknown_top_level_fields_are_a_422_naming_them(stack: Stack, service: str) -> None:
    """storage ignored them (enrichment refused them): a sender of another schema must hear."""
    response = httpx.post(f"{stack.url(service)}/api/v1/events",
                          json={"events": [_event(5)], "evnets": []})
    assert response.status_code == 422, response.text
    assert "evnets" in response.json()["detail"]


def test_a_wrong_method_is_a_clear_405_listing_every_allowed_method(stack: Stack) -> None:
    """Starlette answered {"detail": "Method Not Allowed"}, and Allow named only the first
    route of a path served by two (GET and POST /api/v1/events)."""
    response = httpx.delete(f"{stack.url('storage')}/api/v1/events")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json() == {"error": "method_not_allowed", "detail": (
        "DELETE is not allowed on /api/v1/events; allowed: GET, POST")}
    missing = httpx.get(f"{stack.url('storage')}/api/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(("service", "body", "status", "phrase"), [
    ("enrichment", b'{"events": [', 400, "not valid JSON"),
    ("storage", b'{"events": [', 400, "not valid JSON"),
    ("storage", b'{"events": ["\xff"]}', 400, "not valid UTF-8: byte 0xff at offset 13"),
    ("enrichment", b'{"events": {}}', 422, '"events" list'),
    ("storage", b"[]", 422, "must be a JSON object"),
    ("enrichment", b"x" * (8 * 1024 * 1024 + 1), 413, "exceeds the limit of 8388608 bytes"),
    ("storage", b"x" * (16 * 1024 * 1024 + 1), 413, "exceeds the limit of 16777216 bytes"),
    ("admin", b'{"reason": " ", "new_percent": 10}', 422, "reason: Value error, must not be empty"),
    ("admin", b'{"reason": "x", "new_percent": 10.5}', 422, "new_percent"),
    ("admin", b"", 400, "request body is empty"),
])
def test_bad_bodies_get_a_4xx_naming_the_problem(stack: Stack, service: str, body: bytes,
                                                 status: int, phrase: str) -> None:
    method, path = (("PUT", "/api/v1/migration") if service == "admin"
                    else ("POST", "/api/v1/events"))
    response = httpx.request(method, f"{stack.url(service)}{path}", content=body, timeout=30,
                             headers={"Content-Type": "application/json",
                                      "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"]
