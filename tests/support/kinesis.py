"""Stream mode helpers: a Kinesis stream on the moto server, subscription filters into it, and records in
the real CloudWatch Logs subscription format (gzip JSON, eventIds as digit strings, several log events per
record) put by the tests themselves."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterable
from typing import Any

import boto3
import orjson

from k8saudit_eks_py.sources.kinesis import StreamTuning
from k8saudit_eks_py.sources.kinesis.shard_reader import ReaderPacing
from tests.support.moto_server import REGION, audit_event

# Small backoffs and frequent polls: scenarios stay fast and still go through every code path.
FAST_STREAM = StreamTuning(
    backoff_min_s=0.02,
    backoff_max_s=0.3,
    connect_timeout_s=2.0,
    read_timeout_s=5.0,
    pacing=ReaderPacing(min_interval_s=0.02, idle_s=0.1),
    list_every_s=1.0,
    preflight_attempts=2,
    close_timeout_s=8.0,
)

__all__ = [
    "FAST_STREAM",
    "Traffic",
    "client",
    "create_stream",
    "event_id",
    "put_real_records",
    "record_data",
    "subscribe",
]


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_stream(url: str, name: str, shards: int = 1) -> str:
    k = client("kinesis", url)
    k.create_stream(StreamName=name, ShardCount=shards)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return str(k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])


def subscribe(url: str, log_group: str, stream_arn: str, name: str = "falco") -> None:
    """A subscription filter delivering the log group into the stream (moto: ids are small integers)."""
    iam = client("iam", url)
    try:
        role = iam.create_role(RoleName="cwl-to-kinesis", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="cwl-to-kinesis")["Role"]["Arn"]
    client("logs", url).put_subscription_filter(
        logGroupName=log_group,
        filterName=name,
        filterPattern="",
        destinationArn=stream_arn,
        roleArn=role,
    )


def event_id(n: int) -> str:
    """A realistic eventId: 56 digits (CloudWatch's form)."""
    return f"{37000000000000000000000000000000000000000000000000000000 + n:056d}"


def record_data(
    log_group: str,
    events: Iterable[tuple[str, int, str]],
    *,
    stream: str = "kube-apiserver-audit-0123456789abcdef",
    message_type: str = "DATA_MESSAGE",
    owner: str = "123456789012",
) -> bytes:
    """One subscription record's Data: gzip of the JSON message, events as (id, timestamp ms, message)."""
    doc = {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": stream,
        "subscriptionFilters": ["falco"],
        "logEvents": [{"id": i, "timestamp": ts, "message": m} for i, ts, m in events],
    }
    return gzip.compress(orjson.dumps(doc))


def put_real_records(
    url: str, stream: str, cluster: str, first: int, count: int, per_record: int, ts_ms: int | None = None
) -> None:
    """count audit events `a-<n>` of `cluster`, per_record log events per record, with real eventIds."""
    k = client("kinesis", url)
    ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
    group = f"/aws/eks/{cluster}/cluster"
    batch: list[dict[str, Any]] = []
    for start in range(first, first + count, per_record):
        ns = range(start, min(start + per_record, first + count))
        data = record_data(group, [(event_id(n), ts, audit_event(n, ts)) for n in ns])
        batch.append({"Data": data, "PartitionKey": f"{cluster}-{start}"})
        if len(batch) == 100:
            k.put_records(StreamName=stream, Records=batch)
            batch = []
    if batch:
        k.put_records(StreamName=stream, Records=batch)


def open_shards(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    """The shards of `stream` that take records (not closed by a split or merge)."""
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def put_to_each_shard(kinesis: Any, stream: str, cluster: str, first: int) -> dict[str, str]:
    """One record into every open shard (its first hash key as ExplicitHashKey), one audit event `a-<n>`
    each from n = `first`: shard id → the event's id."""
    ts = int(time.time() * 1000)
    put: dict[str, str] = {}
    for n, shard in enumerate(open_shards(kinesis, stream), start=first):
        data = record_data(f"/aws/eks/{cluster}/cluster", [(event_id(n), ts, audit_event(n, ts))])
        answer = kinesis.put_record(
            StreamName=stream,
            Data=data,
            PartitionKey=f"mark-{n}",
            ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"],
        )
        put[answer["ShardId"]] = f"a-{n}"
    return put


class Traffic:
    """Puts `a-<n>` events (5 per record, spread over the shards) from a thread until stopped."""

    def __init__(self, url: str, stream: str, per_round: int = 20, every_s: float = 0.1) -> None:
        self.sent = 0
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                put_real_records(url, stream, "prod", self.sent, per_round, 5)
                self.sent += per_round
                self._stop.wait(every_s)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

        self._url, self._stream = url, stream

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.sent

    def mark(self) -> set[str]:
        """After stop(): one more event into every open shard (counted in `sent`); their ids."""
        kinesis = client("kinesis", self._url)
        ids = set(put_to_each_shard(kinesis, self._stream, "prod", self.sent).values())
        self.sent += len(ids)
        return ids
