"""Several clients sending the same conditional take of one lease at once, round after round: DynamoDB lets
exactly one of them through each round. Used by a test (on the tests' moto) and by
benchmarks/moto_conditional_writes.py (which also runs it on plain `python -m moto.server`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from k8saudit_eks_py.coordination import LeaseLost, LeaseTable
from k8saudit_eks_py.coordination.lease import Lease
from tests.support.leases import dynamodb, new_table


@dataclass
class RaceResult:
    rounds: int = 0
    several_won: list[tuple[int, list[str]]] = field(default_factory=list)  # (counter raced for, winners)
    none_won: int = 0


def _take(table: LeaseTable, lease: Lease, me: str, barrier: threading.Barrier, winners: list[str]) -> None:
    barrier.wait()
    try:
        table.take(lease, me)
        winners.append(me)
    except LeaseLost:
        pass


def race_takes(url: str, rounds: int, clients: int = 6) -> RaceResult:
    table = new_table(url)
    tables = [LeaseTable(dynamodb(url), table) for _ in range(clients)]
    tables[0].ensure("unit")
    result = RaceResult()
    for _ in range(rounds):
        lease = tables[0].get("unit")
        assert lease is not None
        barrier = threading.Barrier(clients)
        winners: list[str] = []

        threads = [
            threading.Thread(target=_take, args=(t, lease, f"r{i}", barrier, winners))
            for i, t in enumerate(tables)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result.rounds += 1
        if len(winners) > 1:
            result.several_won.append((lease.counter, winners))
        elif not winners:
            result.none_won += 1
    return result
