"""Stream mode across accounts: records of a cross-account subscription carry `owner`, the log group's
account. Clusters of other accounts are shown as ACCOUNT/NAME (two `prod` stay apart), the stream's own
account's by their name, duplicate suppression keeps the accounts apart, and stream_clusters takes both
forms. No member role is needed: the reader only reads the stream."""

from __future__ import annotations

import time
from typing import Any

import orjson

from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.kinesis import KinesisSource, open_kinesis
from tests.support.accounts import ACCOUNTS
from tests.support.kinesis import FAST_STREAM, client, create_stream, event_id, record_data
from tests.support.moto_server import MotoServer, assert_exactly, audit_event, aws_env, read_until  # noqa: F401

A, B, _ = ACCOUNTS
HOME = "123456789012"  # moto's default account: the stream's (the security account)


def _open(url: str, stream: str, **extra: Any) -> KinesisSource:
    values = {"kinesis_endpoint_url": url, "region": "us-east-1", "shift": 600, **extra}
    return open_kinesis(stream, parse_config(orjson.dumps(values).decode()), tuning=FAST_STREAM)


def _put(url: str, stream: str) -> dict[str, set[str]]:
    """prod in A and in B (the same eventIds: each group numbers its own), home in the stream's account."""
    now = int(time.time() * 1000)
    sent: dict[str, set[str]] = {}
    records = []
    for owner, cluster, first in ((A, "prod", 0), (B, "prod", 1000), (HOME, "home", 2000)):
        events = [(event_id(i), now + i, audit_event(first + i, now + i)) for i in range(50)]
        data = record_data(f"/aws/eks/{cluster}/cluster", events, owner=owner)
        records.append({"Data": data, "PartitionKey": owner})
        sent[f"{owner}/{cluster}"] = {f"a-{first + i}" for i in range(50)}
    client("kinesis", url).put_records(StreamName=stream, Records=records)
    return sent


def _read(source: KinesisSource, want: int) -> tuple[list[str], dict[str, str | None]]:
    got = read_until(source, want, 30, settle=1.0)
    ids = [str(orjson.loads(p)["auditID"]) for _, p in got]
    return ids, {i: source.cluster_for(i) for i in ids}


def test_clusters_of_other_accounts_are_named_with_their_account(moto: MotoServer) -> None:
    create_stream(moto.url, "accounts", 1)
    sent = _put(moto.url, "accounts")
    source = _open(moto.url, "accounts")
    try:
        ids, names = _read(source, 150)
    finally:
        source.close()
    assert_exactly(ids, set().union(*sent.values()))  # the same eventIds in A and B: both delivered
    assert {names[i] for i in sent[f"{A}/prod"]} == {f"{A}/prod"}
    assert {names[i] for i in sent[f"{B}/prod"]} == {f"{B}/prod"}
    assert {names[i] for i in sent[f"{HOME}/home"]} == {"home"}


def test_stream_clusters_accepts_account_qualified_names(moto: MotoServer) -> None:
    create_stream(moto.url, "accounts-filtered", 1)
    sent = _put(moto.url, "accounts-filtered")
    source = _open(moto.url, "accounts-filtered", stream_clusters=f"{A}/prod,home")
    try:
        ids, _ = _read(source, 100)
    finally:
        source.close()
    assert_exactly(ids, sent[f"{A}/prod"] | sent[f"{HOME}/home"])
