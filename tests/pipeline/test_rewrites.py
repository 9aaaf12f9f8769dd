"""A writer's own count of how often it wrote each event key (what InfluxDB's merge erases)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.common.events import EventKey
from pipeline.common.line_protocol import escape_tag
from pipeline.common.rewrites import WriteCounts, key_of_line


def test_a_key_written_again_is_counted_and_named() -> None:
    counts = WriteCounts(capacity=10, examples=2)
    a, b, c = (EventKey(f"sensor.{n}", 1_000 + i) for i, n in enumerate("abc"))
    assert counts.record([a, b]) == 0
    assert counts.record([a, c, a]) == 2
    assert counts.record([b]) == 1
    figures = counts.stats()
    assert figures["rewritten"] == 3
    # The first keys rewritten, each once, as findings name events.
    assert figures["first"] == [["sensor.a", 1_000], ["sensor.b", 1_001]]


def test_memory_is_bounded_and_the_oldest_key_is_forgotten() -> None:
    counts = WriteCounts(capacity=3)
    keys = [EventKey("sensor.x", t) for t in range(5)]
    counts.record(keys)
    assert counts.stats()["remembered"] == 3
    assert counts.record([keys[0]]) == 0  # beyond the window: not seen
    assert counts.record([keys[4]]) == 1


@given(st.text(alphabet="ab ,=\\.x_", min_size=1, max_size=12).filter(
    lambda s: not s.endswith("\\") and "\\ " not in s), st.integers(0, 2**62))
def test_the_key_is_read_back_from_a_line_as_influxdb_reads_it(entity: str, t: int) -> None:
    line = (f"home_assistant_events,domain=d,entity_id={escape_tag(entity)},event_type=e "
            f'state="a b",writer="new" {t}')
    assert key_of_line(line) == EventKey(entity, t)
