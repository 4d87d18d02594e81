"""The CloudWatch source under coordination_table: log groups are read only while this replica leases them.

The Coordinator (k8saudit_eks_py.coordination) decides which log groups this replica holds; this module
turns its `changes` into the source's add_unit / remove_unit calls on Falco's thread, and answers which
units' events may be handed to Falco now (`deliverable`: False before another replica can take a lease).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from k8saudit_eks_py.checkpoint_store import UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import Coordinator
from k8saudit_eks_py.coordination.start import start_coordinator

__all__ = ["LogGroup", "UnitLeases"]


@dataclass(frozen=True, slots=True)
class LogGroup:
    cluster: str
    log_group: str


class _Units(Protocol):
    """What UnitLeases needs from the source (CloudWatchSource)."""

    def add_unit(self, key: str, cluster: str, log_group: str, state: UnitState | None) -> None: ...

    def remove_unit(self, key: str) -> None: ...

    def units(self) -> list[str]: ...


class UnitLeases:
    def __init__(self, coordinator: Coordinator, groups: dict[str, LogGroup]) -> None:
        self.coordinator = coordinator
        self._groups = groups

    @classmethod
    def start(
        cls,
        config: PluginConfig,
        region: str,
        groups: dict[str, LogGroup],
        origin: Callable[[str], UnitState],
    ) -> UnitLeases:
        """OpenError with the fix when the table is missing, has another key schema or is forbidden.
        `origin(unit)`: the state a log group never read before starts from (now - shift); the first
        replica to take it records it in the lease, and every later holder without a checkpoint uses it."""
        return cls(start_coordinator(config, region, groups, origin), groups)

    def apply_changes(self, source: _Units) -> None:
        """Start reading the log groups acquired since the last call, stop reading the ones lost."""
        while True:
            try:
                change = self.coordinator.changes.get_nowait()
            except queue.Empty:
                return
            group = self._groups.get(change.unit)
            if group is None:
                continue
            if change.kind == "lost":
                source.remove_unit(change.unit)
                continue
            source.remove_unit(change.unit)  # a unit lost and taken again restarts from its lease's state
            source.add_unit(change.unit, group.cluster, group.log_group, change.state)

    def deliverable(self, units: Iterable[str]) -> set[str]:
        return {unit for unit in units if self.coordinator.deliverable(unit)}
