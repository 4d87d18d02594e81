"""Which leases a replica should take or ask for next (pure: the Coordinator applies the answer).

KCL rules: live replicas are the owners of unexpired leases plus the replica itself; with M units and N
live replicas each should hold between floor(M/N) and ceil(M/N). A replica below ceil(M/N) takes free or
expired leases first; with none left it asks for one lease at a time from the most loaded replica, when
that one holds more than ceil(M/N), or at least two more than itself while it is below floor(M/N).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from k8saudit_eks_py.coordination.lease import Lease

__all__ = ["Plan", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    take: list[Lease] = field(default_factory=list)  # free or expired: take now
    steal: Lease | None = None  # held by an overloaded live replica: ask for a hand-over


def plan(me: str, mine: int, live: list[Lease], takeable: list[Lease]) -> Plan:
    """`mine`: leases this replica holds; `live`: unexpired leases held by others; `takeable`: free or
    expired leases (free ones first in the answer, so a clean hand-over is picked up before an expiry)."""
    counts = Counter(lease.owner for lease in live if lease.owner != me)
    replicas = len(counts) + 1
    units = mine + len(live) + len(takeable)
    low, high = units // replicas, -(-units // replicas)
    if mine < high and takeable:
        ordered = sorted(takeable, key=lambda lease: (not lease.free, lease.unit))
        return Plan(take=ordered[: high - mine])
    if mine >= high or not counts:
        return Plan()
    owner, most = max(counts.items(), key=lambda item: (item[1], item[0]))
    if most > high or (mine < low and most >= mine + 2):
        candidates = sorted((lease for lease in live if lease.owner == owner), key=lambda lease: lease.unit)
        asked = [lease for lease in candidates if lease.handoff_to == me]
        return Plan(steal=(asked or candidates)[0])
    return Plan()
