"""One lease item of the table, as read back from DynamoDB, and a lease as its holder keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from k8saudit_eks_py.checkpoint_store import UnitState

# Attribute names of a lease item. `unit` is the table's only key (HASH, string).
KEY = "unit"
OWNER = "owner"  # replica id, "" when the lease is free
COUNTER = "lease_counter"  # bumped by every renewal, take, hand-over and release
CHECKPOINT = "checkpoint"  # the unit's CheckpointStore state, JSON text
OWNER_SWITCHES = "owner_switches"  # how many times the lease changed hands
HANDOFF_TO = "handoff_to"  # a replica asking the owner to hand the lease over (balancing)
# Where the unit's reading began (the first holder's now - shift, or a shard's start), JSON text: written
# by the first take in the same conditional write, so that every later holder that finds no checkpoint
# starts there rather than at its own now - shift (which would skip what arrived in between).
ORIGIN = "origin"
# Items whose key starts with this are not units but replicas announcing themselves (owner = the replica,
# the counter bumped every round): every replica counts the live ones before deciding how many units to hold.
PRESENCE_PREFIX = "replica|"


@dataclass(frozen=True, slots=True)
class Lease:
    unit: str
    owner: str
    counter: int
    checkpoint: UnitState | None = None
    owner_switches: int = 0
    handoff_to: str = ""
    origin: UnitState | None = None

    @property
    def start(self) -> UnitState | None:
        """Where a new holder reads from: the last committed checkpoint, else the unit's origin."""
        return self.checkpoint if self.checkpoint is not None else self.origin

    @property
    def free(self) -> bool:
        return not self.owner


def from_item(item: dict[str, Any]) -> Lease:
    """A lease from a DynamoDB item in the low-level attribute-value format."""
    return Lease(
        unit=item[KEY]["S"],
        owner=item.get(OWNER, {}).get("S", ""),
        counter=int(item.get(COUNTER, {}).get("N", "0")),
        checkpoint=_json_state(item, CHECKPOINT),
        owner_switches=int(item.get(OWNER_SWITCHES, {}).get("N", "0")),
        handoff_to=item.get(HANDOFF_TO, {}).get("S", ""),
        origin=_json_state(item, ORIGIN),
    )


def _json_state(item: dict[str, Any], name: str) -> UnitState | None:
    raw = item.get(name, {}).get("S")
    state = orjson.loads(raw) if raw else None
    return state if isinstance(state, dict) else None


def presence_key(replica: str) -> str:
    return PRESENCE_PREFIX + replica


@dataclass(slots=True)
class Held:
    """A lease as the replica holding it sees it (the Coordinator's and the fenced store's shared view)."""

    counter: int
    renewed_at: float  # clock() when the last successful renewal (or take) was sent
    draining_since: float | None = None  # a hand-over was asked: deliver nothing more
    handoff_to: str = ""
    saved_since_drain: bool = False
    checkpoint: UnitState | None = None  # the state found in the lease when taken (else its origin)
