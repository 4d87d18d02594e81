"""Replicas in separate processes on moto's DynamoDB: kill -9 of an owner and the takeover."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.leases import new_table, owners, wait_for
from tests.support.moto_server import MotoServer
from tests.support.replica_procs import Replica

LEASE_S = 3.0
UNITS = ["/aws/eks/a/cluster", "/aws/eks/b/cluster", "/aws/eks/c/cluster"]


def test_kill_9_owner_unit_taken_within_lease_duration_plus_one_renewal(
    moto: MotoServer, tmp_path: Path, started: list[Replica]
) -> None:
    table = new_table(moto.url)
    for i in range(3):
        started.append(
            Replica(tmp_path / f"r{i}.jsonl", moto.url, table, f"r{i}", LEASE_S, UNITS, save_every=0.1)
        )
    assert wait_for(lambda: [len(r.held()) for r in started] == [1, 1, 1], 40), [r.held() for r in started]
    victim = started[0]
    unit = victim.held()[0]
    assert wait_for(lambda: len(victim.saved(unit)) >= 5, 10)
    killed_at = time.time()
    victim.kill9()
    survivors = started[1:]
    assert wait_for(lambda: any(unit in r.held() for r in survivors), 3 * LEASE_S)
    new_owner = next(r for r in survivors if unit in r.held())
    taken_at = new_owner.first_holding(unit, after=killed_at)
    assert taken_at is not None
    assert taken_at - killed_at >= LEASE_S - LEASE_S / 3 - 0.5, "taken before the lease could expire"
    # The victim's last renewal was at most one period before the kill: expiry comes at most LEASE_S after
    # the kill, noticed within one more period; the slack covers scheduling on a loaded machine.
    assert taken_at - killed_at <= LEASE_S + LEASE_S / 3 + 1.0, taken_at - killed_at
    assert sorted(len(r.held()) for r in survivors) == [1, 2]
    assert owners(moto.url, table)[unit] == new_owner.name
    # It resumes from the last checkpoint the victim committed (or the one whose save was in flight at the
    # kill, written but not yet reported): nothing committed is lost.
    last_committed = victim.saved(unit)[-1]
    resumed = new_owner.acquired(unit)[-1]
    assert resumed["by"] == victim.name and resumed["n"] in (last_committed, last_committed + 1), resumed


def test_restarted_process_is_a_new_replica_and_rebalances(
    moto: MotoServer, tmp_path: Path, started: list[Replica]
) -> None:
    table = new_table(moto.url)
    first = Replica(tmp_path / "a.jsonl", moto.url, table, "a-1", LEASE_S, UNITS)
    started.append(first)
    assert wait_for(lambda: len(first.held()) == 3, 20)
    first.kill9()
    second = Replica(tmp_path / "b.jsonl", moto.url, table, "a-2", LEASE_S, UNITS)
    started.append(second)
    assert wait_for(lambda: len(second.held()) == 3, 3 * LEASE_S + 5)
    assert set(owners(moto.url, table).values()) == {"a-2"}
