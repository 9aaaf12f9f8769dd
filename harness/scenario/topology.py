"""The system's topology, written once: its services, the hops between them, the new path's
order, who writes production, the databases.

Every other list of services in harness/ is derived from here (a Literal alias, a tuple, an
order), so that a service cannot be added to one place and forgotten in another. It sits in
``harness/scenario/`` because simulators/des may import the scenario language: the simulator
can share it rather than keep its own copy. Plain data, no imports from the harness.

The order of each tuple is the order of its Literal and is significant: it is the order a
scenario's ``all`` and ``new`` expand to, the order of the JSON Schema's enums and of the
error messages that list them.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "ADMIN_WATCHES",
    "CHAOS_START_ORDER",
    "FAILABLE",
    "FAULT_PROXY",
    "HA_CLIENTS",
    "HOPS",
    "HOP_ENDS",
    "NEW_PATH",
    "NEW_SERVICES",
    "NEW_START_ORDER",
    "PIPELINE_SERVICES",
    "PRODUCTION_DB",
    "QUEUE_SERVICES",
    "SERVICES",
    "SHADOW_DB",
    "WRITER_SERVICE",
    "Failable",
    "FaultProxy",
    "FaultTarget",
    "HaClient",
    "Hop",
    "Managed",
    "NewPathService",
    "NewService",
    "PipelineService",
    "QueueService",
    "Service",
    "Writer",
]

# -- services ---------------------------------------------------------------------------------

#: the new path, in the order events flow through it: websocket-ingestion ->
#: enrichment-pipeline -> data-storage (-> InfluxDB)
NewPathService = Literal["ingestion", "enrichment", "storage"]
#: the new pipeline's services: its path and admin-api, the control plane
NewService = Literal[NewPathService, "admin"]
#: the system under test (pipeline/): the legacy monolith and the new services
PipelineService = Literal["legacy", NewService]
#: everything a scenario can start, stop or fault: the pipeline, the fake weather API and
#: the database (the fake Home Assistant is the harness's own, never a service of a run)
Service = Literal["influxdb", PipelineService, "weather"]
#: what a ``kill``/``stop``/``pause``/``restart``/``disconnect`` fault may name, in the order
#: the fault vocabulary lists them (the pipeline first)
FaultTarget = Literal[PipelineService, "weather", "influxdb"]
#: what ``cutover simulate --fail`` can take down
Failable = Literal[PipelineService, "influxdb"]
#: the services that keep durable queues in their data directory (legacy holds memory only;
#: admin-api's routing state is one small file rewritten in place)
QueueService = NewPathService
#: the clients of Home Assistant's websocket API
HaClient = Literal["legacy", "ingestion"]
#: the runtime's own process for network faults (simulators/faultproxy), beside the services
FaultProxy = Literal["faultproxy"]
#: everything a runtime runs
Managed = Literal[Service, FaultProxy]

NEW_PATH: Final[tuple[NewPathService, ...]] = get_args(NewPathService)
NEW_SERVICES: Final[tuple[NewService, ...]] = get_args(NewService)
PIPELINE_SERVICES: Final[tuple[PipelineService, ...]] = get_args(PipelineService)
SERVICES: Final[tuple[Service, ...]] = get_args(Service)
FAILABLE: Final[tuple[Failable, ...]] = get_args(Failable)
QUEUE_SERVICES: Final[tuple[QueueService, ...]] = get_args(QueueService)
HA_CLIENTS: Final[tuple[HaClient, ...]] = get_args(HaClient)
FAULT_PROXY: Final[FaultProxy] = "faultproxy"

#: what a scenario's ``new`` starts: downstream first, so nothing forwards to a service that
#: is not there yet, then the control plane
NEW_START_ORDER: Final[tuple[NewService, ...]] = (*reversed(NEW_PATH), "admin")
#: the chaos run's foundation: the database, the control plane, legacy and the weather API,
#: then the new path downstream first
CHAOS_START_ORDER: Final[tuple[Service, ...]] = ("influxdb", "admin", "legacy", "weather",
                                                 *reversed(NEW_PATH))
#: the services admin-api aggregates health and recent events from (CUTOVER_SERVICES)
ADMIN_WATCHES: Final[tuple[PipelineService, ...]] = ("legacy", *NEW_PATH)

# -- writers and databases --------------------------------------------------------------------

#: which pipeline owned (or wrote) an event: InfluxDB's ``writer`` field
Writer = Literal["legacy", "new"]
#: the service that writes each writer's points (and counts its own rewrites)
WRITER_SERVICE: Final[dict[Writer, PipelineService]] = {"legacy": "legacy", "new": "storage"}

PRODUCTION_DB: Final = "home_assistant_events"
#: the new pipeline's writes while it runs in parallel, for the consistency check
SHADOW_DB: Final = "home_assistant_events_shadow"

# -- hops -------------------------------------------------------------------------------------

#: a hop is a client service and what it connects to, named ``<server>-<client>`` for Home
#: Assistant's and ``<client>-<server>`` for the others, as the data flows
Hop = Literal["ha-ingestion", "ha-legacy", "ingestion-enrichment", "enrichment-storage",
              "enrichment-weather", "storage-influxdb", "legacy-influxdb"]
HOPS: Final[tuple[Hop, ...]] = get_args(Hop)

#: hop -> (the client side, the server side); "ha" is the (fake) Home Assistant
HOP_ENDS: Final[dict[Hop, tuple[PipelineService, Literal[Service, "ha"]]]] = {
    "ha-ingestion": ("ingestion", "ha"), "ha-legacy": ("legacy", "ha"),
    "ingestion-enrichment": ("ingestion", "enrichment"),
    "enrichment-storage": ("enrichment", "storage"),
    "enrichment-weather": ("enrichment", "weather"),
    "storage-influxdb": ("storage", "influxdb"), "legacy-influxdb": ("legacy", "influxdb"),
}
assert tuple(HOP_ENDS) == HOPS
assert {client for client, server in HOP_ENDS.values() if server == "ha"} == set(HA_CLIENTS)
