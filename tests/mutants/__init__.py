"""Deliberately broken variants of the pipeline, one per row of FAILURE_MODES.md.

Each ``mNN_<defect>.py`` is a module the process runtime runs in a service's place
(``run_scenario(..., service_modules={"storage": "tests.mutants.m07_fire_and_forget"})``): it
imports the real service, monkeypatches or subclasses exactly the one thing that is broken, and
starts the service as ``python -m pipeline.<service>`` would. ``test_mutants.py`` runs each
against the scenario that must catch it and checks the verdict names the defect's evidence;
``clean_runs.py`` runs the same scenarios on the unmutated pipeline to show no false alarm.

Nothing here is imported by ``pipeline/``; the mutants live in the test tree only.
"""

from __future__ import annotations

#: row -> (mutant module, service(s) it replaces, joined by '+', scenario that must catch it)
MUTANTS: dict[int, tuple[str, str, str]] = {
    1: ("m01_schema_mismatch", "storage", "load_spike"),
    2: ("m02_rejects_removals", "ingestion", "fleet_churn"),
    3: ("m03_field_type_conflict", "storage", "fleet_churn"),
    4: ("m04_subscribe_before_auth", "ingestion", "fleet_churn"),
    5: ("m05_second_reader", "ingestion", "fleet_churn"),
    6: ("m06_duplicate_subscription", "ingestion", "survive_ha_restart"),
    7: ("m07_fire_and_forget", "storage", "survive_influxdb_outage"),
    8: ("m08_breaker_drops", "enrichment", "survive_downstream_crash"),
    9: ("m09_rate_limiter_drops", "ingestion", "load_spike"),
    10: ("m10_health_always_ok", "ingestion", "survive_ha_restart"),
    11: ("m11_processing_time", "storage", "phase3_traffic_switch"),
    12: ("m12_lossy_normalisation", "enrichment", "phase3_traffic_switch"),
    13: ("m13_slow_enrichment", "ingestion+enrichment", "load_with_slow_weather"),
    14: ("m14_writer_stops", "storage", "fleet_churn"),
    # Not a row of FAILURE_MODES.md: the defect a real Home Assistant showed (shared contexts).
    15: ("m15_dedupe_by_context", "enrichment", "phase3_traffic_switch"),
    # Issue 12: zero loss includes what Home Assistant fired while nobody was subscribed.
    16: ("m16_no_gap_recovery", "ingestion", "survive_ha_restart"),
    # Issue 12, item 6: the host's own faults (a full disk, a skewed clock).
    17: ("m17_full_disk_acks", "storage", "survive_disk_full"),
    18: ("m18_rejects_future_events", "storage", "survive_clock_skew"),
    # Issue 13: defects only who-wrote-what shows (InfluxDB merges a second write silently).
    19: ("m19_legacy_percent_unscaled", "legacy", "phase3_traffic_switch"),
    20: ("m20_shadow_sampled", "storage", "phase2_parallel"),
    21: ("m21_retry_after_success", "storage", "phase3_traffic_switch"),
}
