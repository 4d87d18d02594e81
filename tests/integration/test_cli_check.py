"""`k8saudit-eks-py check` against a real local AWS (moto server on 127.0.0.1: sts, eks, logs, iam)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.check_cli import (
    ENABLE,
    REGION,
    ROOT,
    check,
    client,
    iam_enforced,
    iam_user,
    make_cluster,
)
from tests.support.moto_server import MotoServer, dummy_environ


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    s = MotoServer()
    try:
        yield s
    finally:
        s.stop()


def test_all_checks_pass_on_a_healthy_cluster(server: MotoServer) -> None:
    make_cluster(server, "healthy")
    rc, out = check(server, "healthy")
    assert rc == 0, out
    assert out.splitlines() == [
        f"✓ AWS region: {REGION}",
        "✓ AWS credentials: arn:aws:sts::123456789012:user/moto (account 123456789012)",
        "✓ EKS audit logging enabled on cluster healthy",
        "✓ IAM logs:DescribeLogGroups: allowed",
        "✓ log group /aws/eks/healthy/cluster exists",
        "✓ IAM logs:DescribeLogStreams: allowed",
        "✓ IAM logs:FilterLogEvents: allowed",
        out.splitlines()[7],
        out.splitlines()[8],
        "all checks passed",
    ]
    assert out.splitlines()[7].startswith("✓ recent audit events (last 60 min): newest ")
    assert out.splitlines()[8].startswith("✓ ingestion delay (poll mode lookback): p99 ")
    assert out.splitlines()[8].endswith(" over 1 events; lookback 600s")


def test_audit_logging_off_and_no_audit_events(server: MotoServer) -> None:
    make_cluster(server, "quiet", audit=False)
    rc, out = check(server, "quiet")
    assert rc == 1
    assert "✗ EKS audit logging enabled on cluster quiet: the audit log type is disabled" in out
    assert ENABLE.format(name="quiet") in out
    assert "✗ recent audit events (last 60 min): no event in streams kube-apiserver-audit-*" in out


def test_old_events_only_are_not_recent(server: MotoServer) -> None:
    make_cluster(server, "stale", age_s=7200)
    rc, out = check(server, "stale")
    assert rc == 1
    assert "✗ recent audit events (last 60 min)" in out
    rc, out = check(server, "stale", "--window", "3h", "--lookback", "28800")
    assert rc == 0, out


def test_ingestion_delay_is_judged_against_lookback(server: MotoServer) -> None:
    # moto ingests at the put: an event put now with a timestamp 700 s old was ingested 700 s late.
    make_cluster(server, "late", age_s=700)
    rc, out = check(server, "late")
    assert rc == 1, out
    (row,) = [line for line in out.splitlines() if "ingestion delay" in line]
    assert row.startswith("✗ ingestion delay (poll mode lookback): p99 700.") and "max 700." in row, row
    assert row.endswith("lookback 600s: events ingested later than lookback are not delivered in poll mode")
    assert "    fix: set init_config lookback to 280" in out  # 4 x the delay seen
    rc, out = check(server, "late", "--lookback", "1000")
    assert rc == 0, out  # a warning: less than half of lookback is left
    assert "lookback 1000s: less than half of lookback is left" in out
    rc, out = check(server, "late", "--lookback", "1500")
    assert rc == 0 and "✓ ingestion delay (poll mode lookback)" in out, out


def test_missing_log_group(server: MotoServer) -> None:
    make_cluster(server, "nolog", group=False)
    rc, out = check(server, "nolog")
    assert rc == 1
    assert (
        "✗ log group /aws/eks/nolog/cluster exists: not found in account 123456789012, region us-east-1"
        in out
    )
    assert ENABLE.format(name="nolog") in out
    assert "- recent audit events (last 60 min): the log group does not exist" in out


def test_unknown_cluster_fails_with_list_clusters_hint(server: MotoServer) -> None:
    rc, out = check(server, "nosuchcluster")
    assert rc == 1
    assert "✗ EKS audit logging enabled on cluster nosuchcluster: no cluster 'nosuchcluster'" in out
    assert "aws eks list-clusters --region us-east-1" in out


def test_no_credentials(server: MotoServer) -> None:
    env = dummy_environ()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key)
    rc, out = check(server, "healthy", env=env)
    assert rc == 1
    assert out.splitlines()[:2] == [f"✓ AWS region: {REGION}", "✗ AWS credentials: no credentials found"]
    assert "eks.amazonaws.com/role-arn" in out


def test_denied_filter_log_events_prints_the_policy(server: MotoServer) -> None:
    make_cluster(server, "locked")
    env = iam_user(server, "falco", ["logs:DescribeLogGroups", "sts:GetCallerIdentity"])
    with iam_enforced(server):
        rc, out = check(server, "locked", env=env)
    assert rc == 1, out
    assert "✓ AWS credentials: arn:aws:iam::123456789012:user/falco" in out
    assert "! EKS audit logging enabled on cluster locked: not checked" in out  # warns, does not fail
    assert "✓ IAM logs:DescribeLogGroups: allowed" in out
    assert (
        "✗ IAM logs:FilterLogEvents: AccessDenied: User: arn:aws:iam::123456789012:user/falco is not" in out
    )
    policy_text = out[
        out.index("{", out.index("fix: allow logs:FilterLogEvents")) : out.index("- recent audit")
    ]
    policy = json.loads(policy_text)
    assert policy["Statement"][0] == {
        "Sid": "ReadEksAuditLogs",
        "Effect": "Allow",
        "Action": ["logs:FilterLogEvents", "logs:DescribeLogStreams"],
        "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/eks/locked/cluster:*",
    }
    assert "- recent audit events (last 60 min): needs logs:FilterLogEvents" in out


def test_role_arn_is_assumed_before_the_checks(server: MotoServer) -> None:
    make_cluster(server, "cross")
    role = client(server, "iam").create_role(
        RoleName="falco-reader",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    rc, out = check(server, "cross", "--role-arn", role)
    assert rc == 0, out
    assert (
        f"✓ assume role {role}: arn:aws:sts::123456789012:assumed-role/falco-reader/k8saudit-eks-py-check"
        in out
    )


def test_exit_status_when_a_local_endpoint_is_down() -> None:
    env = dummy_environ()
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # discard port: connection refused
    env["PYTHONPATH"] = str(ROOT)
    env["AWS_MAX_ATTEMPTS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "check", "x", "--region", REGION],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "✗ AWS credentials: EndpointConnectionError" in proc.stdout
    assert "all checks passed" not in proc.stdout


@pytest.mark.parametrize("name", ["my cluster", "_x", "a/b", "x" * 101])
def test_invalid_cluster_name_is_one_line_and_exit_2(server: MotoServer, name: str) -> None:
    rc, out = check(server, name)
    assert rc == 2
    assert out.strip().splitlines() == [out.strip()] and "is not a valid EKS cluster name" in out


def test_unknown_region_is_rejected_and_later_checks_could_not_run(server: MotoServer) -> None:
    rc, out = check(server, "healthy", "--region", "mars-north-9")
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].startswith("✗ AWS region: 'mars-north-9' is not an AWS region")
    assert "- AWS credentials: needs a valid AWS region" in lines
    assert lines[-1] == "1 check(s) failed, 6 could not run"


def test_no_credentials_lists_the_checks_that_could_not_run(server: MotoServer) -> None:
    env = dummy_environ()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key)
    rc, out = check(server, "healthy", env=env)
    assert rc == 1
    skipped = [line for line in out.splitlines() if line.startswith("- ")]
    assert skipped == [
        "- EKS audit logging enabled on cluster healthy: needs AWS credentials",
        "- IAM logs:DescribeLogGroups: needs AWS credentials",
        "- log group /aws/eks/healthy/cluster exists: needs AWS credentials",
        "- IAM logs:FilterLogEvents: needs AWS credentials",
        "- recent audit events (last 60 min): needs AWS credentials",
    ]
    assert out.splitlines()[-1] == "1 check(s) failed, 5 could not run"


def test_ascii_output_when_stdout_is_not_utf8(server: MotoServer) -> None:
    make_cluster(server, "plain")
    env = dummy_environ()
    env["PYTHONIOENCODING"] = "ascii"
    rc, out = check(server, "plain", env=env)
    assert rc == 0, out
    assert out.splitlines()[0] == f"+ AWS region: {REGION}"
    assert "Traceback" not in out and out.isascii()


def test_window_must_be_positive(server: MotoServer) -> None:
    rc, out = check(server, "healthy", "--window", "0")
    assert rc == 2 and "--window: must be at least 1 second" in out
