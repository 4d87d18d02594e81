"""Lease renewals under DynamoDB throttling: one replica holding `--units` leases behind the fault proxy,
a share of its DynamoDB calls answered ProvisionedThroughputExceeded. Prints, per share, how often a lease
went unrenewed for longer than lease_duration (another replica could have taken it: a lost lease and a
hand-over), the share of time its units could not be delivered, and the DynamoDB calls per minute it made.
Asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_throttled_renewals.py [--lease 3] [--units 10] \
        [--seconds 60] [--shares 0.5,0.7,0.8,0.9]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from typing import Any

import _setup

from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import Coordinator, LeaseTable
from k8saudit_eks_py.coordination.lease import Lease
from k8saudit_eks_py.coordination.start import dynamodb_client
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.leases import new_table, wait_for
from tests.support.moto_server import REGION


class RecordingTable(LeaseTable):
    """The lease table, noting when each successful renewal (or take) of a unit was sent."""

    def __init__(self, client: Any, name: str) -> None:
        super().__init__(client, name)
        self.sent: dict[str, list[float]] = defaultdict(list)

    def renew(self, unit: str, me: str, counter: int) -> Lease:
        sent = time.monotonic()
        lease = super().renew(unit, me, counter)
        self.sent[unit].append(sent)
        return lease


def one_share(url: str, share: float, lease_s: int, units: int, seconds: float, seed: int) -> str:
    faults = Faults(seed=seed)
    with FaultProxy(url, faults) as proxy:
        cfg = PluginConfig(coordination_endpoint_url=proxy.url, lease_duration=lease_s)
        table = RecordingTable(dynamodb_client(cfg, REGION), new_table(url))
        names = [f"u{i}" for i in range(units)]
        c = Coordinator(table, "holder", lease_s, names)
        c.start()
        try:
            assert wait_for(lambda: len(c.held()) == units, 30), "the holder never took its units"
            calls_before = sum(proxy.stats.dynamodb.values())
            began = time.monotonic()
            faults.dynamodb_throttle = share
            time.sleep(seconds)
            faults.dynamodb_throttle = 0.0
            ended = time.monotonic()
            calls = sum(proxy.stats.dynamodb.values()) - calls_before
        finally:
            c.close()
    expiries = renewals = 0
    undeliverable = 0.0
    usable = lease_s - c.margin
    for unit in names:
        sent = [t for t in table.sent[unit] if began - lease_s <= t <= ended]
        renewals += len(sent)
        for a, b in itertools.pairwise(sent):
            expiries += b - a > lease_s
            undeliverable += max(0.0, min(b, ended) - max(a + usable, began))
    span = ended - began
    return (
        f"  throttled {share:4.0%}: {renewals:5d} renewals, {expiries:3d} gaps longer than the lease "
        f"({expiries / max(1, renewals):.2%}), units undeliverable {undeliverable / (units * span):.2%} "
        f"of the time, {calls / (span / 60):.0f} DynamoDB calls/min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lease", type=int, default=3, help="lease_duration in seconds")
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0, help="per share")
    parser.add_argument("--shares", default="0.5,0.7,0.8,0.9")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"one replica, {args.units} leases of {args.lease} s, {args.seconds:.0f} s per throttled share")
    with _setup.local_aws() as moto:
        for share in (float(s) for s in args.shares.split(",")):
            print(one_share(moto.url, share, args.lease, args.units, args.seconds, args.seed), flush=True)


if __name__ == "__main__":
    main()
