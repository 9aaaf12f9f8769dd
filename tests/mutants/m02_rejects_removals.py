"""FAILURE_MODES.md #2, the validator rejects removals: ``new_state: null`` events are dropped.

websocket-ingestion's validation insists on a ``new_state`` object, so the event Home Assistant
sends when an entity is removed (``new_state`` null) is refused as malformed, counted, logged
once per hundred, and never reaches the outbox. Caught by the loss check on a fleet that
removes entities (``scenarios/fleet_churn.yaml``): every lost event is a removal.

Run in ingestion's place: ``python -m tests.mutants.m02_rejects_removals``.
"""

from __future__ import annotations

from typing import Any

import pipeline.ingestion.intake as intake
from pipeline.common.events import BadEvent, Event
from pipeline.ingestion.__main__ import main

_normalise = intake.normalise


def normalise_requiring_new_state(ha_event: Any, received_at_ns: int) -> Event:
    data = ha_event.get("data") if isinstance(ha_event, dict) else None
    if isinstance(data, dict) and data.get("new_state") is None:
        raise BadEvent("event.data.new_state: expected an object, got null")  # BUG
    return _normalise(ha_event, received_at_ns)


intake.normalise = normalise_requiring_new_state

if __name__ == "__main__":
    main()
