"""One lease item of the table, as read back from DynamoDB."""

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


@dataclass(frozen=True, slots=True)
class Lease:
    unit: str
    owner: str
    counter: int
    checkpoint: UnitState | None = None
    owner_switches: int = 0
    handoff_to: str = ""

    @property
    def free(self) -> bool:
        return not self.owner


def from_item(item: dict[str, Any]) -> Lease:
    """A lease from a DynamoDB item in the low-level attribute-value format."""
    raw = item.get(CHECKPOINT, {}).get("S")
    state = orjson.loads(raw) if raw else None
    return Lease(
        unit=item[KEY]["S"],
        owner=item.get(OWNER, {}).get("S", ""),
        counter=int(item.get(COUNTER, {}).get("N", "0")),
        checkpoint=state if isinstance(state, dict) else None,
        owner_switches=int(item.get(OWNER_SWITCHES, {}).get("N", "0")),
        handoff_to=item.get(HANDOFF_TO, {}).get("S", ""),
    )
