"""Which contract settings the harness gives each role (CONTRACT.md section 2): the names a
pipeline file may rename. The runtimes' wiring (harness/runtime/wiring.py) gives exactly these
and checks it does, so this table and what a service really gets cannot drift apart."""

from __future__ import annotations

from typing import Final

from harness.scenario.topology import PipelineService

__all__ = ["COMMON_SETTINGS", "ROLE_SETTINGS"]

#: what every role is given: where to listen, where to keep its state, how much to log
COMMON_SETTINGS: Final = ("CUTOVER_HOST", "CUTOVER_PORT", "CUTOVER_DATA_DIR", "CUTOVER_LOG_LEVEL")
_HA_CLIENT: Final = ("CUTOVER_HA_URL", "CUTOVER_HA_TOKEN", "CUTOVER_ADMIN_URL",
                     "CUTOVER_ROUTING_POLL_S")

ROLE_SETTINGS: Final[dict[PipelineService, frozenset[str]]] = {
    "legacy": frozenset((*COMMON_SETTINGS, *_HA_CLIENT, "CUTOVER_INFLUX_URL")),
    # the next stage downstream: storage itself when the plan has no enrichment
    "ingestion": frozenset((*COMMON_SETTINGS, *_HA_CLIENT, "CUTOVER_ENRICHMENT_URL")),
    "enrichment": frozenset((*COMMON_SETTINGS, "CUTOVER_STORAGE_URL", "CUTOVER_WEATHER_URL",
                             "CUTOVER_WEATHER_API_KEY")),
    "storage": frozenset((*COMMON_SETTINGS, "CUTOVER_INFLUX_URL")),
    "admin": frozenset((*COMMON_SETTINGS, "CUTOVER_ADMIN_TOKEN", "CUTOVER_MIGRATION_LEAD_MS",
                        "CUTOVER_STATE_FILE", "CUTOVER_SERVICES")),
}
