"""The fake Home Assistant's entities and the state changes they make.

Everything random comes from ``random.Random(spec.seed)`` (faker, used only to build
entities, is seeded from the same seed; causes, see :mod:`.causes`, have their own generator
seeded from it too), so the same spec and the same sequence of ``now_ns`` values give exactly
the same changes, context ids included. Per-domain behaviour lives in :mod:`.domains`.

Changes come from causes, as in Home Assistant: most are one entity moving on its own (a
fresh context each), but a share ``spec.shared_contexts`` of them belongs to a service call, a
scene or an automation run whose changes share one context. :meth:`Fleet.group_left` says how
many changes the current cause still has to make, so a caller can fire a cause whole.

State dicts are never mutated once made: a change builds a new one and hands the previous one
out as ``old_state``, so the server may serialise either whenever it likes. Callers must treat
the dicts from :meth:`Fleet.states` / :meth:`Fleet.state` as read-only too.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, cast

from faker import Faker
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .automations import Automation
from .behaviour import KEEP_WHEN_UNAVAILABLE, NEVER_FLIP, Behaviour, make_pools, slugify
from .causes import RUN_END, RUN_START, Cause, CauseDrawer, group_probability
from .domains import BEHAVIOURS
from .events import StateChange
from .limits import ENTITIES_WHY, MAX_ENTITIES
from .timefmt import iso_from_ns, ulid

KNOWN_DOMAINS: tuple[str, ...] = tuple(BEHAVIOURS)
_AUTOMATION = BEHAVIOURS["automation"]

# Share of entities per domain, most frequent first, as in real installs.
DEFAULT_DOMAINS: dict[str, float] = {
    "sensor": 0.42, "binary_sensor": 0.18, "switch": 0.12, "light": 0.11, "automation": 0.08,
    "device_tracker": 0.04, "media_player": 0.03, "climate": 0.02,
}

class FleetSpec(BaseModel):
    """How big the fleet is, what it is made of, and how often odd things happen."""

    model_config = ConfigDict(extra="forbid")

    entities: int = Field(default=500, ge=1)
    seed: int = 1
    domains: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_DOMAINS))
    p_unavailable: float = Field(default=0.01, ge=0.0, le=1.0, allow_inf_nan=False)
    p_add_remove: float = Field(default=0.002, ge=0.0, le=1.0, allow_inf_nan=False)
    p_type_change: float = Field(default=0.005, ge=0.0, le=1.0, allow_inf_nan=False)
    # Share of events whose context is shared with other events (one service call, scene or
    # automation run). 0: every event its own context, the fleet of earlier releases.
    shared_contexts: float = 0.3

    @field_validator("entities")
    @classmethod
    def _entities_bounded(cls, entities: int) -> int:
        # Checked before anything is built: a fleet of 2e9 would be built until memory ran out.
        if entities > MAX_ENTITIES:
            raise ValueError(f"{entities} entities: at most {MAX_ENTITIES}, {ENTITIES_WHY}")
        return entities

    @field_validator("shared_contexts", mode="before")
    @classmethod
    def _check_shared_contexts(cls, value: Any) -> float:
        # Before pydantic's coercion: `shared_contexts: true` in a scenario is a mistake, not 1.
        number: float | None = None
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not 0.0 <= number <= 1.0:  # NaN fails both comparisons
            raise ValueError(
                "shared_contexts is the share of events that share their context with another"
                f" event (a service call, scene or automation run): a number from 0 to 1,"
                f" got {value!r}")
        return number

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, value: dict[str, float]) -> dict[str, float]:
        known = ", ".join(KNOWN_DOMAINS)
        for domain, weight in value.items():
            if domain not in BEHAVIOURS:
                raise ValueError(f"unknown domain {domain!r}; known domains: {known}")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of domain {domain!r} must be a finite number >= 0, "
                                 f"got {weight}")
        if sum(value.values()) <= 0:
            raise ValueError(f"domain weights must sum to more than 0; known domains: {known}")
        return value


class _Entity:
    """One entity: its behaviour's data plus its current state object (None when removed)."""

    __slots__ = ("entity_id", "behaviour", "data", "current", "down", "slot", "dslot", "ages")

    def __init__(self, entity_id: str, behaviour: Behaviour, data: dict[str, Any],
                 ages: tuple[int, int, int] | None) -> None:
        self.entity_id = entity_id
        self.behaviour = behaviour
        self.data = data
        self.current: dict[str, Any] | None = None
        self.down = False  # unavailable/unknown: the entity's next change restores it
        self.slot = -1  # index in Fleet._pool while live
        self.dslot = -1  # index in Fleet._by_domain[its domain] while live
        self.ages = ages  # initial (changed, updated, reported) ns before the start time


class Fleet:
    """The live entities of a fake Home Assistant and the changes they make."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._fake = Faker("en_US")
        self._fake.seed_instance(spec.seed)
        self._pools = make_pools(self._fake)
        weighted = [(d, w) for d, w in spec.domains.items() if w > 0]
        self._domains = [d for d, _ in weighted]
        self._cum_weights = [sum(w for _, w in weighted[: i + 1]) for i in range(len(weighted))]
        # One uniform draw per lone change picks its kind; if the probabilities add up to
        # more than 1 the later kinds get what is left. Only lone changes are odd ones, so
        # their odds are raised by the share of grouped events: per event they stay p_*.
        lone = 1.0 - spec.shared_contexts
        scale = 1.0 / lone if lone > 0 else 0.0
        self._t_add_remove = spec.p_add_remove * scale
        self._t_unavailable = self._t_add_remove + spec.p_unavailable * scale
        self._t_type_change = self._t_unavailable + spec.p_type_change * scale
        self._live: dict[str, _Entity] = {}  # insertion order, as HA's state machine lists them
        self._pool: list[_Entity] = []  # the same entities, for O(1) random picks
        self._by_domain: dict[str, list[_Entity]] = {}  # the same again, per domain
        self._p_group = group_probability(spec.shared_contexts)
        self._cause_rng = random.Random(f"causes-{spec.seed}")
        self._causes = CauseDrawer(self._cause_rng, self._by_domain, self._pool, _AUTOMATION)
        self._cause: Cause | None = None  # the group being fired, or the next one drawn
        self._lone_next = False  # the next change was drawn as a lone one
        self._last_context_id: str | None = None  # a triggered run's parent
        self._removed: list[_Entity] = []  # may come back (an integration reload)
        self._ids: set[str] = set()  # every entity_id ever handed out
        self._started = False
        rng = self._rng
        for _ in range(spec.entities):
            changed = rng.randrange(1_000_000_000, 3_600_000_000_000)  # 1 s to 1 h ago
            updated = changed if rng.random() < 0.6 else int(changed * rng.random())
            reported = updated if rng.random() < 0.7 else int(updated * rng.random())
            self._go_live(self._new_entity((changed, updated, reported)))

    # -- public surface -------------------------------------------------------------------

    def states(self) -> list[dict[str, Any]]:
        """Current state objects of the live entities (``get_states``), in creation order."""
        self._ensure_started()
        return [entity.current for entity in self._live.values()]  # type: ignore[misc]

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """The current state object of a live entity, None for an unknown or removed one."""
        self._ensure_started()
        entity = self._live.get(entity_id)
        return None if entity is None else entity.current

    def entity_ids(self) -> list[str]:
        """Entity ids of the live entities, in creation order."""
        return list(self._live)

    def group_left(self) -> int:
        """How many changes the current cause still has to make (drawing the next cause when
        the last one is done): fire that many together to keep its changes microseconds
        apart, as Home Assistant does. Asking does not change what the fleet will do."""
        cause = self._cause
        if cause is not None:
            return len(cause.members)
        if not self._lone_next:
            self._draw_cause()
            if self._cause is not None:
                return len(self._cause.members)
        return 1

    def next_change(self, now_ns: int) -> StateChange:
        """The next change of the current cause (drawing one when none is under way), fired
        at ``now_ns``."""
        if not self._started:
            self._start(now_ns)
        cause = self._cause
        if cause is None:  # (inlined _draw_cause: this runs for every change)
            if self._lone_next:
                self._lone_next = False
            elif self._p_group and self._cause_rng.random() < self._p_group:
                cause = self._cause = self._causes.draw()
            if cause is None:
                change = self._lone_change(now_ns)
                self._last_context_id = change.context_id
                return change
        change = self._member_change(cause, now_ns)
        self._last_context_id = change.context_id
        return change

    # -- causes ---------------------------------------------------------------------------

    def _draw_cause(self) -> None:
        """Decide what the next change belongs to: a grouped cause, or nothing (lone)."""
        if self._p_group > 0 and self._cause_rng.random() < self._p_group:
            self._cause = self._causes.draw()
        self._lone_next = self._cause is None

    def _member_change(self, cause: Cause, now_ns: int) -> StateChange:
        entity, act = cause.members.popleft()
        if not cause.members:
            self._cause = None
        iso = iso_from_ns(now_ns)
        if cause.context is None:  # the first change of the cause: its context starts now
            parent = self._last_context_id if cause.triggered else None
            cause.context = {"id": ulid(now_ns, self._rng), "parent_id": parent,
                             "user_id": cause.user_id}
        data = entity.data
        if act == RUN_START:
            Automation.start_run(data, iso)
        elif act == RUN_END:
            Automation.end_run(data)
        elif not entity.down:
            entity.behaviour.step(data, self._rng, self._pools, iso)
        entity.down = False  # an unavailable entity a service reaches comes back as it was
        state, attrs = entity.behaviour.render(data, iso)
        # the fleet's causes are drawn from its own entities (CauseDrawer sees them as Entity)
        return self._emit(cast(_Entity, entity), state, attrs, now_ns, iso, cause.context)

    def _lone_change(self, now_ns: int) -> StateChange:
        """One entity moving on its own (a fresh context): what every change was before
        causes, and what most changes still are."""
        rng = self._rng
        iso = iso_from_ns(now_ns)
        u = rng.random()
        if u < self._t_add_remove:
            return self._add_or_remove(now_ns, iso)
        pool = self._pool
        entity = pool[int(rng.random() * len(pool))]
        if self._p_group > 0:
            # Automations change with their runs (causes); alone, they are rarely touched.
            for _ in range(4):
                if entity.behaviour is not _AUTOMATION:
                    break
                entity = pool[int(rng.random() * len(pool))]
        if self._t_unavailable <= u < self._t_type_change:
            # A flip needs an available entity with a flippable attribute: look a little further.
            for _ in range(8):
                current = entity.current
                if not entity.down and current is not None:  # live entities always have one
                    attrs = self._flipped(current["attributes"])
                    if attrs is not None:
                        return self._emit(entity, current["state"], attrs, now_ns, iso)
                entity = pool[int(rng.random() * len(pool))]
        if entity.down:  # back from unavailable/unknown, as it was
            entity.down = False
            state, attrs = entity.behaviour.render(entity.data, iso)
        elif u < self._t_unavailable and entity.current is not None:
            entity.down = True
            state = "unavailable" if rng.random() < 0.8 else "unknown"
            attrs = {k: v for k, v in entity.current["attributes"].items()
                     if k in KEEP_WHEN_UNAVAILABLE}
        else:
            entity.behaviour.step(entity.data, rng, self._pools, iso)
            state, attrs = entity.behaviour.render(entity.data, iso)
        return self._emit(entity, state, attrs, now_ns, iso)

    # -- internals ------------------------------------------------------------------------

    def _new_entity(self, ages: tuple[int, int, int] | None) -> _Entity:
        rng = self._rng
        domain = rng.choices(self._domains, cum_weights=self._cum_weights)[0]
        behaviour = BEHAVIOURS[domain]
        data = behaviour.create(self._pools, self._fake, rng)
        base = f"{domain}.{slugify(data['name'])}"
        entity_id, n = base, 2
        while entity_id in self._ids:  # HA's own rule for clashing names: _2, _3, ...
            entity_id, n = f"{base}_{n}", n + 1
        self._ids.add(entity_id)
        return _Entity(entity_id, behaviour, data, ages)

    def _go_live(self, entity: _Entity) -> None:
        self._live[entity.entity_id] = entity
        entity.slot = len(self._pool)
        self._pool.append(entity)
        same = self._by_domain.setdefault(entity.entity_id.split(".", 1)[0], [])
        entity.dslot = len(same)
        same.append(entity)

    def _go_away(self, entity: _Entity) -> None:
        del self._live[entity.entity_id]
        last = self._pool.pop()
        if last is not entity:
            self._pool[entity.slot] = last
            last.slot = entity.slot
        entity.slot = -1
        same = self._by_domain[entity.entity_id.split(".", 1)[0]]
        last = same.pop()
        if last is not entity:
            same[entity.dslot] = last
            last.dslot = entity.dslot
        entity.dslot = -1
        entity.current = None
        entity.down = False
        self._removed.append(entity)

    def _ensure_started(self) -> None:
        # Asked for states before any change: the fleet came up just now (wall clock, so
        # initial timestamps are then the one thing a seed does not reproduce).
        if not self._started:
            self._start(time.time_ns())

    def _start(self, start_ns: int) -> None:
        """Give the initial entities their first states, a little before ``start_ns``."""
        self._started = True
        for entity in self._live.values():
            changed, updated, reported = entity.ages or (0, 0, 0)
            changed_iso = iso_from_ns(start_ns - changed)
            state, attrs = entity.behaviour.render(entity.data, changed_iso)
            entity.current = {
                "entity_id": entity.entity_id,
                "state": state,
                "attributes": attrs,
                "last_changed": changed_iso,
                "last_reported": iso_from_ns(start_ns - reported),
                "last_updated": iso_from_ns(start_ns - updated),
                "context": {"id": ulid(start_ns - updated, self._rng), "parent_id": None,
                            "user_id": None},
            }
            entity.ages = None

    def _add_or_remove(self, now_ns: int, iso: str) -> StateChange:
        rng = self._rng
        live, target = len(self._pool), self.spec.entities
        # Mean-reverting: a fair coin near the target, forced back beyond 5 % of it.
        band = max(1.0, 0.05 * target)
        p_add = 0.5 + 0.5 * max(-1.0, min(1.0, (target - live) / band))
        if live <= 1 or rng.random() < p_add:
            if self._removed and rng.random() < 0.5:
                entity = self._removed.pop(int(rng.random() * len(self._removed)))
            else:
                entity = self._new_entity(None)
            self._go_live(entity)
            state, attrs = entity.behaviour.render(entity.data, iso)
            return self._emit(entity, state, attrs, now_ns, iso)
        entity = self._pool[int(rng.random() * live)]
        old = entity.current
        self._go_away(entity)
        return StateChange(entity.entity_id, old, None, ulid(now_ns, rng), now_ns)

    def _flipped(self, attrs: dict[str, Any]) -> dict[str, Any] | None:
        """A copy of ``attrs`` with one value of another JSON type, or None if none can flip."""
        keys = [k for k, v in attrs.items() if v is not None and k not in NEVER_FLIP]
        if not keys:
            return None
        rng = self._rng
        key = keys[int(rng.random() * len(keys))]
        value, r = attrs[key], rng.random()
        new: Any
        if isinstance(value, bool):  # not to 0/1: False == 0 would hide the change
            new = ("on" if value else "off") if r < 0.7 else None
        elif isinstance(value, int | float):  # battery_level 87 -> "low", 21.5 -> "21.5"
            if r < 0.4:
                new = str(value)
            elif r < 0.7:
                new = ("low", "unknown", "n/a")[int(r * 10) % 3]
            else:
                new = None
        elif isinstance(value, list):  # [255, 180, 0] -> None or "255,180,0"
            new = None if r < 0.6 else ",".join(str(x) for x in value)
        else:
            new = None
        flipped = dict(attrs)
        flipped[key] = new
        return flipped

    def _emit(self, entity: _Entity, state: str, attrs: dict[str, Any], now_ns: int,
              iso: str, context: dict[str, Any] | None = None) -> StateChange:
        old = entity.current
        if context is None:  # a lone change: a context of its own
            context = {"id": ulid(now_ns, self._rng), "parent_id": None, "user_id": None}
        if old is None or state != old["state"]:
            changed = updated = iso
        else:
            # Home Assistant fires state_changed only when the state or an attribute moved
            # (otherwise state_reported), so a state_changed's new_state.last_updated is always
            # its time_fired: what history gives back is exactly the event.
            changed, updated = old["last_changed"], iso
        new = {
            "entity_id": entity.entity_id,
            "state": state,
            "attributes": attrs,
            "last_changed": changed,
            "last_reported": iso,
            "last_updated": updated,
            "context": context,  # shared by the cause's changes; never mutated
        }
        entity.current = new
        return StateChange(entity.entity_id, old, new, context["id"], now_ns)
