"""Benchmark of the per-event CPU at each new-path hop's intake, in one process (no HTTP, no
disk): what a service spends on every event before anything per request or per transaction.

- storage: ``judge_events`` (validate, render the point, check it encodes)
- enrichment: ``parse_batch`` (parse the body, validate each event)
- the parts alone: ``Event.model_validate`` and ``to_line``

The batch is realistic: enriched events of a 2,000-entity fleet with attributes and weather,
500 per batch (the services' batch size). Issue 15's profiles found the intakes to be a third
of the storage and enrichment processes' busy time at 4,000 events/s.

Usage: python bench/intake.py [--batches 200] [--quick]
Last line of output: one JSON object with the figures (microseconds per event, best of three
repeats: the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.common.events import Event  # noqa: E402
from pipeline.common.points import to_line  # noqa: E402
from pipeline.enrichment.intake import parse_batch  # noqa: E402
from pipeline.storage.intake import judge_events  # noqa: E402

BATCH = 500
ENTITIES = 2000
T0 = 1_790_000_000_000_000_000


def batch(offset: int) -> list[dict[str, object]]:
    items = []
    for i in range(offset, offset + BATCH):
        entity = i % ENTITIES
        t = T0 + i * 1000
        items.append({
            "context_id": f"01J{i:023d}", "entity_id": f"sensor.room_{entity}",
            "domain": "sensor", "time_fired_ns": t, "state": f"{(i % 400) / 10:.1f}",
            "old_state": "20.0", "received_at_ns": t + 5_000, "enriched_at_ns": t + 9_000,
            "attributes": {"unit_of_measurement": "°C", "friendly_name": f"Room {entity}",
                           "device_class": "temperature"},
            "weather": {"temperature": 12.5, "humidity": 81, "condition": "cloudy"},
            "weather_enriched": True, "flags": [], "target": "production"})
    return items


def per_event_us(work: Callable[[int], object], batches: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for b in range(batches):
            work(b)
        best = min(best, time.perf_counter() - started)
    return best / (batches * BATCH) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10 batches: shows it still runs")
    args = parser.parse_args()
    batches = 10 if args.quick else args.batches
    items = [batch(b * BATCH) for b in range(batches)]
    bodies = [orjson.dumps({"events": its}) for its in items]
    events = [[Event.model_validate(i) for i in its] for its in items]
    for body in bodies[:2]:  # warm caches as a running service has them
        parse_batch(body)

    figures = {
        "storage_judge_us": per_event_us(lambda b: judge_events(items[b], stored_at_ns=T0),
                                         batches),
        "enrichment_parse_us": per_event_us(lambda b: parse_batch(bodies[b]), batches),
        "validate_us": per_event_us(lambda b: [Event.model_validate(i) for i in items[b]],
                                    batches),
        "to_line_us": per_event_us(
            lambda b: [to_line(e, writer="new", stored_at_ns=T0) for e in events[b]], batches),
    }
    table = Table(title=f"CPU per event at a hop's intake ({batches * BATCH:,} events, "
                        f"batches of {BATCH})")
    table.add_column("work")
    table.add_column("µs/event", justify="right")
    table.add_column("events/s on one core", justify="right")
    for name, us in figures.items():
        table.add_row(name.removesuffix("_us"), f"{us:.1f}", f"{1e6 / us:,.0f}")
    Console().print(table)
    print(orjson.dumps({"quick": args.quick, "events": batches * BATCH,
                        **{k: round(v, 2) for k, v in figures.items()}}).decode())


if __name__ == "__main__":
    main()
