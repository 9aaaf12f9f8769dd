"""FAILURE_MODES.md #5, a second reader on the websocket throws away events it does not expect.

websocket-ingestion gained a helper that syncs Home Assistant's registries (the entity, device
and area registries, then ``get_states``, five times a second) on the same websocket as the
subscription. Instead of going through the client's one reader (which routes replies by id),
the helper takes the socket between two frames, sends its commands and reads frames itself
until its replies have come and the socket has been quiet for 20 ms (a reply "may come in
several frames"); every event in the frames it reads meanwhile is not what it waits for, so
it is thrown away. Caught by the loss check while the registry calls happen.

Run in ingestion's place: ``python -m tests.mutants.m05_second_reader``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosedOK

import pipeline.ingestion.runtime as runtime
from pipeline.common.ha_client import HomeAssistantClient
from pipeline.ingestion.__main__ import main

REGISTRY_EVERY_S = 0.2
QUIET_S = 0.02
REGISTRY_CALLS = ("config/entity_registry/list", "config/device_registry/list",
                  "config/area_registry/list", "get_states")


class SharedSocket:
    """The websocket, with a lock the helper takes to read it between two of the reader's frames."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            async with self.lock:
                try:
                    raw = await self.ws.recv()
                except ConnectionClosedOK:
                    return
            yield raw


class SecondReaderClient(HomeAssistantClient):
    async def _read(self, conn: Any) -> None:
        conn.ws = SharedSocket(conn.ws)
        await super()._read(conn)

    async def _set_up(self, conn: Any) -> None:
        await super()._set_up(conn)
        task = asyncio.create_task(self._registry_calls(conn), name="registry-helper")
        conn.helper = task  # held until the connection object goes

    async def _registry_calls(self, conn: Any) -> None:
        shared: SharedSocket = conn.ws
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(REGISTRY_EVERY_S)
                async with shared.lock:
                    for command in REGISTRY_CALLS:
                        await self._call_reading_myself(shared, conn, command)
                    while True:  # BUG: "the rest of a reply" - and whatever else is there
                        try:
                            await asyncio.wait_for(shared.ws.recv(), QUIET_S)
                        except TimeoutError:
                            break

    async def _call_reading_myself(self, shared: SharedSocket, conn: Any, command: str) -> None:
        msg_id, conn.next_id = conn.next_id, conn.next_id + 1
        await shared.ws.send(orjson.dumps({"id": msg_id, "type": command}), text=True)
        while True:  # BUG: a second reader; whatever is not our reply is dropped
            msg = orjson.loads(await shared.ws.recv())
            msgs = msg if isinstance(msg, list) else [msg]
            if any(isinstance(m, dict) and m.get("id") == msg_id
                   and m.get("type") == "result" for m in msgs):
                return


runtime.HomeAssistantClient = SecondReaderClient  # type: ignore[misc]

if __name__ == "__main__":
    main()
