"""`setup-stream` and `check kinesis://` as a user runs them, against a local AWS (moto: sts, logs, iam,
kinesis): dry run, creation, idempotence, the printed configuration, and errors in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.kinesis import client, put_real_records
from tests.support.leases import new_table
from tests.support.moto_server import MotoServer, audit_event, create_group, dummy_environ, put_events

ROOT = Path(__file__).resolve().parents[2]
AUDIT = "kube-apiserver-audit-0123456789abcdef"


def _cli(moto: MotoServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dummy_environ()
    env["AWS_ENDPOINT_URL_STS"] = moto.url  # check: STS through boto3's own endpoint setting
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def _setup(moto: MotoServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli(
        moto, "setup-stream", "alpha,beta", "--stream", "audit-stream", "--endpoint-url", moto.url, *extra
    )


def _filters(moto: MotoServer, cluster: str) -> list[dict[str, Any]]:
    groups = client("logs", moto.url).describe_subscription_filters(
        logGroupName=f"/aws/eks/{cluster}/cluster"
    )
    return list(groups["subscriptionFilters"])


def test_setup_stream_dry_run_then_create_then_nothing_to_do(moto: MotoServer) -> None:
    logs = client("logs", moto.url)
    for cluster in ("alpha", "beta"):
        create_group(logs, f"/aws/eks/{cluster}/cluster", [AUDIT])

    dry = _setup(moto, "--dry-run", "--shards", "2")
    assert dry.returncode == 0, dry.stderr
    assert "stream audit-stream: would create (2 shard(s))" in dry.stdout
    assert "subscription /aws/eks/alpha/cluster → audit-stream: would create" in dry.stdout
    assert client("kinesis", moto.url).list_streams()["StreamNames"] == []
    assert _filters(moto, "alpha") == []

    made = _setup(moto, "--shards", "2", '--filter-pattern=-"loopback"')
    assert made.returncode == 0, made.stderr
    assert "stream audit-stream: created (2 shard(s))" in made.stdout
    arn = client("kinesis", moto.url).describe_stream_summary(StreamName="audit-stream")[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    assert f"open_params: kinesis://{arn}" in made.stdout
    assert "stream_clusters: alpha,beta" in made.stdout
    assert '"kinesis:GetRecords"' in made.stdout  # the reader's policy
    role = client("iam", moto.url).get_role(RoleName="audit-stream-cwlogs-to-kinesis")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    policy = client("iam", moto.url).get_role_policy(RoleName=role["RoleName"], PolicyName="put-records")
    document = policy["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"][0]["Resource"] == arn
    assert document["Statement"][0]["Action"] == ["kinesis:PutRecord", "kinesis:PutRecords"]
    for cluster in ("alpha", "beta"):
        (f,) = _filters(moto, cluster)
        assert (f["destinationArn"], f["filterPattern"], f["roleArn"]) == (arn, '-"loopback"', role["Arn"])

    again = _setup(moto, "--shards", "2", '--filter-pattern=-"loopback"')
    assert again.returncode == 0, again.stderr
    assert "stream audit-stream: exists" in again.stdout
    assert "subscription /aws/eks/beta/cluster → audit-stream: exists" in again.stdout
    assert len(_filters(moto, "alpha")) == 1

    # check kinesis://: everything in place but no record yet, then records arriving.
    args = ("check", "kinesis://audit-stream", "--clusters", "alpha,beta", "--endpoint-url", moto.url)
    empty = _cli(moto, *args)
    assert empty.returncode == 1, empty.stdout
    assert "✓ stream audit-stream active" in empty.stdout
    assert "✓ subscription /aws/eks/alpha/cluster → stream" in empty.stdout
    assert "✗ subscription records arriving" in empty.stdout
    now = int(time.time() * 1000)
    put_events(logs, "/aws/eks/alpha/cluster", AUDIT, [(now, audit_event(1, now))])
    full = _cli(moto, *args)
    assert full.returncode == 0, full.stdout
    assert "✓ subscription records arriving" in full.stdout and "all checks passed" in full.stdout


def test_check_stream_missing_subscription_and_missing_stream_say_the_fix(moto: MotoServer) -> None:
    create_group(client("logs", moto.url), "/aws/eks/gamma/cluster", [AUDIT])
    client("kinesis", moto.url).create_stream(StreamName="lonely", ShardCount=1)
    result = _cli(moto, "check", "kinesis://lonely", "--clusters", "gamma", "--endpoint-url", moto.url)
    assert result.returncode == 1
    assert "✗ subscription /aws/eks/gamma/cluster → stream: no subscription filter" in result.stdout
    assert "k8saudit-eks-py setup-stream gamma --stream lonely --region us-east-1" in result.stdout
    missing = _cli(moto, "check", "kinesis://nowhere", "--endpoint-url", moto.url)
    assert missing.returncode == 1 and "✗ stream nowhere active: not found in us-east-1" in missing.stdout


def test_setup_stream_errors_are_one_line_without_traceback(moto: MotoServer) -> None:
    no_group = _cli(moto, "setup-stream", "ghost", "--stream", "s2", "--endpoint-url", moto.url)
    assert no_group.returncode == 1
    assert "log group /aws/eks/ghost/cluster not found" in no_group.stderr
    enable = 'aws eks update-cluster-config --name ghost --region us-east-1 --logging \'{"clusterLogging"'
    assert f"enable audit logging on cluster ghost first: {enable}" in no_group.stderr
    assert "Traceback" not in no_group.stderr
    bad = _cli(moto, "setup-stream", "bad name", "--stream", "s3", "--endpoint-url", moto.url)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not an EKS cluster name" in bad.stderr


def test_tail_reads_a_stream_through_the_plugin_library(moto: MotoServer) -> None:
    client("kinesis", moto.url).create_stream(StreamName="tailed", ShardCount=1)
    put_real_records(moto.url, "tailed", "prod", 0, 20, 4)
    args = ("tail", "kinesis://tailed", "--endpoint-url", moto.url, "--since", "10m", "--count", "20")
    result = _cli(moto, *args, "-o", "%ka.auditid %ka.cluster.name", "--progress-interval", "0")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:-1]) == sorted(f"a-{i} prod" for i in range(20))
    missing = _cli(moto, "tail", "kinesis://absent", "--endpoint-url", moto.url)
    assert missing.returncode == 1 and "Kinesis stream absent not found" in missing.stderr


def test_check_stream_with_replicas_verifies_the_coordination_table(moto: MotoServer) -> None:
    client("kinesis", moto.url).create_stream(StreamName="shared-stream", ShardCount=1)
    put_real_records(moto.url, "shared-stream", "alpha", 0, 5, 5)
    table = new_table(moto.url)
    args = ("check", "kinesis://shared-stream", "--endpoint-url", moto.url, "--coordination-endpoint-url")
    ok = _cli(moto, *args, moto.url, "--coordination-table", table)
    assert ok.returncode == 0, ok.stdout
    assert f"✓ coordination table {table}: exists, key schema ok" in ok.stdout.splitlines()
    missing = _cli(moto, *args, moto.url, "--coordination-table", "no-such-table")
    assert missing.returncode == 1, missing.stdout
    assert "✗ coordination table no-such-table: not found in us-east-1" in missing.stdout
    assert "k8saudit-eks-py setup-coordination --table no-such-table --region us-east-1" in missing.stdout
