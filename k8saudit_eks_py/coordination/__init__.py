"""Several replicas sharing work units (log groups, Kinesis shards) through a DynamoDB lease table.

The design follows the Kinesis Client Library: one item per unit holding its owner, a lease counter that
the owner bumps to renew, and the unit's checkpoint; every write is conditional on owner + counter. A
lease is expired when its counter has not moved for lease_duration by the observer's own monotonic clock
(no clock synchronisation between replicas).

How a source uses it (data path: source -> coordination, never the other way):
- open: `start_coordinator(cfg, region, units)` (start.py) verifies the table (OpenError with the fix)
  and starts the lease thread; `coordinator.store` is the source's CheckpointStore.
- each next_batch: drain `coordinator.changes`: `acquired(unit, state)` -> start reading the unit from
  `state` (None: from `shift`); `lost(unit)` -> stop reading it and discard what is queued for it (the
  new owner re-reads it from the last committed checkpoint). Hand events of a unit to Falco only while
  `coordinator.deliverable(unit)`: it turns False before another replica can take the lease, and for
  every unit while a checkpoint write that failed waits for its retry; while it is False without a
  `lost`, keep the events queued (renewals or the write are being retried). Commit with
  `coordinator.store.save({unit: state})` for the units of the previous batch; CheckpointRejected means
  the unit was dropped (its `lost` is queued).
- metrics: merge `coordinator.metrics()`; close: `coordinator.close()` writes pending checkpoints and
  releases the leases.
"""

from k8saudit_eks_py.coordination.coordinator import Change, Coordinator
from k8saudit_eks_py.coordination.fenced_store import CheckpointRejected, FencedStore
from k8saudit_eks_py.coordination.replica import default_replica_id
from k8saudit_eks_py.coordination.table import LeaseLost, LeaseTable, table_name

__all__ = [
    "Change",
    "CheckpointRejected",
    "Coordinator",
    "FencedStore",
    "LeaseLost",
    "LeaseTable",
    "default_replica_id",
    "table_name",
]
