"""The CloudWatch source under coordination_table, in process: what it does while a lease is unsure, when
its checkpoint is rejected, and when it holds nothing."""

from __future__ import annotations

import time

from k8saudit_eks_py.coordination import LeaseLost, LeaseTable
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.leases import dynamodb, new_table, wait_for
from tests.support.moto_server import (
    FAST,
    MotoServer,
    audit_ids,
    aws_env,  # noqa: F401
    make_config,
    now_ms,
    read_until,
    seed_cluster,
)

STREAM = "kube-apiserver-audit-00112233445566778899aabbccddeeff"


def _seed(moto: MotoServer, cluster: str, first: int, count: int) -> None:
    now = now_ms() - 5_000
    seed_cluster(moto.url, cluster, STREAM, [(i, now) for i in range(first, first + count)])


def _steal(leases: LeaseTable, unit: str) -> bool:
    lease = leases.get(unit)
    assert lease is not None
    try:
        leases.take(lease, "thief")
    except LeaseLost:  # renewed meanwhile: try again
        return False
    return True


def test_events_stay_queued_while_the_lease_is_unsure_then_flow_again(moto: MotoServer) -> None:
    table = new_table(moto.url)
    with FaultProxy(moto.url, Faults(targets=())) as proxy:
        config = make_config(
            moto.url, coordination_table=table, coordination_endpoint_url=proxy.url, lease_duration=3
        )
        _seed(moto, "unsure", 0, 50)
        source = open_cloudwatch("unsure", config, tuning=FAST)
        try:
            assert sorted(audit_ids(read_until(source, 50, 20))) == sorted(f"a-{i}" for i in range(50))
            proxy.faults.dynamodb_cut = True  # renewals fail: delivery stops lease_duration - margin later
            time.sleep(2.5)
            _seed(moto, "unsure", 50, 30)
            assert wait_for(lambda: source.metrics()["queue_depth"] == 30, 10)
            held_back, _ = source.next_batch(500, 0.5)
            assert held_back == []  # queued, not delivered, not dropped
            proxy.faults.dynamodb_cut = False  # renewed before anyone could take the lease
            got = audit_ids(read_until(source, 30, 10))
            assert sorted(got) == sorted(f"a-{i}" for i in range(50, 80))
            assert source.metrics()["lease_losses"] == 0 and source.metrics()["units_held"] == 1
        finally:
            source.close()


def test_rejected_checkpoint_drops_the_unit_and_an_idle_replica_times_out(moto: MotoServer) -> None:
    table = new_table(moto.url)
    _seed(moto, "stolen", 0, 40)
    config = make_config(
        moto.url, coordination_table=table, coordination_endpoint_url=moto.url, lease_duration=3
    )
    source = open_cloudwatch("stolen", config, tuning=FAST)
    try:
        assert len(read_until(source, 40, 20)) == 40
        _seed(moto, "stolen", 40, 10)
        assert wait_for(lambda: source.metrics()["queue_depth"] > 0, 10)
        batch, _ = source.next_batch(5, 0.5)
        assert len(batch) == 5
        # Another replica takes the lease behind this one's back (as after a long pause here).
        leases = LeaseTable(dynamodb(moto.url), table)
        (unit,) = source.units()
        assert wait_for(lambda: _steal(leases, unit), 5)
        batch, eof = source.next_batch(500, 0.5)  # commits the 5: rejected, the unit is dropped at once
        assert batch == [] and not eof
        assert source.units() == [] and source.metrics()["queue_depth"] == 0
        assert source.metrics()["checkpoint_writes_rejected"] == 1
        for _ in range(5):  # holding nothing: timeouts, never EOF
            batch, eof = source.next_batch(500, 0.1)
            assert batch == [] and not eof
    finally:
        source.close()
