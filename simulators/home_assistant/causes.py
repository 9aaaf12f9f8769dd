"""Why state changes come together: the causes that make Home Assistant share a context.

Home Assistant gives one context to every state change one action causes: a service call on
several entities, a scene, an automation run (whose own entity changes twice under it:
``current`` 1 when the run starts, 0 when it ends, around the changes its actions make).
Triggered work gets a new context whose ``parent_id`` is the context of what triggered it.

A :class:`Cause` is drawn before any of its changes is made, so whoever fires changes can ask
how many belong together and fire them in one go, microseconds apart as Home Assistant does.
Causes are drawn from their own ``random.Random``, so asking ahead never shifts the randomness
of the states themselves.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

# What a member of a cause does to its entity.
STEP = 0  # the entity moves (a service call, a scene, an automation's action)
RUN_START = 1  # an automation run starts: current 1, last_triggered now
RUN_END = 2  # and ends: current 0

# Domains whose entities services and scenes act on.
CONTROLLED: tuple[str, ...] = ("light", "switch", "media_player", "climate")

# Kinds of grouped cause: (weight, mean number of changes). Sizes are drawn below; the means
# must match them, since group_probability() turns a share of events into a share of causes.
_AUTOMATION = (0.5, 2 + 2.0)  # start + 1..3 actions + end
_SERVICE = (0.35, 3.0)  # 2..4 entities of one domain
_SCENE = (0.15, 4.5)  # 3..6 entities of any controlled domain
MEAN_GROUP_SIZE = sum(w * size for w, size in (_AUTOMATION, _SERVICE, _SCENE))

# Share of automation runs triggered by a state change (the rest: time patterns, sun, ...).
_P_TRIGGERED = 0.75
_P_USER = 0.6  # service calls and scenes from the frontend carry the user's id


class Entity(Protocol):
    """What a cause needs of the fleet's entities."""

    entity_id: str
    behaviour: Any
    data: dict[str, Any]
    down: bool


@dataclass(slots=True)
class Cause:
    """Changes that share one context, in the order Home Assistant makes them."""

    members: deque[tuple[Entity, int]]
    triggered: bool  # the context's parent is the change fired just before
    user_id: str | None
    context: dict[str, Any] | None = field(default=None)  # made with the first change


def group_probability(share: float) -> float:
    """The chance that a cause is a group, so that ``share`` of all events share a context.

    With q the chance and G the mean group size, a share q*G / (q*G + 1 - q) of events is in a
    group; solved for q.
    """
    return share / (MEAN_GROUP_SIZE - share * (MEAN_GROUP_SIZE - 1))


def user_ids(rng: random.Random, count: int = 2) -> list[str]:
    """Home Assistant user ids (32 hex digits), for contexts of calls made from the frontend."""
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


class CauseDrawer:
    """Draws grouped causes over the live entities (``by_domain`` is kept current by the
    fleet; it is read, never changed, here)."""

    def __init__(self, rng: random.Random, by_domain: dict[str, list[Any]], pool: list[Any],
                 automation: Any) -> None:
        self._rng = rng
        self._by_domain = by_domain
        self._pool = pool
        self._automation = automation  # the automation behaviour (for start/end of runs)
        self._users = user_ids(rng)

    def draw(self) -> Cause | None:
        """A grouped cause, or None when the fleet is too small for one."""
        r = self._rng.random()
        if r < _AUTOMATION[0]:
            cause = self._automation_run()
            if cause is not None:
                return cause
            r = _AUTOMATION[0]  # no automation can run: a service call instead
        if r < _AUTOMATION[0] + _SERVICE[0]:
            return self._service_call()
        return self._scene()

    # -- kinds -----------------------------------------------------------------------------

    def _automation_run(self) -> Cause | None:
        rng = self._rng
        autos = self._by_domain.get("automation")
        if not autos:
            return None
        auto = None
        for _ in range(4):  # a disabled (or unavailable) automation does not run
            pick = autos[int(rng.random() * len(autos))]
            if not pick.down and self._automation.can_run(pick.data):
                auto = pick
                break
        if auto is None:
            return None
        actions = self._controlled(1 + int(rng.random() * 3), exclude={auto.entity_id})
        if not actions:
            return None
        members = deque([(auto, RUN_START), *((e, STEP) for e in actions), (auto, RUN_END)])
        return Cause(members, triggered=rng.random() < _P_TRIGGERED, user_id=None)

    def _service_call(self) -> Cause | None:
        rng = self._rng
        k = 2 + int(rng.random() * 3)
        domain = self._controlled_domain()
        same = self._by_domain.get(domain, []) if domain else []
        targets = (self._distinct(same, k, set()) if len(same) >= 2
                   else self._controlled(k, set()))
        return self._user_cause(targets)

    def _scene(self) -> Cause | None:
        return self._user_cause(self._controlled(3 + int(self._rng.random() * 4), set()))

    def _user_cause(self, targets: list[Any]) -> Cause | None:
        if len(targets) < 2:
            return None
        rng = self._rng
        user = self._users[int(rng.random() * len(self._users))] if rng.random() < _P_USER \
            else None
        return Cause(deque((e, STEP) for e in targets), triggered=False, user_id=user)

    # -- picking entities ------------------------------------------------------------------

    def _controlled_domain(self) -> str | None:
        """A controlled domain, as likely as its share of the controlled entities."""
        sizes = [len(self._by_domain.get(d, ())) for d in CONTROLLED]
        total = sum(sizes)
        if not total:
            return None
        r = int(self._rng.random() * total)
        for domain, size in zip(CONTROLLED, sizes, strict=True):
            if r < size:
                return domain
            r -= size
        return None  # not reached

    def _controlled(self, k: int, exclude: set[str]) -> list[Any]:
        """Up to ``k`` distinct controlled entities (any entity but automations if the fleet
        has no controlled ones: ``homeassistant.update_entity`` on a few sensors)."""
        picked: list[Any] = []
        seen = set(exclude)
        for _ in range(k * 4):
            if len(picked) == k:
                break
            domain = self._controlled_domain()
            if domain is None:
                return self._distinct(self._pool, k, seen, skip_automations=True)
            entities = self._by_domain[domain]
            entity = entities[int(self._rng.random() * len(entities))]
            if entity.entity_id not in seen:
                seen.add(entity.entity_id)
                picked.append(entity)
        return picked

    def _distinct(self, entities: list[Any], k: int, seen: set[str],
                  skip_automations: bool = False) -> list[Any]:
        picked: list[Any] = []
        rng = self._rng
        for _ in range(k * 4):
            if len(picked) == k or not entities:
                break
            entity = entities[int(rng.random() * len(entities))]
            if entity.entity_id in seen or (skip_automations
                                            and entity.behaviour is self._automation):
                continue
            seen.add(entity.entity_id)
            picked.append(entity)
        return picked
