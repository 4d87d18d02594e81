"""Several replicas sharing work units (log groups, Kinesis shards) through a DynamoDB lease table.

The design follows the Kinesis Client Library: one item per unit holding its owner, a lease counter that
the owner bumps to renew, and the unit's checkpoint; every write is conditional on owner + counter. A
lease is expired when its counter has not moved for lease_duration by the observer's own monotonic clock
(no clock synchronisation between replicas).

Data path: the source asks the Coordinator which units it may deliver, saves checkpoints through
the Coordinator's fenced CheckpointStore, and learns of acquired/lost units from its queue.
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
