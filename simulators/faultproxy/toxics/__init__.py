"""Toxics: what a fault does to the bytes of one direction of one connection.

A :class:`Toxic` is the declaration (Toxiproxy's JSON: name, type, stream, toxicity,
attributes). A :class:`Stage` is that toxic attached to one *link* (one direction of one
connection); it sees each chunk the link reads, and the link's end of stream, and decides
what goes on, when, and whether the connection dies. Toxic attributes are Toxiproxy's, with
Toxiproxy's units (ms, KB/s = 1000 bytes/s, us for the slicer's delay); a missing attribute
is 0, as in Toxiproxy.

Stages run inside their link's pump, one chunk at a time, in the order the toxics were added:
a stage passes data on by awaiting ``emit``. Every wait is a :class:`Waker` sleep, so an
update or a removal wakes a sleeping stage at once (a removed latency toxic lets the chunk it
holds go on at once: no data is dropped by removing a toxic, as in Toxiproxy).
"""

# imported in this order so that TOXIC_TYPES lists the types as Toxiproxy does
from simulators.faultproxy.toxics.bandwidth import Bandwidth
from simulators.faultproxy.toxics.base import (
    STREAMS,
    TOXIC_TYPES,
    BadToxic,
    Chunk,
    LinkControl,
    Stage,
    Stream,
    Toxic,
    Waker,
    stage_class,
)
from simulators.faultproxy.toxics.latency import Latency
from simulators.faultproxy.toxics.limit_data import LimitData
from simulators.faultproxy.toxics.reset_peer import ResetPeer
from simulators.faultproxy.toxics.slicer import Slicer
from simulators.faultproxy.toxics.slow_close import SlowClose
from simulators.faultproxy.toxics.timeout import Timeout

__all__ = [
    "Bandwidth",
    "Latency",
    "LimitData",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Timeout",
    "STREAMS",
    "TOXIC_TYPES",
    "BadToxic",
    "Chunk",
    "LinkControl",
    "Stage",
    "Stream",
    "Toxic",
    "Waker",
    "stage_class",
]
