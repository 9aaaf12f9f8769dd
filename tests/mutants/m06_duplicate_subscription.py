"""FAILURE_MODES.md #6, duplicate subscription on reconnect: every event delivered twice.

websocket-ingestion's client learned to "restore its subscriptions" after a reconnect: on
every connection after the first it subscribes as usual and then replays the subscription it
had before, as a second ``subscribe_events`` on the same connection, and both subscriptions
feed the one event callback. Home Assistant then sends each event twice to that connection and
the pipeline receives (and writes) it twice. InfluxDB overwrites the second write of a point,
so the duplication is visible at the source: the ledger lists the connection twice per event.
Caught by the duplicate check after Home Assistant restarts (``survive_ha_restart``).

Run in ingestion's place: ``python -m tests.mutants.m06_duplicate_subscription``.
"""

from __future__ import annotations

from typing import Any

import pipeline.ingestion.runtime as runtime
from pipeline.common.ha_client import HomeAssistantClient
from pipeline.ingestion.__main__ import main


class ResubscribingClient(HomeAssistantClient):
    async def _set_up(self, conn: Any) -> None:
        await super()._set_up(conn)
        conn.restored = None
        if self.state.connects:  # a reconnect
            # BUG: the previous connection's subscription is "restored" on top of the new one.
            conn.restored = conn.next_id
            await conn.command({"type": "subscribe_events", "event_type": "state_changed"},
                               self.command_timeout)

    def _dispatch(self, conn: Any, msg: Any, now: int) -> None:
        if (type(msg) is dict and msg.get("type") == "event"
                and msg.get("id") == getattr(conn, "restored", None)):
            msg = {**msg, "id": conn.subscription}  # ... and feeds the same callback
        super()._dispatch(conn, msg, now)


runtime.HomeAssistantClient = ResubscribingClient  # type: ignore[misc]

if __name__ == "__main__":
    main()
