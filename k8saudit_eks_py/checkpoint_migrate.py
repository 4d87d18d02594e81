"""Checkpoint files written by earlier releases, read into today's per-unit states.

Version 1 (the releases before per-stream positions) kept, per log group, a horizon (ms) and every eventId
delivered at or after it: {"version": 1, "groups": {KEY: {"horizon": MS, "ids": [[ID, TS], ...]}}}, with
journal lines {KEY: [HORIZON, [[ID, TS], ...]]} appended per batch. Its keys are today's unit keys.

A version-1 group becomes a state whose origin and front are the horizon (every stream is read again
from there) plus `legacy_ids`: the eventIds the old release already delivered, which the reader skips
as it meets them (streams.py). Nothing after the horizon is lost, and what was delivered is not repeated.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LEGACY_IDS", "is_v1_delta", "merge_v1_delta", "migrate_v1"]

LEGACY_IDS = "legacy_ids"
# Today's GroupPositions state version (streams.py); not imported: the store sits below the sources.
_GROUP_STATE_VERSION = 1


def migrate_v1(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The states of a version-1 snapshot. ValueError/KeyError/TypeError when it is not one."""
    groups = doc["groups"]
    if not isinstance(groups, dict):
        raise ValueError("'groups' is not an object")
    states: dict[str, dict[str, Any]] = {}
    for key, group in groups.items():
        merge_v1_delta(states, str(key), [group["horizon"], group["ids"]])
    return states


def is_v1_delta(value: object) -> bool:
    """A version-1 journal value ([horizon, [[id, ts], ...]]), as opposed to today's state object."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], list)


def merge_v1_delta(states: dict[str, dict[str, Any]], key: str, value: list[Any]) -> None:
    """Apply one version-1 record (horizon = max, ids at or after it = union), as the old release did."""
    horizon = int(value[0])
    ids = {str(event_id): int(ts) for event_id, ts in value[1]}
    state = states.get(key)
    if state is None or LEGACY_IDS not in state:
        state = states[key] = {
            "version": _GROUP_STATE_VERSION,
            "origin": horizon,
            "front": horizon,
            "streams": {},
            LEGACY_IDS: {},
        }
    if horizon > state["origin"]:
        state["origin"] = state["front"] = horizon
        state[LEGACY_IDS] = {e: t for e, t in state[LEGACY_IDS].items() if t >= horizon}
    state[LEGACY_IDS].update({e: t for e, t in ids.items() if t >= state["origin"]})
