"""`setup-archive` as a user runs it, against a local AWS (moto: sts, s3, iam, firehose, logs): --dry-run
names every call and changes nothing; a real run creates the path, a second one finds it; events put into
the clusters' log groups then reach S3 through the subscription and Firehose, and the plugin replays
them from s3://; mistakes get one line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.archive import open_archive
from tests.support.archive import s3_client
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

ROOT = Path(__file__).resolve().parents[2]
AUDIT = "kube-apiserver-audit-" + "ac" * 16
BUCKET = "audit-archive-test"


def _cli(moto: MotoServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "setup-archive", *args, "--endpoint-url", moto.url],
        capture_output=True,
        text=True,
        env=dummy_environ(),
        cwd=ROOT,
        timeout=120,
    )


def _groups(moto: MotoServer) -> None:
    logs = logs_client(moto.url)
    for cluster in ("alpha", "beta"):
        create_group(logs, f"/aws/eks/{cluster}/cluster", [AUDIT])


def test_dry_run_names_every_call_and_changes_nothing(moto: MotoServer) -> None:
    moto.reset()
    _groups(moto)
    proc = _cli(moto, "alpha,beta", "--bucket", BUCKET, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    planned = [line for line in lines if line.startswith("- ")]
    assert len(planned) == 6, proc.stdout  # bucket, 2 roles, delivery stream, 2 subscriptions
    text = proc.stdout
    for call in ("CreateBucket", "PutBucketLifecycleConfiguration", "CreateRole", "PutRolePolicy"):
        assert call in text, call
    assert "CreateDeliveryStream" in text and text.count("PutSubscriptionFilter") == 2
    assert f"open_params: s3://{BUCKET}/eks-audit/" in text
    assert BUCKET not in [b["Name"] for b in s3_client(moto.url).list_buckets().get("Buckets", [])]
    filters = logs_client(moto.url).describe_subscription_filters(logGroupName="/aws/eks/alpha/cluster")
    assert filters["subscriptionFilters"] == []


def test_created_path_delivers_events_that_the_plugin_replays(moto: MotoServer) -> None:
    moto.reset()
    _groups(moto)
    first = _cli(moto, "alpha,beta", "--bucket", BUCKET)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("✓ ") == 6 and "created" in first.stdout
    again = _cli(moto, "alpha,beta", "--bucket", BUCKET)
    assert again.returncode == 0, again.stderr
    assert "bucket audit-archive-test: exists" in again.stdout and again.stdout.count(": exists") == 4

    logs = logs_client(moto.url)
    now = int(time.time() * 1000)
    for cluster, first_n in (("alpha", 0), ("beta", 1000)):
        events = [(now + n, audit_event(n, now + n)) for n in range(first_n, first_n + 120)]
        put_events(logs, f"/aws/eks/{cluster}/cluster", AUDIT, events)
    keys = [o["Key"] for o in s3_client(moto.url).list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys and all(k.startswith("eks-audit/") for k in keys), keys

    config = parse_config(orjson.dumps({"s3_endpoint_url": moto.url, "region": "us-east-1"}).decode())
    source = open_archive(f"{BUCKET}/eks-audit/", config)
    try:
        got: list[tuple[int, bytes]] = []
        eof = False
        deadline = time.monotonic() + 60
        while not eof and time.monotonic() < deadline:
            batch, eof = source.next_batch(100, 0.5)
            got.extend(batch)
        assert eof
        ids = audit_ids(got)
        clusters = {
            str(orjson.loads(p)["auditID"]): source.cluster_for(str(orjson.loads(p)["auditID"]))
            for _, p in got
        }
    finally:
        source.close()
    expected = [f"a-{n}" for n in [*range(120), *range(1000, 1120)]]
    assert Counter(ids) == Counter(expected)
    assert {clusters[f"a-{n}"] for n in range(120)} == {"alpha"}  # from each record's logGroup
    assert {clusters[f"a-{n}"] for n in range(1000, 1120)} == {"beta"}


def test_mistakes_get_one_line(moto: MotoServer) -> None:
    moto.reset()
    missing = _cli(moto, "ghost", "--bucket", BUCKET)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: log group /aws/eks/ghost/cluster not found")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert BUCKET not in [b["Name"] for b in s3_client(moto.url).list_buckets().get("Buckets", [])]
    for args, message in (
        (["bad name!", "--bucket", BUCKET], "is not an EKS cluster name"),
        (["alpha", "--bucket", "Bad_Bucket"], "is not an S3 bucket name"),
        (["alpha", "--bucket", BUCKET, "--retention-days", "0"], "must be 1 or more"),
    ):
        proc = _cli(moto, *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
