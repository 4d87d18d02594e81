"""Which leases a replica should take or ask for next (pure: the Coordinator applies the answer).

KCL rules: live replicas are the replicas that announced themselves recently, the owners of unexpired
leases and the replica itself; with M units and N live replicas each should hold between floor(M/N) and
ceil(M/N). A replica below ceil(M/N) takes free or expired leases first; with none left it asks for one
lease at a time from the most loaded replica, when that one holds more than ceil(M/N), or at least two more
than itself while it is below floor(M/N).

Replicas started together see the same free leases: each orders them by a hash of its own id, so that
their takes mostly land on different units instead of all racing for the first one. A lease another live
replica has already asked for counts as the asker's (its owner is handing it over) and is not asked for
again.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from k8saudit_eks_py.coordination.lease import Lease

__all__ = ["Plan", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    take: list[Lease] = field(default_factory=list)  # free or expired: take now
    steal: Lease | None = None  # held by an overloaded live replica: ask for a hand-over


def _spread(me: str, unit: str) -> int:
    return zlib.crc32(f"{me}\0{unit}".encode())


def plan(
    me: str,
    mine: int,
    live: list[Lease],
    takeable: list[Lease],
    present: Collection[str] = (),
    leaving: Collection[str] = (),
) -> Plan:
    """`mine`: leases this replica holds; `live`: unexpired leases held by others; `takeable`: free or
    expired leases (free ones first in the answer, so a clean hand-over is picked up before an expiry);
    `present`: other replicas known to be live (announced), whether or not they hold anything;
    `leaving`: for each of this replica's leases another replica asked for, the asker.

    A lease asked for by a live replica counts as that replica's already: its owner is handing it over.
    Counted as the owner's, every replica below its share would ask the same owner at once, the owner
    would drop to nothing, ask back, and the hand-overs would go round for ever."""
    owners = {lease.owner for lease in live if lease.owner != me}
    alive = owners | set(present) | {me}

    def holder(lease: Lease) -> str:
        return lease.handoff_to if lease.handoff_to in alive else lease.owner

    units = mine + len(live) + len(takeable)
    counts = Counter(holder(lease) for lease in live)
    coming = counts.pop(me, 0)
    going = [to for to in leaving if to in alive and to != me]
    counts.update(going)
    mine += coming - len(going)
    replicas = len((owners | set(present)) - {me}) + 1
    low, high = units // replicas, -(-units // replicas)
    if mine < high and takeable:
        ordered = sorted(takeable, key=lambda lease: (not lease.free, _spread(me, lease.unit)))
        return Plan(take=ordered[: high - mine])
    if mine >= high or not counts:
        return Plan()
    for owner, most in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if not (most > high or (mine < low and most >= mine + 2)):
            break
        candidates = sorted(
            (lease for lease in live if lease.owner == owner and holder(lease) == owner),
            key=lambda lease: _spread(me, lease.unit),
        )
        if candidates:
            return Plan(steal=candidates[0])
    return Plan()
