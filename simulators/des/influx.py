"""InfluxDB as the model sees it: a write takes ``influx_*`` service time, fails at once while
the database is down, hangs (until the caller's timeout) while it is paused."""

from __future__ import annotations

import random
from collections.abc import Callable

import simpy

from .network import OK, PAUSED, REFUSED, Network
from .params import ModelParams
from .ports import Gen
from .service import Service

__all__ = ["Influx"]


class Influx(Service):
    def __init__(self, env: simpy.Environment, name: str, params: ModelParams,
                 rng: random.Random, poke: Callable[[], None], net: Network) -> None:
        super().__init__(env, name, params, rng, poke)
        self.net = net
        self.down_since = 0.0  # when it was last stopped, killed or paused

    def write(self, hop: str, key: str, n: int, timeout: float) -> Gen:
        """One /write of ``n`` points; returns True on 204."""
        env, net = self.env, self.net
        outcome = net.outcome(hop, self)
        if outcome == OK:
            gen = self.gen
            yield env.timeout(self.sample(key, n) + net.extra_latency(hop, self.rng.uniform))
            return self.gen == gen and self.listening()
        if outcome == REFUSED:
            yield env.timeout(self.params.http.refused_s)
            return False
        if outcome == PAUSED and self.resumed is not None:
            gen = self.gen
            started = env.now
            yield self.resumed | env.timeout(timeout)
            left = timeout - (env.now - started)
            if self.paused or self.gen != gen or not self.listening() or left <= 0:
                return False
            yield env.timeout(min(left, self.sample(key, n)))
            return self.listening() and self.gen == gen
        yield env.timeout(timeout)  # HANG
        return False
