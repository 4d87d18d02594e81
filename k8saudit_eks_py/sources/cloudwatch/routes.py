"""Where each log group is read from: its Route (the account whose quotas its calls spend, the Region,
the role that reads it) and its Target (unit key, shown name, request), from the clusters of open_params.

A plain cluster name is read as before: the configured Region and credentials, logGroupName. A cluster
named by ARN is read in its own Region, and with `cross_account: role` (the default) through the role
role_arns / role_arn name for its account, by logGroupName inside that account; its calls spend that
account's quotas. With `cross_account: observability`, or when no role is configured for the account, the
plugin's own credentials read it by ARN (logGroupIdentifier: CloudWatch cross-account observability, or
the plugin's own account), spending the plugin's own account's quotas in that Region.

FilterLogEvents and DescribeLogStreams quotas are per account and Region, so the source keeps one pacer,
one client and one poller thread per Route key (account, Region).
"""

from __future__ import annotations

from dataclasses import dataclass

from k8saudit_eks_py.account_roles import role_for
from k8saudit_eks_py.cluster_refs import ClusterRef, labels
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.sources.cloudwatch.units import group_request, unit_key

__all__ = ["OWN", "Route", "RouteKey", "Target", "targets"]

RouteKey = tuple[str, str]  # (account, Region); account "" = the account of the plugin's own credentials
OWN = ""


@dataclass(frozen=True, slots=True)
class Route:
    account: str  # OWN, or the account whose role is assumed
    region: str
    role_arn: str | None  # None: own_role (the plugin's own credentials)

    @property
    def key(self) -> RouteKey:
        return (self.account, self.region)

    @property
    def name(self) -> str:
        return f"account {self.account} in {self.region}" if self.account else f"own account in {self.region}"


@dataclass(frozen=True, slots=True)
class Target:
    key: str  # the unit (checkpoint, lease) key: includes the account and Region of an ARN item
    cluster: str  # shown in ka.cluster.name and log lines
    log_group: str  # name, or ARN for a cluster named by ARN
    request: dict[str, str]
    route: Route
    name: str = ""  # the EKS cluster's own name (in messages that give a command to run)


def targets(config: PluginConfig, region: str, refs: list[ClusterRef]) -> list[Target]:
    out = []
    for ref, label in zip(refs, labels(refs), strict=True):
        if not ref.by_arn:
            group = config.log_group or ref.log_group
            route = Route(OWN, region, None)
            key = unit_key(config, region, group)
            out.append(Target(key, label, group, group_request(group), route, ref.name))
            continue
        arn = ref.log_group_arn
        key = unit_key(config, ref.region, arn)
        role = (
            ""
            if config.cross_account == "observability"
            else role_for(config.role_arn, config.role_arns, ref.account, ref.region)
        )
        if role:
            route = Route(ref.account, ref.region, role)
            out.append(Target(key, label, arn, {"logGroupName": ref.log_group}, route, ref.name))
        else:
            route = Route(OWN, ref.region, None)
            out.append(Target(key, label, arn, {"logGroupIdentifier": arn}, route, ref.name))
    return out
