"""Each pipeline service's own environment, the same for every runtime: a runtime only says
where things are (its URLs, and the fault proxy's address for each hop when it has one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from harness.scenario.topology import ADMIN_WATCHES, HA_CLIENTS, HOP_ENDS, Hop, Service

from .base import Wiring


def hop_server(w: Wiring, hop: Hop) -> Service | Literal["ha"]:
    """Who a hop's client reaches: its server, or the next stage the plan has when the
    pipeline file leaves the server out (no enrichment: ingestion sends to storage)."""
    client, server = HOP_ENDS[hop]
    if server in ("ha", "influxdb", "weather") or w.pipeline.has(server):
        return server
    return w.pipeline.downstream(client)


def pipeline_env(w: Wiring, url: Mapping[str, str], *, proxied: Mapping[str, str],
                 state_file: str) -> dict[str, dict[str, str]]:
    """``url``: each service as its neighbours reach it directly; ``proxied``: hop -> the
    ``host:port`` the hop's client connects to instead (the fault proxy), when it is used."""
    ha_host = w.ha_url.split("://", 1)[1].split("/", 1)[0]
    ha_url: dict[str, str] = dict.fromkeys(HA_CLIENTS, w.ha_url)
    via: dict[str, str] = {}
    for hop, (client, server) in HOP_ENDS.items():
        if server == "ha":
            if hop in proxied:
                ha_url[client] = w.ha_url.replace(ha_host, proxied[hop], 1)
        else:
            via[hop] = f"http://{proxied[hop]}" if hop in proxied else url[hop_server(w, hop)]
    ha = {"CUTOVER_HA_TOKEN": w.ha_token}
    admin = ({"CUTOVER_ADMIN_URL": url["admin"], "CUTOVER_ROUTING_POLL_S": "0.2"}
             if w.control_plane else {})
    # what these give is what a pipeline file may rename: pipeline_file/contract.py, kept in
    # step by tests/harness/test_pipeline_file.py
    env = {
        "legacy": {**ha, "CUTOVER_HA_URL": ha_url["legacy"], **admin,
                   "CUTOVER_INFLUX_URL": via["legacy-influxdb"]},
        "ingestion": {**ha, "CUTOVER_HA_URL": ha_url["ingestion"], **admin,
                      "CUTOVER_ENRICHMENT_URL": via["ingestion-enrichment"]},
        "enrichment": {"CUTOVER_STORAGE_URL": via["enrichment-storage"],
                       "CUTOVER_WEATHER_URL": via["enrichment-weather"],
                       "CUTOVER_WEATHER_API_KEY": w.weather_api_key},
        "storage": {"CUTOVER_INFLUX_URL": via["storage-influxdb"]},
        "admin": {"CUTOVER_ADMIN_TOKEN": w.admin_token,
                  "CUTOVER_MIGRATION_LEAD_MS": str(w.lead_ms),
                  "CUTOVER_STATE_FILE": state_file,
                  "CUTOVER_SERVICES": json.dumps({n: url[n] for n in ADMIN_WATCHES
                                                        if w.pipeline.has(n)})},
    }
    return env
