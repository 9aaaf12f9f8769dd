"""The topology's services by name, what the plan wants running, and the lifecycle actions the
plan and the faults take on them (the runtimes' start, stop, kill, restart, pause, resume).

The services themselves, one module each: ``service.py`` (the lifecycle they share),
``influx.py``, ``legacy.py``, ``ingestion.py``, ``enrichment.py``, ``storage.py``, with
``forwarder.py`` (the HTTP hop between two of them) and ``queues.py``.
"""

from __future__ import annotations

import simpy

from .influx import Influx
from .ports import Gen
from .service import Service

__all__ = ["Services"]


class Services:
    def __init__(self, env: simpy.Environment, influx: Influx,
                 services: dict[str, Service]) -> None:
        self.env = env
        self.influx = influx
        self.by_name = services
        self.wanted: dict[str, bool] = {}  # what the plan wants running (random failures heal)

    def __getitem__(self, name: str) -> Service:
        return self.by_name[name]

    def component(self, name: str) -> Service:
        return self.influx if name == "influxdb" else self.by_name[name]

    def action(self, kind: str, name: str) -> Gen:
        """``kind`` (start, kill, stop, restart, pause, resume) on the service ``name``."""
        svc = self.component(name)
        if kind == "start":
            self.wanted[name] = True
            svc.start()
        elif kind == "kill":
            self.wanted[name] = False
            svc.kill()
            self._down(name)
        elif kind == "stop":
            self.wanted[name] = False
            yield from svc.stop()
            self._down(name)
        elif kind == "restart":
            yield from svc.stop()
            self._down(name)
            self.wanted[name] = True
            svc.start()
        elif kind == "pause":
            svc.pause()
            self._down(name)
        elif kind == "resume":
            svc.resume()
        else:
            raise AssertionError(kind)

    def _down(self, name: str) -> None:
        if name == "influxdb":
            self.influx.down_since = self.env.now
