"""Stream mode with several replicas in one process: shard leases on moto's DynamoDB beside its Kinesis.

Balanced shards and exactly-once delivery across replicas, a clean close handing the shards over at once,
a replica cut off from DynamoDB stopping delivery before its lease can expire,
a rejected checkpoint dropping the shard, and a split while two replicas read (children after parents,
even across replicas). The kill -9 of a replica process is in test_stream_replicas_host.py."""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from k8saudit_eks_py import metrics
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.kinesis import KinesisSource, open_kinesis
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.kinesis import FAST_STREAM, Traffic, client, create_stream, event_id, record_data
from tests.support.leases import dynamodb, new_table, owners, wait_for
from tests.support.moto_server import MotoServer, audit_event, audit_ids, aws_env  # noqa: F401
from tests.support.resharding import aws_resharding_moto

LEASE_S = 3


def _replica(url: str, stream: str, table: str, name: str) -> KinesisSource:
    return _replica_with(url, stream, table, name)


class Driver:
    """Falco's side for several replicas: next_batch on each in turn, recording who delivered what."""

    def __init__(self, replicas: dict[str, KinesisSource]) -> None:
        self.replicas = replicas
        self.got: list[tuple[str, str]] = []  # (replica, audit id) in delivery order

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name, source in list(self.replicas.items()):
                batch, eof = source.next_batch(100, 0.02)
                assert not eof, f"{name} answered EOF"
                self.got.extend((name, i) for i in audit_ids(batch))

    def until(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.spin(0.2)
            if predicate():
                return True
        return False

    def ids(self, replica: str | None = None) -> list[str]:
        return [i for name, i in self.got if replica is None or name == replica]


@pytest.fixture
def opened() -> Iterator[list[KinesisSource]]:
    sources: list[KinesisSource] = []
    yield sources
    for s in sources:
        s.close()


def test_two_replicas_share_the_shards_deliver_once_and_a_clean_close_hands_over(
    moto: MotoServer, opened: list[KinesisSource]
) -> None:
    create_stream(moto.url, "teamwide", 4)
    table = new_table(moto.url)
    traffic = Traffic(moto.url, "teamwide")
    a, b = _replica(moto.url, "teamwide", table, "ra"), _replica(moto.url, "teamwide", table, "rb")
    opened.extend([a, b])
    drive = Driver({"ra": a, "rb": b})

    def balanced() -> bool:
        return [s.metrics()[metrics.SHARDS_HELD] for s in (a, b)] == [2, 2]

    assert drive.until(balanced, 20), [s.metrics()[metrics.SHARDS_HELD] for s in (a, b)]
    drive.spin(2.0)
    m = b.metrics()
    assert m[metrics.UNITS_HELD] == 2 and m[metrics.CALLS_DYNAMODB] > 0
    assert m[metrics.API_CALLS] > m[metrics.CALLS_DYNAMODB] + m[metrics.CALLS_GET_RECORDS] - 1
    assert m[metrics.CHECKPOINT_WRITES] > 0

    # A clean close (hot reload) commits and frees rb's leases: ra takes them without waiting for expiry.
    closed_at = time.monotonic()
    b.close()
    del drive.replicas["rb"]
    assert drive.until(lambda: a.metrics()[metrics.SHARDS_HELD] == 4, LEASE_S)
    assert time.monotonic() - closed_at < LEASE_S - 0.5
    drive.spin(1.0)
    total = traffic.stop()
    assert drive.until(lambda: len(set(drive.ids())) >= total, 20)
    drive.spin(1.0)
    seen = Counter(drive.ids())
    assert set(seen) == {f"a-{i}" for i in range(total)}
    assert [k for k, v in seen.items() if v > 1] == []  # no kill: not a single repeat
    assert set(owners(moto.url, table).values()) == {"ra"}


def test_a_rejected_checkpoint_drops_the_shard_at_once_and_the_replica_waits_without_eof(
    moto: MotoServer, opened: list[KinesisSource], capsys: pytest.CaptureFixture[str]
) -> None:
    create_stream(moto.url, "stolen", 1)
    table = new_table(moto.url)
    traffic = Traffic(moto.url, "stolen", per_round=10, every_s=0.05)
    source = _replica(moto.url, "stolen", table, "victim")
    opened.append(source)
    drive = Driver({"victim": source})
    try:
        assert drive.until(lambda: len(drive.ids()) > 50, 15)
        time.sleep(0.5)  # Falco busy: events queue up
        batch, _ = source.next_batch(10, 1.0)  # its position is committed at the next call
        drive.got.extend(("victim", i) for i in audit_ids(batch))
        # Another replica takes the lease (as after an expiry this one did not notice): the table moves on.
        unit = next(iter(owners(moto.url, table)))
        dynamodb(moto.url).update_item(
            TableName=table,
            Key={"unit": {"S": unit}},
            UpdateExpression="SET #o = :o, lease_counter = lease_counter + :one",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": "intruder"}, ":one": {"N": "1"}},
        )
        batch, eof = source.next_batch(100, 0.2)  # the commit is rejected: the shard is dropped at once
        assert (batch, eof) == ([], False)
        m = source.metrics()
        assert m[metrics.SHARDS_HELD] == 0 and m[metrics.QUEUE_DEPTH] == 0
        assert m[metrics.CHECKPOINT_WRITES_REJECTED] == 1 and m[metrics.LEASE_LOSSES] == 1
        dropped = re.search(
            r"stopped reading shard \S+ \((\d+) queued events dropped\)", capsys.readouterr().err
        )
        assert dropped and int(dropped.group(1)) > 0
        delivered = len(drive.got)
        drive.spin(1.0)  # no shard: timeouts, never EOF (Driver asserts it), nothing delivered
        assert len(drive.got) == delivered
        # The intruder never renews: its lease expires and this replica takes the shard back, re-reading
        # from its last checkpoint, the dropped events included (not mistaken for duplicates).
        assert drive.until(lambda: source.metrics()[metrics.SHARDS_HELD] == 1, 3 * LEASE_S)
    finally:
        total = traffic.stop()
    assert drive.until(lambda: len(set(drive.ids())) >= total, 15), (total, len(set(drive.ids())))
    assert set(drive.ids()) == {f"a-{i}" for i in range(total)}


def test_split_while_two_replicas_read_children_after_parents_once_in_order() -> None:
    tuning_free = dataclasses.replace(FAST_STREAM, dedup_window=1)  # no help from eventId dedup here
    with aws_resharding_moto() as url:
        create_stream(url, "split2", 2)
        table = new_table(url)
        k = client("kinesis", url)
        parent = k.list_shards(StreamName="split2")["Shards"][0]
        low_key = parent["HashKeyRange"]["StartingHashKey"]  # every event goes to this lineage

        def put(first: int, count: int) -> None:
            ts = int(time.time() * 1000)
            for start in range(first, first + count, 5):
                events = [(event_id(n), ts, audit_event(n, ts)) for n in range(start, start + 5)]
                data = record_data("/aws/eks/prod/cluster", events)
                k.put_record(StreamName="split2", Data=data, PartitionKey="k", ExplicitHashKey=low_key)

        replicas = {}
        for name in ("ra", "rb"):
            replicas[name] = _replica_with(url, "split2", table, name, tuning=tuning_free)
        drive = Driver(replicas)
        try:
            put(0, 200)
            assert drive.until(lambda: len(drive.ids()) >= 200, 20)
            k.split_shard(
                StreamName="split2",
                ShardToSplit=parent["ShardId"],
                NewStartingHashKey=str(int(low_key) + 2**126),
            )
            put(200, 200)  # into the child holding low_key
            assert drive.until(lambda: len(drive.ids()) >= 400, 30)

            def held() -> list[float]:
                return sorted(s.metrics()[metrics.SHARDS_HELD] for s in replicas.values())

            # The closed parent is given up; its two children and the other shard are shared.
            assert drive.until(lambda: held() == [1, 2], 15), held()
            drive.spin(0.5)
            reshards = sum(s.metrics()[metrics.RESHARDS] for s in replicas.values())
            table_owners = owners(url, table)
        finally:
            for s in replicas.values():
                s.close()
    # Across both replicas, in the order Falco received them: every event once, in the order put.
    assert drive.ids() == [f"a-{i}" for i in range(400)]
    assert reshards == 1
    assert len(table_owners) == 4


def test_a_replica_cut_off_from_dynamodb_stops_delivering_before_expiry_and_loses_nothing(
    moto: MotoServer, opened: list[KinesisSource]
) -> None:
    create_stream(moto.url, "cutoff", 2)
    table = new_table(moto.url)
    traffic = Traffic(moto.url, "cutoff", per_round=10, every_s=0.1)
    with FaultProxy(moto.url) as proxy:
        values = {
            "kinesis_endpoint_url": moto.url,
            "coordination_endpoint_url": proxy.url,
            "coordination_table": table,
            "lease_duration": LEASE_S,
            "replica_id": "cut",
            "region": "us-east-1",
            "shift": 600,
        }
        source = open_kinesis("cutoff", parse_config(orjson.dumps(values).decode()), tuning=FAST_STREAM)
        opened.append(source)
        drive = Driver({"cut": source})
        try:
            assert drive.until(
                lambda: source.metrics()[metrics.SHARDS_HELD] == 2 and len(drive.ids()) > 50, 15
            )
            proxy.faults.dynamodb_cut = True
            cut_at = time.monotonic()
            timeline: list[tuple[float, int]] = []
            while time.monotonic() - cut_at < LEASE_S - 0.3:  # until just before the lease could expire
                drive.spin(0.1)
                timeline.append((time.monotonic() - cut_at, len(drive.got)))
            # Deliveries stop lease_duration - margin (2 s) after the last renewal, sent before the cut.
            stopped = [n for t, n in timeline if t >= LEASE_S - 1.0]
            assert len(set(stopped)) == 1, timeline
            proxy.faults.dynamodb_cut = False
        finally:
            total = traffic.stop()
        # Renewals succeed again (nobody else took the leases): the queued events follow, none lost.
        assert drive.until(lambda: len(set(drive.ids())) >= total, 20)
        drive.spin(0.5)
    assert sorted(drive.ids()) == sorted(f"a-{i}" for i in range(total))  # once each


def test_throttled_failing_and_lost_dynamodb_answers_never_stop_two_replicas(
    moto: MotoServer, opened: list[KinesisSource]
) -> None:
    create_stream(moto.url, "bumpy", 2)
    table = new_table(moto.url)
    traffic = Traffic(moto.url, "bumpy", per_round=10, every_s=0.1)
    faults = Faults(dynamodb_throttle=0.15, dynamodb_server_error=0.1, dynamodb_lose_answer=0.05, targets=())
    with FaultProxy(moto.url, faults) as proxy:
        replicas = {}
        for name in ("ra", "rb"):
            values = {
                "kinesis_endpoint_url": moto.url,
                "coordination_endpoint_url": proxy.url,
                "coordination_table": table,
                "lease_duration": LEASE_S,
                "replica_id": name,
                "region": "us-east-1",
                "shift": 600,
            }
            replicas[name] = open_kinesis(
                "bumpy", parse_config(orjson.dumps(values).decode()), tuning=FAST_STREAM
            )
            opened.append(replicas[name])
        drive = Driver(replicas)  # asserts that no next_batch answers EOF
        try:
            drive.spin(8.0)
        finally:
            total = traffic.stop()
        assert drive.until(lambda: len(set(drive.ids())) >= total, 20)
        m = {name: s.metrics() for name, s in replicas.items()}
    injected = proxy.stats.injected
    assert injected.get("dynamodb_lost_answer", 0) > 0 and len(injected) >= 3, injected
    assert set(drive.ids()) == {f"a-{i}" for i in range(total)}  # 0 lost
    assert all(v[metrics.CALLS_DYNAMODB] > 0 for v in m.values())


def test_shards_handed_over_before_any_checkpoint_are_read_from_their_recorded_origin(
    moto: MotoServer, opened: list[KinesisSource]
) -> None:
    """shift 0: the later replicas' own now - shift is after the records put while only the first one
    held the shards; they start from the origin the first take recorded instead."""
    create_stream(moto.url, "origins", 4)
    table = new_table(moto.url)

    def replica(name: str) -> KinesisSource:
        source = _replica_with(moto.url, "origins", table, name, shift=0)
        opened.append(source)
        return source

    first = replica("r0")
    assert wait_for(lambda: sorted(owners(moto.url, table).values()) == ["r0"] * 4, 20)
    traffic = Traffic(moto.url, "origins")
    assert wait_for(lambda: traffic.sent >= 200, 20)  # r0's Falco asks for nothing: no checkpoint
    later = {"r1": replica("r1"), "r2": replica("r2")}
    drive = Driver(later)
    assert drive.until(lambda: Counter(owners(moto.url, table).values())["r0"] <= 2, 30)
    drive.replicas["r0"] = first
    drive.spin(1.0)
    total = traffic.stop()
    assert drive.until(lambda: len(set(drive.ids())) >= total, 30), total - len(set(drive.ids()))
    drive.spin(1.0)
    seen = Counter(drive.ids())
    assert set(seen) == {f"a-{i}" for i in range(total)}
    assert [k for k, v in seen.items() if v > 1] == []


def _replica_with(
    url: str, stream: str, table: str, name: str, tuning: Any = FAST_STREAM, **overrides: Any
) -> KinesisSource:
    values = {
        "kinesis_endpoint_url": url,
        "coordination_endpoint_url": url,
        "coordination_table": table,
        "lease_duration": LEASE_S,
        "replica_id": name,
        "region": "us-east-1",
        "shift": 600,
        **overrides,
    }
    return open_kinesis(stream, parse_config(orjson.dumps(values).decode()), tuning=tuning)
