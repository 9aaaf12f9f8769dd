"""FAILURE_MODES.md #4, subscribe before auth completes: connected, but no event ever arrives.

websocket-ingestion's client sends ``subscribe_events`` as soon as the socket is open, before
its ``auth`` message, and counts itself subscribed once the command is sent. Home Assistant
reads that first message as a malformed auth message ("Auth message incorrectly formatted"),
answers ``auth_invalid`` and closes; the client, which never looks at the answer, reconnects and
does it again. Its state (and so /health and the ``cutover_ha_connected`` metric) says
"subscribed" the whole time; Home Assistant never sends it an event. Caught by the loss check
(the events the new pipeline owns reach only legacy, which does not store them) and by
availability (nothing is stored while events are due).

Run in ingestion's place: ``python -m tests.mutants.m04_subscribe_before_auth``.
"""

from __future__ import annotations

import orjson
from websockets.asyncio.client import connect

import pipeline.ingestion.runtime as runtime
from pipeline.common.ha_client import HomeAssistantClient
from pipeline.ingestion.__main__ import main


class SubscribeFirstClient(HomeAssistantClient):
    async def _connection(self) -> None:
        ws = await connect(self.url, compression=None, max_size=self.max_frame,
                           open_timeout=self.open_timeout, ping_interval=None, close_timeout=1.0)
        self._ws = ws
        state = self.state
        state.connected = True
        try:
            # BUG: the subscription goes out first, before auth has even been sent...
            await ws.send(orjson.dumps({"id": 1, "type": "subscribe_events",
                                        "event_type": "state_changed"}), text=True)
            # ... and "sent" is taken for "subscribed".
            state.subscribed, state.down_since = True, None
            self._subscribed.set()
            await ws.send(orjson.dumps({"type": "auth", "access_token": self._token}), text=True)
            async for _ in ws:  # auth_required, auth_invalid, then Home Assistant closes
                state.frames += 1
        finally:
            self._ws = None
            state.connected = False
            await ws.close()


runtime.HomeAssistantClient = SubscribeFirstClient  # type: ignore[misc]

if __name__ == "__main__":
    main()
