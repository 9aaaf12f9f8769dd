"""The toxic machinery shared by every toxic: streams, chunks, the :class:`Toxic` declaration,
the :class:`Stage` base class and the registry of toxic types (see the package docstring)."""

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
        attributes = _attributes(doc)
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
        attributes = _attributes(doc)
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



_REGISTRY: dict[str, type[Stage]] = {}
#: toxic type -> stage class; read-only (filled as each toxic module registers its stage)
TOXIC_TYPES: Mapping[str, type[Stage]] = MappingProxyType(_REGISTRY)


def register(kind: type[Stage]) -> type[Stage]:
    """Class decorator: make ``kind`` the stage of toxic type ``kind.TYPE``."""
    _REGISTRY[kind.TYPE] = kind
    return kind


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


def _attributes(doc: dict[str, object]) -> dict[str, object]:
    """A create's or update's ``attributes``: absent means none, anything but an object is
    refused."""
    attributes = doc.get("attributes")
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise BadToxic("bad request body: attributes must be a JSON object")
    return attributes
