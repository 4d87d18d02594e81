"""`setup-stream` across accounts, as a user runs it (moto behind the fault proxy, which records the member
accounts' subscription filters into a destination: moto cannot make them): --dry-run prints every call and
changes nothing; the real run puts a destination per member Region with its access policy, makes each
member's filter as that account's member role, and a member whose role is denied fails alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest

from tests.support.accounts import ACCOUNTS, account_logs
from tests.support.check_cli import ROOT
from tests.support.faultproxy import FaultProxy
from tests.support.moto_server import MotoServer, aws_env, dummy_environ  # noqa: F401

A, B, C = ACCOUNTS
HOME = "123456789012"  # the security account (moto's default account)
MEMBER_ROLE = "arn:aws:iam::{account}:role/k8saudit-eks-subscriber"
CLUSTERS = {A: ("us-east-1", "prod"), B: ("eu-west-1", "prod"), C: ("us-east-1", "web")}


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as p:
        yield p


def _arns() -> str:
    return ",".join(f"arn:aws:eks:{r}:{a}:cluster/{n}" for a, (r, n) in CLUSTERS.items())


def _setup(proxy: FaultProxy, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "k8saudit_eks_py", "setup-stream", f"local,{_arns()}"),
            *("--stream", "org-audit", "--region", "us-east-1", "--endpoint-url", proxy.url),
            *("--member-role", MEMBER_ROLE, *extra),
        ],
        capture_output=True,
        text=True,
        env=dummy_environ(),
        cwd=ROOT,
        timeout=120,
    )


def _destinations(url: str, region: str) -> list[dict[str, object]]:
    logs = boto3.client("logs", endpoint_url=url, region_name=region)
    return list(logs.describe_destinations()["destinations"])


def test_dry_run_prints_every_call_then_the_run_makes_them_a_denied_member_fails_alone(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    local = boto3.client("logs", endpoint_url=moto.url, region_name="us-east-1")
    local.create_log_group(logGroupName="/aws/eks/local/cluster")
    for account, (region, name) in CLUSTERS.items():
        account_logs(moto.url, account, region).create_log_group(logGroupName=f"/aws/eks/{name}/cluster")

    dry = _setup(proxy, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    for region in ("us-east-1", "eu-west-1"):
        assert f"- PutDestination org-audit-k8saudit-eks in {region} → " in dry.stdout, dry.stdout
        assert (
            f"- PutDestinationPolicy org-audit-k8saudit-eks in {region} (accounts {A}, {HOME}, {B}, {C})"
            in (dry.stdout)
        )
    for account, (region, name) in CLUSTERS.items():
        role = MEMBER_ROLE.format(account=account)
        assert f"- account {account}: AssumeRole {role}: would call" in dry.stdout
        assert (
            f"- account {account}: PutSubscriptionFilter /aws/eks/{name}/cluster in {region} → " in dry.stdout
        )
    assert _destinations(moto.url, "us-east-1") == [] and proxy.stats.destination_filters == []

    proxy.faults.deny_roles = (MEMBER_ROLE.format(account=C),)
    run = _setup(proxy, "--external-id", "falco-xyz")
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"✗ account {C}: PutSubscriptionFilter /aws/eks/web/cluster" in run.stdout
    assert "member-account.yaml" in run.stdout
    for region in ("us-east-1", "eu-west-1"):
        (dest,) = _destinations(moto.url, region)
        policy = json.loads(str(dest["accessPolicy"]))
        assert set(policy["Statement"][0]["Principal"]["AWS"]) == {A, B, C, HOME}
        assert str(dest["targetArn"]).endswith(":stream/org-audit")
    made = {proxy.stats.issued[key]: req for key, req in proxy.stats.destination_filters}
    assert set(made) == {MEMBER_ROLE.format(account=A), MEMBER_ROLE.format(account=B)}  # each as its account
    b = made[MEMBER_ROLE.format(account=B)]
    assert b["logGroupName"] == "/aws/eks/prod/cluster" and ":eu-west-1:" in b["destinationArn"]
    assert "roleArn" not in b  # a cross-account filter names no role: the destination has it
    assert f"stream_clusters: local,{A}/prod,{B}/prod,{C}/web" in run.stdout


def test_arn_items_without_member_role_is_one_line_and_exit_2(proxy: FaultProxy) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "setup-stream", _arns(), "--stream", "s", "--dry-run"],
        capture_output=True,
        text=True,
        env=dummy_environ(),
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--member-role" in proc.stderr
