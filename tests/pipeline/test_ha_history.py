"""Home Assistant's recorder read back as events (pipeline/common/ha_history.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from pipeline.common.ha_history import (
    UNKNOWN_CONTEXT,
    history_rows,
    iso_us,
    ns_from_history_time,
    row_event,
)
from pipeline.common.normalise import normalise, parse_time


def test_a_history_time_is_the_microsecond_home_assistant_writes_in_time_fired() -> None:
    """HA keeps one float and writes time_fired with datetime.fromtimestamp; rounding the
    product value * 1e6 is a microsecond off for about one float in eight."""
    rng = random.Random(12)
    off_by_product = 0
    for _ in range(20_000):
        ts = 1_796_448_933 + rng.random() * 86_400
        time_fired = datetime.fromtimestamp(ts, UTC).isoformat()
        assert ns_from_history_time(ts) == parse_time(time_fired)
        off_by_product += round(ts * 1e6) * 1000 != parse_time(time_fired)
    assert off_by_product > 1000  # the defect this conversion exists to avoid


def test_a_history_time_written_from_microseconds_comes_back_exactly() -> None:
    for us in (1_796_448_933_455_111, 1_796_448_933_000_000, 1_796_448_933_999_999):
        assert ns_from_history_time(us / 1e6) == us * 1000
    assert ns_from_history_time("1.0") is None and ns_from_history_time(True) is None


def test_rows_become_the_events_they_were_with_the_row_before_as_old_state() -> None:
    answer = {"light.a": [{"s": "on", "a": {"brightness": 3}, "lu": 1_796_448_934.5},
                          {"s": "off", "a": {}, "lu": 1_796_448_933.25, "lc": 1_796_448_933.0}],
              "sensor.b": "not a list", 7: []}
    [rows] = list(history_rows(answer))
    assert [r.state for r in rows] == ["off", "on"]  # in time order
    event = normalise(row_event(rows[1], rows[0]), received_at_ns=5)
    assert (event.entity_id, event.state, event.old_state) == ("light.a", "on", "off")
    assert event.time_fired_ns == 1_796_448_934_500_000_000
    assert event.attributes == {"brightness": 3} and event.context_id == UNKNOWN_CONTEXT
    first = normalise(row_event(rows[0], None), received_at_ns=5)
    assert first.old_state is None and first.time_fired_ns == rows[0].last_updated_ns
    assert iso_us(rows[0].last_changed_ns) == "2026-12-05T05:35:33.000000+00:00"
