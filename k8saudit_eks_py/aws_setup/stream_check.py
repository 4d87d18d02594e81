"""`check kinesis://STREAM`: the calls stream mode makes, each mapped to ✓/✗ with its fix.

Region and credentials as for a cluster, then: the stream exists and is ACTIVE (DescribeStreamSummary),
the reader's permissions (ListShards, GetShardIterator, GetRecords), a subscription filter into the stream
on each cluster's log group (optional: the reader itself does not need logs permissions), and subscription
records arriving in the last window.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions

from k8saudit_eks_py.aws_setup.account_check import check_credentials, check_region
from k8saudit_eks_py.aws_setup.aws_errors import DENIED, error_code, error_message
from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, SKIP, WARN, CheckContext, CheckResult, Options
from k8saudit_eks_py.aws_setup.iam_policies import reader_policy
from k8saudit_eks_py.aws_setup.lease_table_check import check_lease_table

__all__ = ["StreamOptions", "run_stream_checks"]

_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclass(frozen=True, slots=True)
class StreamOptions:
    stream: str  # name or ARN
    clusters: tuple[str, ...] = ()
    region: str = ""
    profile: str = ""
    endpoint_url: str = ""
    window_seconds: int = 3600
    max_calls: int = 20  # GetRecords calls at most while looking for records
    coordination_table: str = ""  # replicas: the lease table is checked too (exists, key schema, IAM)
    coordination_endpoint_url: str = ""


class _StreamContext(CheckContext):
    def client(self, service: str) -> Any:
        if service in ("kinesis", "logs") and self.options.endpoint_url:
            return self.session.client(service, endpoint_url=self.options.endpoint_url)
        return super().client(service)


def _stream_arg(stream: str) -> dict[str, str]:
    return {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}


def run_stream_checks(
    o: StreamOptions,
    session_factory: Callable[..., Any] = boto3.Session,
    clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    ctx = _StreamContext(
        Options(
            cluster="",
            region=o.region,
            profile=o.profile,
            endpoint_url=o.endpoint_url,
            coordination_table=o.coordination_table,
            coordination_endpoint_url=o.coordination_endpoint_url,
        )
    )
    if not check_region(ctx, session_factory) or not check_credentials(ctx):
        return ctx.results
    name = o.stream.rsplit("/", 1)[-1]
    policy = reader_policy(ctx.region, name, ctx.account or "*")
    clusters = ",".join(o.clusters) or "CLUSTER"
    setup = f"k8saudit-eks-py setup-stream {clusters} --stream {name} --region {ctx.region}"
    kinesis = ctx.client("kinesis")
    title = f"stream {name} active"
    try:
        summary = kinesis.describe_stream_summary(**_stream_arg(o.stream))["StreamDescriptionSummary"]
    except _ERRORS as exc:
        code = error_code(exc)
        if code in DENIED:
            ctx.add(
                title,
                FAIL,
                error_message(exc),
                "attach this policy to the identity Falco runs as:\n" + policy,
            )
        elif code == "ResourceNotFoundException":
            ctx.add(title, FAIL, f"not found in {ctx.region}", f"create it with:\n{setup}")
        else:
            ctx.add(title, FAIL, error_message(exc), "check network access to Kinesis")
        return ctx.results
    status, arn = summary.get("StreamStatus"), summary.get("StreamARN", "")
    ctx.add(
        title,
        PASS if status in ("ACTIVE", "UPDATING") else FAIL,
        f"{status}, {summary.get('OpenShardCount')} shards",
    )
    for cluster in o.clusters:
        _check_subscription(ctx, cluster, arn, setup)
    _check_records(ctx, o, kinesis, policy, clock)
    if o.coordination_table:
        check_lease_table(ctx)
    return ctx.results


def _check_subscription(ctx: CheckContext, cluster: str, stream_arn: str, setup: str) -> None:
    group = f"/aws/eks/{cluster}/cluster"
    title = f"subscription {group} → stream"
    try:
        filters = ctx.client("logs").describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    except _ERRORS as exc:
        if error_code(exc) in DENIED:
            ctx.add(title, WARN, "not checked: logs:DescribeSubscriptionFilters is not allowed (optional)")
        elif error_code(exc) == "ResourceNotFoundException":
            ctx.add(title, FAIL, f"log group {group} not found", "enable audit logging on the cluster first")
        else:
            ctx.add(title, WARN, f"not checked: {error_message(exc)}")
        return
    if any(f.get("destinationArn") == stream_arn for f in filters):
        ctx.add(title, PASS)
    else:
        ctx.add(title, FAIL, "no subscription filter into this stream", f"create it with:\n{setup}")


def _check_records(
    ctx: CheckContext, o: StreamOptions, kinesis: Any, policy: str, clock: Callable[[], float]
) -> None:
    recent = f"subscription records arriving (last {o.window_seconds // 60} min)"
    fix = "attach this policy to the identity Falco runs as:\n" + policy
    try:
        shards = kinesis.list_shards(**_stream_arg(o.stream))["Shards"]
    except _ERRORS as exc:
        ctx.add("IAM kinesis:ListShards", FAIL, error_message(exc), fix)
        ctx.add(recent, SKIP, "needs kinesis:ListShards")
        return
    ctx.add("IAM kinesis:ListShards", PASS, f"{len(shards)} shards")
    found, calls = 0, 0
    since = clock() - o.window_seconds
    try:
        for shard in shards:
            iterator = kinesis.get_shard_iterator(
                **_stream_arg(o.stream),
                ShardId=shard["ShardId"],
                ShardIteratorType="AT_TIMESTAMP",
                Timestamp=since,
            )["ShardIterator"]
            while iterator and calls < o.max_calls and not found:
                page = kinesis.get_records(ShardIterator=iterator, Limit=100)
                calls += 1
                for record in page.get("Records", []):
                    try:
                        found += b'"DATA_MESSAGE"' in gzip.decompress(record["Data"])
                    except (OSError, EOFError):
                        continue
                if not page.get("Records") and not page.get("MillisBehindLatest"):
                    break
                iterator = page.get("NextShardIterator")
    except _ERRORS as exc:
        ctx.add("IAM kinesis:GetShardIterator, kinesis:GetRecords", FAIL, error_message(exc), fix)
        ctx.add(recent, SKIP, "needs kinesis:GetRecords")
        return
    ctx.add("IAM kinesis:GetShardIterator, kinesis:GetRecords", PASS, "allowed")
    if found:
        ctx.add(recent, PASS, "subscription records found")
    else:
        ctx.add(
            recent,
            FAIL,
            "no subscription record in the stream",
            "check the subscription filters (above) and that audit logging is enabled; records arrive "
            "seconds after CloudWatch Logs ingests the events",
        )
