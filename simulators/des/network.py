"""What a request between two parts of the topology meets: the receiver's state and the
faults on the hop (Toxiproxy's vocabulary, as far as the model can express it).

Modelled: ``down`` and ``reset_peer`` (refused at once), ``timeout`` (the request hangs until
the caller's own timeout), ``latency`` (+ ``jitter``, applied with the toxic's ``toxicity``),
a disconnected service (every hop to or from it refused), a paused receiver (the request waits
for it, up to the caller's read timeout), a stopped or starting one (refused). ``bandwidth``,
``slow_close``, ``slicer`` and ``limit_data`` are noted and have no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from harness.scenario.topology import HOP_ENDS, Hop

__all__ = ["HANG", "HOP_ENDS", "HopFaults", "Network", "OK", "PAUSED", "REFUSED"]

OK, REFUSED, HANG, PAUSED = 0, 1, 2, 3


class _Receiver(Protocol):
    """What ``outcome`` reads of the receiving end (a Service)."""

    paused: bool

    def listening(self) -> bool: ...


@dataclass
class HopFaults:
    down: int = 0  # nested faults: a count, so two overlapping faults heal independently
    timeout: int = 0
    reset: int = 0
    latencies: dict[int, tuple[float, float, float]] = field(default_factory=dict)


class Network:
    def __init__(self) -> None:
        self.hops: dict[str, HopFaults] = {}
        self.disconnected: dict[str, int] = {}

    def hop(self, name: str) -> HopFaults:
        h = self.hops.get(name)
        if h is None:
            h = self.hops[name] = HopFaults()
        return h

    def cut(self, hop: str) -> bool:
        """True when nothing gets through ``hop`` (down, reset, or an end disconnected)."""
        h = self.hops.get(hop)
        if h is not None and (h.down or h.reset):
            return True
        if self.disconnected:
            a, b = HOP_ENDS[cast(Hop, hop)]  # hop names come from HOPS
            return bool(self.disconnected.get(a) or self.disconnected.get(b))
        return False

    def hangs(self, hop: str) -> bool:
        h = self.hops.get(hop)
        return h is not None and h.timeout > 0

    def extra_latency(self, hop: str, uniform: Callable[[float, float], float]) -> float:
        h = self.hops.get(hop)
        if h is None or not h.latencies:
            return 0.0
        extra = 0.0
        for latency, jitter, toxicity in h.latencies.values():
            if toxicity >= 1.0 or uniform(0.0, 1.0) < toxicity:
                extra += max(0.0, latency + (uniform(-jitter, jitter) if jitter else 0.0))
        return extra

    def outcome(self, hop: str, receiver: _Receiver) -> int:
        if self.cut(hop):
            return REFUSED
        if self.hangs(hop):
            return HANG
        if not receiver.listening():
            return REFUSED
        if receiver.paused:
            return PAUSED
        return OK
