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

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol

Stream = Literal["upstream", "downstream"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")


class BadToxic(ValueError):
    """A toxic that cannot be made: unknown type, unknown attribute, bad value (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from the link's source; ``at`` is when (loop time), or when they are due."""

    data: bytes
    at: float


Emit = Callable[[Chunk], Awaitable[None]]
EmitEof = Callable[[], Awaitable[None]]


class LinkControl(Protocol):
    """What a stage may do to the connection its link belongs to."""

    def close_connection(self) -> None:
        """Close both sides gracefully (what is already written is still delivered)."""

    def reset_connection(self) -> None:
        """Reset both sides: SO_LINGER 0 then close, so each peer gets an RST."""


class Waker:
    """A sleep that ``wake()`` ends early; the sleeper then looks at its toxic again."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[bool] | None = None

    async def sleep(self, seconds: float) -> bool:
        """Sleep; True if the time ran out, False if woken."""
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._future = future
        handle = loop.call_later(seconds, _settle, future, True)
        try:
            return await future
        finally:
            handle.cancel()
            self._future = None

    def wake(self) -> None:
        if self._future is not None:
            _settle(self._future, False)


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Toxic:
    """One toxic as the API shows it. Build with :meth:`create` or :meth:`from_json`."""

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        type_: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> Toxic:
        """Validated: ``Toxic.create("latency", stream="upstream", latency=100)``."""
        kind = stage_class(type_)
        if stream not in STREAMS:
            raise BadToxic(
                f"stream was invalid, can be either upstream or downstream (got {stream!r})"
            )
        return cls(
            name=name or f"{type_}_{stream}",
            type=type_,
            stream=stream,  # checked just above
            toxicity=_toxicity(toxicity),
            attributes=kind.attributes_from(attributes, base=None),
        )

    @classmethod
    def from_json(cls, doc: object) -> Toxic:
        """From Toxiproxy's POST /proxies/{proxy}/toxics body."""
        if not isinstance(doc, dict):
            raise BadToxic("bad request body: a toxic is a JSON object")
        type_ = doc.get("type")
        if not isinstance(type_, str) or not type_:
            raise BadToxic(f"missing required field: type (one of {', '.join(TOXIC_TYPES)})")
        name = doc.get("name")
        if name is not None and not isinstance(name, str):
            raise BadToxic("bad request body: name must be a string")
        stream = doc.get("stream")
        if stream in (None, ""):
            stream = "downstream"
        attributes = doc.get("attributes")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise BadToxic("bad request body: attributes must be a JSON object")
        toxicity = doc.get("toxicity")
        return cls.create(
            type_,
            name=name or None,
            stream=stream if isinstance(stream, str) else repr(stream),
            toxicity=1.0 if toxicity is None else toxicity,
            **attributes,
        )

    def updated(self, doc: object) -> Toxic:
        """Toxiproxy's update: ``attributes`` merged into the current ones, ``toxicity`` if
        given; name, type and stream never change."""
        if not isinstance(doc, dict):
            raise BadToxic("bad request body: a toxic update is a JSON object")
        attributes = doc.get("attributes")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise BadToxic("bad request body: attributes must be a JSON object")
        toxicity = doc.get("toxicity")
        return replace(
            self,
            toxicity=self.toxicity if toxicity is None else _toxicity(toxicity),
            attributes=stage_class(self.type).attributes_from(attributes, base=self.attributes),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BadToxic(f"toxicity must be a number from 0 to 1 (got {value!r})")
    return float(value)


def stage_class(type_: str) -> type[Stage]:
    try:
        return TOXIC_TYPES[type_]
    except KeyError:
        raise BadToxic(
            f"invalid toxic type: {type_!r}; allowed: {', '.join(TOXIC_TYPES)}"
        ) from None


# --------------------------------------------------------------------------- stages


class Stage:
    """A toxic attached to one link. Subclasses: one per toxic type."""

    TYPE: ClassVar[str]
    #: attribute name -> what it means (for error messages and docs)
    ATTRIBUTES: ClassVar[Mapping[str, str]]

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        self.toxic = toxic
        self.control = control
        self.rng = rng
        self.active = False
        self.removed = False
        self.waker = Waker()

    # -- declaration helpers

    @classmethod
    def attributes_from(
        cls, given: Mapping[str, Any], base: Mapping[str, int] | None
    ) -> Mapping[str, int]:
        allowed = cls.ATTRIBUTES
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise BadToxic(
                f"unknown attribute(s) {', '.join(unknown)} for toxic type {cls.TYPE}; "
                f"allowed: {', '.join(f'{k} ({v})' for k, v in allowed.items())}"
            )
        out = dict(base) if base is not None else dict.fromkeys(allowed, 0)
        for key, value in given.items():
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadToxic(
                    f"attribute {key} of toxic type {cls.TYPE} must be a whole number >= 0 "
                    f"({allowed[key]}); got {value!r}"
                )
            out[key] = value
        cls.check(out)
        return MappingProxyType(out)

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        """Cross-attribute rules; raise :class:`BadToxic`."""

    def attr(self, key: str) -> int:
        return self.toxic.attributes.get(key, 0)

    # -- lifecycle, driven by the link

    def roll(self) -> bool:
        """Toxicity, decided per connection (again on each update, as Toxiproxy does)."""
        return self.rng.random() < self.toxic.toxicity

    def activate(self) -> None:
        self.active = True
        self.started()

    def deactivate(self) -> None:
        self.active = False
        self.stopped()
        self.waker.wake()

    def update(self, toxic: Toxic) -> None:
        self.toxic = toxic
        active = self.roll()
        if active and self.active:
            self.changed()
            self.waker.wake()
        elif active:
            self.activate()
        elif self.active:
            self.deactivate()

    def remove(self) -> None:
        was_active = self.active
        self.removed = True
        if was_active:
            self.deactivate()
            self.on_removed()

    def close(self) -> None:
        """The connection is going away: cancel timers."""
        self.active = False
        self.stopped()
        self.waker.wake()

    # -- hooks

    def started(self) -> None:
        """Now affecting the connection (timers start here)."""

    def stopped(self) -> None:
        """No longer affecting it (cancel timers here)."""

    def changed(self) -> None:
        """Attributes or toxicity updated while it stays active."""

    def on_removed(self) -> None:
        """Removed from a connection it was affecting."""

    @property
    def live(self) -> bool:
        return self.active and not self.removed

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        await emit(chunk)

    async def eof(self, emit_eof: EmitEof) -> None:
        await emit_eof()

    async def sleep_until(self, deadline: Callable[[], float]) -> None:
        """Sleep until ``deadline()`` (loop time, looked at again after every wake), or until
        this stage stops affecting the link."""
        loop = asyncio.get_running_loop()
        while self.live:
            remaining = deadline() - loop.time()
            if remaining <= 0:
                return
            await self.waker.sleep(remaining)


class Latency(Stage):
    """Each chunk goes on ``latency`` +/- ``jitter`` ms after it arrived."""

    TYPE = "latency"
    ATTRIBUTES = MappingProxyType({"latency": "ms", "jitter": "ms"})

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        jitter = self.attr("jitter")
        offset = self.rng.uniform(-jitter, jitter) if jitter else 0.0

        def due() -> float:  # looked at again after a wake: an update applies to held data
            return chunk.at + max(0.0, self.attr("latency") + offset) / 1000.0

        await self.sleep_until(due)
        # Passed on stamped with its due time: a second latency toxic adds up, and chunks
        # queued behind this one are not delayed by the time it spent here.
        await emit(Chunk(chunk.data, due()) if self.live else chunk)


class Bandwidth(Stage):
    """At most ``rate`` KB/s (1 KB = 1000 bytes); a rate of 0 means no limit."""

    TYPE = "bandwidth"
    ATTRIBUTES = MappingProxyType({"rate": "KB/s"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._free_at = 0.0  # when the line is free for the next byte (loop time)

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        data = chunk.data
        while data:
            rate = self.attr("rate")
            if not self.live or rate <= 0:
                await emit(Chunk(data, chunk.at))
                return
            # Pieces of at most 100 ms of line time, so a slow rate still trickles.
            piece, data = data[: rate * 100], data[rate * 100 :]
            self._free_at = max(self._free_at, loop.time()) + len(piece) / (rate * 1000.0)
            await self.sleep_until(lambda: self._free_at)
            await emit(Chunk(piece, chunk.at))


class SlowClose(Stage):
    """The end of the stream (the close) is passed on ``delay`` ms late."""

    TYPE = "slow_close"
    ATTRIBUTES = MappingProxyType({"delay": "ms"})

    async def eof(self, emit_eof: EmitEof) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await self.sleep_until(lambda: start + self.attr("delay") / 1000.0)
        await emit_eof()


class Timeout(Stage):
    """No data gets through; the connection is closed ``timeout`` ms after the toxic took
    effect on it (or was updated), never if ``timeout`` is 0. Removing the toxic closes the
    connections it was affecting (Toxiproxy does so: their streams have lost data).

    Toxiproxy's implementation restarts its timer at each chunk it drops, so a chatty client
    is never closed; this follows its documentation instead ("closes the connection after
    timeout")."""

    TYPE = "timeout"
    ATTRIBUTES = MappingProxyType({"timeout": "ms; 0 = never close"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._timer: asyncio.TimerHandle | None = None

    def started(self) -> None:
        timeout = self.attr("timeout")
        if timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(timeout / 1000.0, self.control.close_connection)

    def stopped(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def changed(self) -> None:
        self.stopped()
        self.started()

    def on_removed(self) -> None:
        self.control.close_connection()

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
        # else: dropped on the floor


class ResetPeer(Stage):
    """On the first data (or end of stream) after it took effect, wait ``timeout`` ms, then
    reset the connection (SO_LINGER 0: both peers get an RST); that data is dropped."""

    TYPE = "reset_peer"
    ATTRIBUTES = MappingProxyType({"timeout": "ms"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self._timer: asyncio.TimerHandle | None = None

    def _trigger(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(
                self.attr("timeout") / 1000.0, self.control.reset_connection
            )

    def stopped(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
            return
        self._trigger()

    async def eof(self, emit_eof: EmitEof) -> None:
        if not self.live:
            await emit_eof()
            return
        self._trigger()


class Slicer(Stage):
    """Chunks are cut into pieces of ``average_size`` +/- ``size_variation`` bytes, ``delay``
    us apart."""

    TYPE = "slicer"
    ATTRIBUTES = MappingProxyType(
        {"average_size": "bytes", "size_variation": "bytes", "delay": "us"}
    )

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        if attributes.get("average_size", 0) < 1:
            raise BadToxic("attribute average_size of toxic type slicer must be >= 1 (bytes)")

    def sizes(self, total: int) -> list[int]:
        average = self.attr("average_size")
        variation = min(self.attr("size_variation"), average - 1)
        out: list[int] = []
        while total > average + variation:
            size = self.rng.randint(average - variation, average + variation)
            out.append(size)
            total -= size
        out.append(total)
        return out

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        data = memoryview(chunk.data)
        for size in self.sizes(len(data)):
            if not self.live:
                break
            await emit(Chunk(bytes(data[:size]), chunk.at))
            data = data[size:]
            if data:
                gap_start = loop.time()
                await self.sleep_until(lambda: gap_start + self.attr("delay") / 1e6)
        if data:
            await emit(Chunk(bytes(data), chunk.at))


class LimitData(Stage):
    """Closes the connection once ``bytes`` bytes have gone through this direction."""

    TYPE = "limit_data"
    ATTRIBUTES = MappingProxyType({"bytes": "bytes"})

    def __init__(self, toxic: Toxic, control: LinkControl, rng: random.Random) -> None:
        super().__init__(toxic, control, rng)
        self.sent = 0  # kept across updates, as Toxiproxy keeps its state

    async def data(self, chunk: Chunk, emit: Emit) -> None:
        if not self.live:
            await emit(chunk)
            return
        remaining = self.attr("bytes") - self.sent
        if remaining > 0:
            piece = chunk.data[:remaining]
            self.sent += len(piece)
            await emit(Chunk(piece, chunk.at))
        if self.attr("bytes") - self.sent <= 0:
            self.control.close_connection()


#: toxic type -> stage class; read-only
TOXIC_TYPES: Mapping[str, type[Stage]] = MappingProxyType(
    {
        kind.TYPE: kind
        for kind in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
    }
)

__all__ = [
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
