"""Stream mode against a local Kinesis: subscription delivery, real-format records, batch boundaries inside a
record, restarts, resharding, bad records, faults, and open errors."""

from __future__ import annotations

import dataclasses
import gzip
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from k8saudit_eks_py import metrics
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources import open_source
from k8saudit_eks_py.sources.kinesis import KinesisSource, StreamTuning, open_kinesis
from k8saudit_eks_py.sources.kinesis.shard_reader import ReaderPacing
from tests.support.faultproxy import GET_RECORDS, FaultProxy, Faults
from tests.support.kinesis import (
    FAST_STREAM,
    client,
    create_stream,
    event_id,
    put_real_records,
    record_data,
    subscribe,
)
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    logs_client,
    put_events,
    read_until,
)
from tests.support.resharding import aws_resharding_moto

AUDIT = "kube-apiserver-audit-0123456789abcdef"


def _config(url: str, **extra: Any) -> Any:
    from k8saudit_eks_py.config import parse_config

    values = {"kinesis_endpoint_url": url, "region": "us-east-1", "shift": 600}
    values.update(extra)
    return parse_config(orjson.dumps(values).decode())


def _open(url: str, stream: str, **extra: Any) -> KinesisSource:
    return open_kinesis(stream, _config(url, **extra), tuning=FAST_STREAM)


def test_subscription_delivers_two_clusters_once_each_with_their_cluster(moto: MotoServer) -> None:
    arn = create_stream(moto.url, "e2e", 2)
    logs = logs_client(moto.url)
    for cluster in ("blue", "green"):
        group = f"/aws/eks/{cluster}/cluster"
        create_group(logs, group, [AUDIT, "authenticator-0123"])
        subscribe(moto.url, group, arn)
    source = _open(moto.url, "e2e")
    try:
        now = int(time.time() * 1000)
        put_events(
            logs, "/aws/eks/blue/cluster", AUDIT, [(now + i, audit_event(i, now + i)) for i in range(400)]
        )
        put_events(
            logs,
            "/aws/eks/green/cluster",
            AUDIT,
            [(now + i, audit_event(i, now + i)) for i in range(1000, 1300)],
        )
        # Other streams of the same log group reach the subscription too: they are not audit events.
        put_events(
            logs, "/aws/eks/blue/cluster", "authenticator-0123", [(now, "time=... msg=access granted")]
        )
        got = read_until(source, 700, 20, settle=1.0)
        ids = audit_ids(got)
        assert len(ids) == len(set(ids)) == 700
        assert all(source.cluster_for(f"a-{i}") == "blue" for i in range(400))
        assert all(source.cluster_for(f"a-{i}") == "green" for i in range(1000, 1300))
        m = source.metrics()
        assert m[metrics.MALFORMED] == 0 and m[metrics.SHARDS_HELD] == 2
        assert m[metrics.CALLS_GET_RECORDS] > 0 and m[metrics.CALLS_LIST_SHARDS] >= 1
    finally:
        source.close()


def test_stream_clusters_keeps_only_the_clusters_named(moto: MotoServer) -> None:
    create_stream(moto.url, "filtered", 1)
    put_real_records(moto.url, "filtered", "keep", 0, 50, 5)
    put_real_records(moto.url, "filtered", "drop", 100, 50, 5)
    source = _open(moto.url, "filtered", stream_clusters="keep")
    try:
        ids = audit_ids(read_until(source, 50, 15, settle=1.0))
        assert sorted(ids) == sorted(f"a-{i}" for i in range(50))
        assert source.default_cluster == "keep"
    finally:
        source.close()


def test_real_records_batches_ending_inside_a_record_resume_exactly(moto: MotoServer, tmp_path: Path) -> None:
    """7 log events per record, batches of 10: most batches end inside a record. Close and reopen (and
    a reopen that never got to process its last batch) lose nothing and repeat only that batch."""
    create_stream(moto.url, "inside", 1)
    put_real_records(moto.url, "inside", "prod", 0, 700, 7)
    extra = {"checkpoint_file": str(tmp_path / "cp.json")}
    got: list[str] = []
    for _round in range(4):
        source = _open(moto.url, "inside", **extra)
        try:
            for _ in range(6):
                batch, _ = source.next_batch(10, 5.0)
                got.extend(audit_ids(batch))
        finally:
            source.close()
    source = _open(moto.url, "inside", **extra)
    # A crash: the last batch handed out is never confirmed by a next_batch call.
    batch, _ = source.next_batch(10, 5.0)
    unconfirmed = audit_ids(batch)
    before = len(got)
    source.close(commit=False)
    source = _open(moto.url, "inside", **extra)
    try:
        got.extend(audit_ids(read_until(source, 700 - len(got), 15, settle=1.0)))
    finally:
        source.close()
    counts = Counter(got)
    assert set(counts) == {f"a-{i}" for i in range(700)}
    assert all(v == 1 for v in counts.values())
    assert unconfirmed and got[before : before + len(unconfirmed)] == unconfirmed  # delivered again


def test_subscription_duplicates_are_suppressed_by_event_id(moto: MotoServer) -> None:
    create_stream(moto.url, "dups", 2)
    k = client("kinesis", moto.url)
    ts = int(time.time() * 1000)
    data = record_data("/aws/eks/prod/cluster", [(event_id(i), ts, audit_event(i, ts)) for i in range(20)])
    for key in ("a", "b", "c"):  # the same record delivered three times, on any shard
        k.put_record(StreamName="dups", Data=data, PartitionKey=key)
    source = _open(moto.url, "dups")
    try:
        ids = audit_ids(read_until(source, 20, 10, settle=1.0))
        assert sorted(ids) == sorted(f"a-{i}" for i in range(20))
        assert source.metrics()[metrics.DUPLICATES_SUPPRESSED] == 40
    finally:
        source.close()


def test_bad_records_are_counted_and_the_rest_delivered(moto: MotoServer) -> None:
    create_stream(moto.url, "bad", 1)
    k = client("kinesis", moto.url)
    ts = int(time.time() * 1000)
    group = "/aws/eks/prod/cluster"
    big = audit_event(1, ts, pad=20_000)
    truncated = audit_event(2, ts, pad=5_000)[:3_000] + "[Truncated...]"
    control = record_data(group, [("", ts, "CWL CONTROL MESSAGE: Checking health of destination")])
    control = gzip.compress(gzip.decompress(control).replace(b"DATA_MESSAGE", b"CONTROL_MESSAGE"))
    records = [
        b"plain text, not gzip",
        gzip.compress(b"{not json"),
        control,
        record_data(
            group,
            [
                (event_id(0), ts, audit_event(0, ts)),
                (event_id(1), ts, big),
                (event_id(2), ts, truncated),
                (event_id(3), ts, "not an audit event"),
                (event_id(4), ts, audit_event(4, ts)),
            ],
        ),
    ]
    k.put_records(StreamName="bad", Records=[{"Data": d, "PartitionKey": "p"} for d in records])
    source = _open(moto.url, "bad", max_event_size=8192)
    try:
        got = read_until(source, 4, 10, settle=1.0)
        docs = {orjson.loads(p)["auditID"]: orjson.loads(p) for _, p in got}
        assert sorted(docs) == ["a-0", "a-1", "a-2", "a-4"]
        assert docs["a-1"]["annotations"]["k8saudit-eks-py/reason"] == "oversize"
        assert docs["a-2"]["annotations"]["k8saudit-eks-py/reason"] == "truncated"
        m = source.metrics()
        assert (m[metrics.MALFORMED], m[metrics.OVERSIZE], m[metrics.TRUNCATED_RECOVERED]) == (3, 1, 1)
        # The event time is the audit event's stageTimestamp, not the CloudWatch timestamp.
        assert got[0][0] == (ts * 1000 + 123) * 1000
    finally:
        source.close()


def _ordered_ids(url: str, stream: str, first: int, count: int) -> None:
    """`count` events, 5 per record, all with one partition key: a single ordered lineage of shards."""
    k = client("kinesis", url)
    ts = int(time.time() * 1000)
    for start in range(first, first + count, 5):
        data = record_data(
            "/aws/eks/prod/cluster", [(event_id(n), ts, audit_event(n, ts)) for n in range(start, start + 5)]
        )
        k.put_record(StreamName=stream, Data=data, PartitionKey="one-key")


def test_split_and_merge_mid_run_lose_nothing_repeat_nothing_keep_order(tmp_path: Path) -> None:
    tuning = dataclasses.replace(FAST_STREAM, dedup_window=1)  # no help from eventId dedup here
    with aws_resharding_moto() as url:
        create_stream(url, "reshard", 1)
        k = client("kinesis", url)
        _ordered_ids(url, "reshard", 0, 300)
        source = open_kinesis(
            "reshard", _config(url, checkpoint_file=str(tmp_path / "cp.json")), tuning=tuning
        )
        try:
            got = audit_ids(read_until(source, 100, 10))
            parent = k.list_shards(StreamName="reshard")["Shards"][0]
            k.split_shard(
                StreamName="reshard", ShardToSplit=parent["ShardId"], NewStartingHashKey=str(2**127)
            )
            _ordered_ids(url, "reshard", 300, 300)
            got += audit_ids(read_until(source, 600 - len(got), 20))
            children = [s for s in k.list_shards(StreamName="reshard")["Shards"] if s.get("ParentShardId")]
            assert len(children) == 2
            low, high = sorted(children, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
            k.merge_shards(
                StreamName="reshard", ShardToMerge=low["ShardId"], AdjacentShardToMerge=high["ShardId"]
            )
            _ordered_ids(url, "reshard", 600, 300)
            got += audit_ids(read_until(source, 900 - len(got), 20, settle=1.5))
            m = source.metrics()
        finally:
            source.close()
    assert got == [f"a-{i}" for i in range(900)]  # every event once, in the order put
    assert m[metrics.RESHARDS] == 3 and m[metrics.SHARDS_HELD] == 1


def test_throttling_resets_5xx_and_expired_iterators_lose_nothing(moto: MotoServer) -> None:
    create_stream(moto.url, "faulty", 2)
    put_real_records(moto.url, "faulty", "prod", 0, 3000, 10)
    faults = Faults(
        throttle=0.15, server_error=0.1, reset=0.1, expired_iterator=0.1, cut_200=0.05, targets=(GET_RECORDS,)
    )
    tuning = dataclasses.replace(
        FAST_STREAM, pacing=dataclasses.replace(FAST_STREAM.pacing, records_limit=10)
    )
    with FaultProxy(moto.url, faults) as proxy:
        source = open_kinesis("faulty", _config(proxy.url), tuning=tuning)
        try:
            ids = audit_ids(read_until(source, 3000, 60, settle=1.0))
            m = source.metrics()
        finally:
            source.close()
    assert sorted(ids) == sorted(f"a-{i}" for i in range(3000))
    assert m[metrics.THROTTLES] > 0 and m[metrics.ERRORS] > 0 and m[metrics.RETRIES] >= m[metrics.THROTTLES]
    injected = proxy.stats.injected
    assert injected.get("ProvisionedThroughputExceededException", 0) > 0 and injected.get("reset", 0) > 0
    assert injected.get("ExpiredIteratorException", 0) > 0


def test_get_records_stays_within_five_calls_per_second_per_shard(moto: MotoServer) -> None:
    create_stream(moto.url, "paced", 1)
    put_real_records(moto.url, "paced", "prod", 0, 2000, 2)  # 1000 records, read 50 per call
    tuning = StreamTuning(pacing=ReaderPacing(records_limit=50))  # the default pacing otherwise
    with FaultProxy(moto.url, Faults(targets=(GET_RECORDS,))) as proxy:
        source = open_kinesis("paced", _config(proxy.url, buffer_size=5000), tuning=tuning)
        try:
            got = read_until(source, 2000, 30)
        finally:
            source.close()
    assert sorted(audit_ids(got)) == sorted(f"a-{i}" for i in range(2000))
    assert len(proxy.stats.filter_times) >= 20  # GetRecords calls
    assert proxy.stats.max_per_second() <= 5


@pytest.mark.parametrize(
    ("stream", "faults", "needle"),
    [
        ("missing", Faults(), "not found in region us-east-1"),
        ("present", Faults(deny_targets=("Kinesis_20131202.DescribeStreamSummary",)), "kinesis:GetRecords"),
        ("bad name!", Faults(), "does not name a Kinesis stream"),
    ],
)
def test_open_errors_say_what_to_fix(moto: MotoServer, stream: str, faults: Faults, needle: str) -> None:
    if stream == "present":
        create_stream(moto.url, "present", 1)
    with FaultProxy(moto.url, faults) as proxy, pytest.raises(OpenError) as err:
        open_source(f"kinesis://{stream}", _config(proxy.url))
    assert needle in str(err.value)


def test_open_without_region_says_where_to_set_it(monkeypatch: pytest.MonkeyPatch, moto: MotoServer) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(OpenError, match="no AWS region"):
        open_source("kinesis://x", _config(moto.url, region=""))


def test_standard_endpoint_variable_and_stream_arn_work(
    monkeypatch: pytest.MonkeyPatch, moto: MotoServer
) -> None:
    arn = create_stream(moto.url, "by-env", 1)
    put_real_records(moto.url, "by-env", "prod", 0, 30, 3)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", moto.url)
    source = open_kinesis(arn, _config(""), tuning=FAST_STREAM)
    try:
        assert sorted(audit_ids(read_until(source, 30, 10))) == sorted(f"a-{i}" for i in range(30))
    finally:
        source.close()


def test_coordination_table_missing_fails_open_with_the_fix(moto: MotoServer) -> None:
    create_stream(moto.url, "solo", 1)
    config = _config(moto.url, coordination_table="absent-leases", coordination_endpoint_url=moto.url)
    with pytest.raises(OpenError, match="setup-coordination"):
        open_source("kinesis://solo", config)


@pytest.mark.parametrize(
    ("faults", "injected"),
    [
        (Faults(trimmed_sequences=True, targets=()), "InvalidArgumentException"),
        (Faults(stuck_sequences=True, targets=()), "stuck_page"),
    ],
    ids=["refused", "empty-pages"],
)
def test_checkpoint_past_retention_falls_back_to_trim_horizon_with_a_warning(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], faults: Faults, injected: str
) -> None:
    """Falco down longer than the stream's retention: Kinesis refuses the saved sequence number, or accepts
    it and answers empty pages a whole retention behind. The shard is read again from the oldest record
    kept, with a warning, instead of retrying forever."""
    stream = f"trimmed-{injected}"
    create_stream(moto.url, stream, 1)
    put_real_records(moto.url, stream, "prod", 0, 40, 4)
    checkpoint = str(tmp_path / "cp.json")
    source = _open(moto.url, stream, checkpoint_file=checkpoint)
    try:
        assert len(read_until(source, 40, 10)) == 40
    finally:
        source.close()
    put_real_records(moto.url, stream, "prod", 100, 20, 4)
    with FaultProxy(moto.url, faults) as proxy:
        source = _open(proxy.url, stream, checkpoint_file=checkpoint)
        try:
            ids = audit_ids(read_until(source, 60, 10, settle=0.5))
            m = source.metrics()
        finally:
            source.close()
    assert proxy.stats.injected.get(injected) == 1  # once, never again
    # Everything the stream still holds, from its oldest record (here nothing was really trimmed).
    assert sorted(ids) == sorted(f"a-{i}" for i in [*range(40), *range(100, 120)])
    assert m[metrics.ERRORS] == 1
    err = capsys.readouterr().err
    assert "past the stream's retention" in err and "TRIM_HORIZON" in err
    assert "events may have been lost while Falco was down longer than the retention" in err


def test_first_start_reads_from_now_minus_shift_and_reports_the_lag(moto: MotoServer) -> None:
    create_stream(moto.url, "shifted", 1)
    put_real_records(moto.url, "shifted", "prod", 0, 50, 5)  # before now - shift: not read
    time.sleep(2.5)
    source = _open(moto.url, "shifted", shift=1)
    try:
        put_real_records(moto.url, "shifted", "prod", 100, 50, 5)
        ids = audit_ids(read_until(source, 50, 10, settle=1.0))
        assert sorted(ids) == sorted(f"a-{i}" for i in range(100, 150))
    finally:
        source.close()
    # A backlog read 2 records per call: the reader knows how far behind the newest record it is.
    for first in (200, 400, 600):  # records of different ages
        put_real_records(moto.url, "shifted", "prod", first, 200, 5)
        time.sleep(0.3)
    tuning = dataclasses.replace(FAST_STREAM, pacing=dataclasses.replace(FAST_STREAM.pacing, records_limit=2))
    source = open_kinesis("shifted", _config(moto.url, buffer_size=10), tuning=tuning)
    try:
        behind = []
        for _ in range(40):
            source.next_batch(10, 0.2)
            behind.append(source.metrics()["millis_behind_latest"])
        assert max(behind) > 0
    finally:
        source.close()


def test_restart_between_a_split_and_the_children_continues_the_lineage(tmp_path: Path) -> None:
    """Closed after the parent finished but before the children were read, reopened much later than
    `shift`: the children start where their parent's reading started, not at the new now - shift."""
    with aws_resharding_moto() as url:
        create_stream(url, "lineage", 1)
        k = client("kinesis", url)
        _ordered_ids(url, "lineage", 0, 100)
        config = _config(url, checkpoint_file=str(tmp_path / "cp.json"))
        source = open_kinesis("lineage", config, tuning=FAST_STREAM)
        try:
            got = audit_ids(read_until(source, 100, 10))
            parent = k.list_shards(StreamName="lineage")["Shards"][0]["ShardId"]
            k.split_shard(StreamName="lineage", ShardToSplit=parent, NewStartingHashKey=str(2**127))
            deadline = time.monotonic() + 10
            while source.metrics()[metrics.RESHARDS] < 1 and time.monotonic() < deadline:
                got += audit_ids(source.next_batch(50, 0.1)[0])
        finally:
            source.close()
        _ordered_ids(url, "lineage", 100, 100)  # into a child while nobody reads
        time.sleep(2.5)
        source = open_kinesis("lineage", _config(url, checkpoint_file=str(tmp_path / "cp.json"), shift=1))
        try:
            got += audit_ids(read_until(source, 100, 15, settle=1.0))
        finally:
            source.close()
    assert got == [f"a-{i}" for i in range(200)]
