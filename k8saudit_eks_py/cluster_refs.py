"""The clusters open_params names: a plain EKS cluster name (read in the configured Region with the
configured credentials), an EKS cluster ARN or the ARN of its audit log group (read in that account and
Region), and the name each is shown as in ka.cluster.name, log lines and metrics.

Naming: a plain name is shown as itself. A cluster named by ARN is shown by its plain name too, unless
another item of open_params has the same name: then as ACCOUNT/REGION/NAME, so that two `prod` clusters in
two accounts stay apart while a single-account configuration reads as before.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from k8saudit_eks_py.eks_names import cluster_name_problem

__all__ = ["ClusterRef", "labels", "parse_item", "parse_items"]

_EKS_ARN = re.compile(r"arn:(aws[a-z-]*):eks:([a-z0-9-]+):(\d{12}):cluster/(.+)")
_LOGS_ARN = re.compile(r"arn:(aws[a-z-]*):logs:([a-z0-9-]+):(\d{12}):log-group:(.+?)(?::\*)?")
_EKS_GROUP = re.compile(r"/aws/eks/([^/]+)/cluster")


@dataclass(frozen=True, slots=True)
class ClusterRef:
    name: str
    account: str = ""  # "" for a plain name: the account of the configured credentials
    region: str = ""  # "" for a plain name: the configured Region
    partition: str = "aws"

    @property
    def by_arn(self) -> bool:
        return bool(self.account)

    @property
    def log_group(self) -> str:
        return f"/aws/eks/{self.name}/cluster"

    @property
    def log_group_arn(self) -> str:
        """The audit log group's ARN (logGroupIdentifier); "" for a plain name."""
        if not self.by_arn:
            return ""
        return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{self.log_group}"

    @property
    def qualified(self) -> str:
        return f"{self.account}/{self.region}/{self.name}" if self.by_arn else self.name


def parse_item(item: str) -> ClusterRef:
    """One open_params item → ClusterRef; ValueError with what to write instead."""
    if not item.startswith("arn:"):
        problem = cluster_name_problem(item)
        if problem:
            raise ValueError(problem)
        return ClusterRef(item)
    m = _EKS_ARN.fullmatch(item)
    if m:
        partition, region, account, name = m.groups()
    else:
        m = _LOGS_ARN.fullmatch(item)
        if m is None:
            raise ValueError(
                f"{item[:160]!r} is neither an EKS cluster ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME) nor "
                "a log group ARN (arn:aws:logs:REGION:ACCOUNT:log-group:/aws/eks/NAME/cluster)"
            )
        partition, region, account, group = m.groups()
        g = _EKS_GROUP.fullmatch(group)
        if g is None:
            raise ValueError(
                f"{item[:160]!r} names log group {group}, not an EKS audit log group /aws/eks/NAME/cluster"
            )
        name = g.group(1)
    problem = cluster_name_problem(name)
    if problem:
        raise ValueError(f"{item[:160]!r}: {problem}")
    return ClusterRef(name, account, region, partition)


def parse_items(params: str) -> list[ClusterRef]:
    """Comma-separated items → ClusterRefs; ValueError naming the item to fix."""
    items = [n.strip() for n in params.split(",")]
    if not params.strip() or any(not n for n in items):
        raise ValueError(
            f"open_params {params!r} has an empty cluster name: write one EKS cluster name, or several "
            "separated by commas (e.g. prod-a,prod-b), or cluster ARNs"
        )
    refs = [parse_item(item) for item in items]
    seen = Counter((r.name, r.account, r.region) for r in refs)
    twice = [key for key, n in seen.items() if n > 1]
    if twice:
        raise ValueError(f"open_params {params!r} names a cluster twice ({twice[0][0]})")
    return refs


def labels(refs: list[ClusterRef]) -> list[str]:
    """The name each cluster is shown as (module docstring), in the order of `refs`."""
    count = Counter(r.name for r in refs)
    return [r.qualified if r.by_arn and count[r.name] > 1 else r.name for r in refs]
