"""Stream mode with replicas: which shards this replica may read, decided by the DynamoDB lease table.

Each shard is a work unit (its checkpoint key). The shards offered to the Coordinator are the eligible ones
(shards.py: not finished, every parent finished), judged with the states in the table, so a child becomes
readable here even when its parent was read by another replica. The Coordinator takes, balances and hands
over the leases; this replica reads a shard between its `acquired` and its `lost`, and hands its events to
Falco only while `deliverable` says so.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass

from k8saudit_eks_py import aws, log
from k8saudit_eks_py.checkpoint_store import UnitState
from k8saudit_eks_py.coordination import Coordinator
from k8saudit_eks_py.sources.kinesis.shards import ShardInfo, eligible, is_finished, start_since, unit_key

__all__ = ["ShardChange", "ShardLeases"]


@dataclass(frozen=True, slots=True)
class ShardChange:
    acquired: bool  # False: lost
    shard_id: str
    state: UnitState | None


class ShardLeases:
    def __init__(self, coordinator: Coordinator, stream: str) -> None:
        self.coordinator = coordinator
        self.stream = stream
        self._shard_of: dict[str, str] = {}  # unit key → shard id
        self._origins: dict[str, UnitState] = {}  # unit key → where it starts if never read
        # Units are offered only after this is set, so the first take of every shard records its origin.
        coordinator.origin = self.origin

    def key(self, shard_id: str) -> str:
        unit = unit_key(self.stream, shard_id)
        self._shard_of[unit] = shard_id
        return unit

    def refresh_states(
        self, shards: list[ShardInfo], states: dict[str, UnitState | None], reading: set[str]
    ) -> None:
        """Read from the table the states of the shards not read here and not known finished: another
        replica may have moved or finished them. A failed read keeps what was known (a shard whose state
        is unknown is never taken as finished, so its children wait)."""
        for s in shards:
            if s.shard_id in reading or is_finished(states.get(s.shard_id)):
                continue
            try:
                states[s.shard_id] = self.coordinator.store.load(self.key(s.shard_id))
            except aws.Cancelled:
                raise
            except Exception as exc:
                if not aws.is_aws_error(exc):
                    raise
                log.warning(
                    f"stream {self.stream}: cannot read the state of shard {s.shard_id} from the lease "
                    f"table ({aws.describe(exc)}); retrying at the next listing",
                    key="shard-state",
                )
                states.setdefault(s.shard_id, None)

    def offer(self, shards: list[ShardInfo], states: dict[str, UnitState | None], default_ms: int) -> None:
        """The eligible shards become the Coordinator's units (a finished one is given up). Each one's
        origin is where its lineage started (its parents' start, else `default_ms`: now - shift at open)."""
        ready = eligible(shards, states)
        for s in ready:
            self._origins[self.key(s.shard_id)] = {"since": start_since(s, states, default_ms)}
        self.coordinator.set_units(self.key(s.shard_id) for s in ready)

    def origin(self, unit: str) -> UnitState:
        """The state a shard never read before starts from (called by the lease thread at its take)."""
        return dict(self._origins[unit])

    def changes(self) -> list[ShardChange]:
        out: list[ShardChange] = []
        while True:
            try:
                change = self.coordinator.changes.get_nowait()
            except queue.Empty:
                return out
            shard_id = self._shard_of.get(change.unit, change.unit.rsplit("|", 1)[-1])
            out.append(ShardChange(change.kind == "acquired", shard_id, change.state))

    def deliverable(self, unit: str) -> bool:
        return self.coordinator.deliverable(unit)
