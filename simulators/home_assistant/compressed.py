"""The compressed state format of ``subscribe_entities`` (what Home Assistant's frontend uses).

Initial message ``{"a": {entity_id: compressed}}``; then per change ``{"c": {entity_id: diff}}``,
additions ``{"a": ...}`` and removals ``{"r": [entity_id]}``. Times are float epoch seconds.
"""

from __future__ import annotations

from typing import Any, cast

from .events import StateChange
from .timefmt import ns_from_iso


def _epoch(iso: str) -> float:
    return ns_from_iso(iso) / 1e9


def _compressed_context(ctx: dict[str, Any]) -> str | dict[str, Any]:
    # A context with no parent and no user travels as its bare id; otherwise whole, None
    # values included (State.as_compressed_state sends Context._as_dict).
    if ctx.get("parent_id") is None and ctx.get("user_id") is None:
        return cast(str, ctx["id"])
    return {"id": ctx["id"], "parent_id": ctx.get("parent_id"), "user_id": ctx.get("user_id")}


def _context_diff(old: dict[str, Any], new: dict[str, Any]) -> str | dict[str, Any] | None:
    """What changed in the context, built as Home Assistant's _state_diff does: parent_id and
    user_id when they changed (None included), then the id; a bare id when only it changed."""
    out: dict[str, Any] = {}
    if old.get("parent_id") != new.get("parent_id"):
        out["parent_id"] = new.get("parent_id")
    if old.get("user_id") != new.get("user_id"):
        out["user_id"] = new.get("user_id")
    if old["id"] != new["id"]:
        if not out:
            return cast(str, new["id"])
        out["id"] = new["id"]
    return out or None


def compress(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "s": state["state"],
        "a": state["attributes"],
        "c": _compressed_context(state["context"]),
        "lc": _epoch(state["last_changed"]),
    }
    if state["last_updated"] != state["last_changed"]:
        out["lu"] = _epoch(state["last_updated"])
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    additions: dict[str, Any] = {}
    if old["state"] != new["state"]:
        additions["s"] = new["state"]
    if old["last_changed"] != new["last_changed"]:
        additions["lc"] = _epoch(new["last_changed"])
    elif old["last_updated"] != new["last_updated"]:
        additions["lu"] = _epoch(new["last_updated"])
    context = _context_diff(old["context"], new["context"])
    if context is not None:
        additions["c"] = context
    old_attrs, new_attrs = old["attributes"], new["attributes"]
    changed = {k: v for k, v in new_attrs.items() if k not in old_attrs or old_attrs[k] != v}
    if changed:
        additions["a"] = changed
    out: dict[str, Any] = {"+": additions}
    removed = [k for k in old_attrs if k not in new_attrs]
    if removed:
        out["-"] = {"a": removed}
    return out


def initial(states: list[dict[str, Any]], only: set[str] | None) -> dict[str, Any]:
    return {"a": {s["entity_id"]: compress(s) for s in states
                  if only is None or s["entity_id"] in only}}


def change_message(change: StateChange) -> dict[str, Any]:
    if change.new_state is None:
        return {"r": [change.entity_id]}
    if change.old_state is None:
        return {"a": {change.entity_id: compress(change.new_state)}}
    return {"c": {change.entity_id: diff(change.old_state, change.new_state)}}
