"""What a source's open() calls when coordination_table is set: verify the table, start a Coordinator."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from k8saudit_eks_py.aws import make_client
from k8saudit_eks_py.aws_setup.lease_table_verify import verify_table
from k8saudit_eks_py.checkpoint_store import UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination.coordinator import Coordinator
from k8saudit_eks_py.coordination.replica import default_replica_id
from k8saudit_eks_py.coordination.table import LeaseTable

__all__ = ["dynamodb_client", "start_coordinator"]


def dynamodb_client(cfg: PluginConfig, region: str) -> object:
    """Same credentials, role_arn and region as the CloudWatch client. Short timeouts: a renewal stuck in
    a slow connection must fail and be retried well within the lease."""
    timeout = max(1.0, cfg.lease_duration / 6)
    return make_client(
        "dynamodb",
        cfg,
        region,
        endpoint_url=cfg.coordination_endpoint_url,
        connect_timeout=timeout,
        read_timeout=timeout,
    )


def start_coordinator(
    cfg: PluginConfig,
    region: str,
    units: Iterable[str],
    origin: Callable[[str], UnitState] | None = None,
) -> Coordinator:
    """OpenError with the fix when the table is missing, has another key schema or is forbidden.
    `origin(unit)`: where a unit never read before starts (recorded in its lease by the first take)."""
    client = dynamodb_client(cfg, region)
    verify_table(client, cfg.coordination_table, region)
    coordinator = Coordinator(
        LeaseTable(client, cfg.coordination_table),
        cfg.replica_id or default_replica_id(),
        cfg.lease_duration,
        units,
        origin=origin,
    )
    coordinator.start()
    return coordinator
