"""`check` of clusters in several accounts and Regions: one block per account and Region with its role,
each cluster's checks, the account's quota share, and a role that cannot be assumed failing only its own
block (with the fix), the process exiting non-zero."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest

from tests.support.accounts import ACCOUNTS, ROLE_TEMPLATE, account_credentials, role_of
from tests.support.check_cli import AUDIT_STREAM, ROOT
from tests.support.faultproxy import FaultProxy
from tests.support.moto_server import MotoServer, dummy_environ

A, B, C = ACCOUNTS


def _cluster(url: str, account: str, region: str, name: str) -> str:
    """An EKS cluster with audit logging on and a recent audit event, in `account` and `region`."""
    keys = account_credentials(url, account)
    eks = boto3.client("eks", endpoint_url=url, region_name=region, **keys)
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{account}:role/eks",
        resourcesVpcConfig={"subnetIds": []},
        logging={"clusterLogging": [{"types": ["audit"], "enabled": True}]},
    )
    logs = boto3.client("logs", endpoint_url=url, region_name=region, **keys)
    group = f"/aws/eks/{name}/cluster"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=AUDIT_STREAM)
    event = {"timestamp": int((time.time() - 30) * 1000), "message": '{"kind":"Event","verb":"get"}'}
    logs.put_log_events(logGroupName=group, logStreamName=AUDIT_STREAM, logEvents=[event])
    return f"arn:aws:eks:{region}:{account}:cluster/{name}"


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as p:
        yield p


def _check(proxy: FaultProxy, *argv: str) -> tuple[int, str]:
    env = dummy_environ()
    env["AWS_ENDPOINT_URL"] = proxy.url  # STS, EKS and Logs through the proxy
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "check", *argv, "--endpoint-url", proxy.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_one_block_per_account_and_region_and_a_denied_role_fails_only_its_block(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    arns = [
        _cluster(moto.url, A, "us-east-1", "prod"),
        _cluster(moto.url, B, "eu-west-1", "prod"),
        _cluster(moto.url, C, "us-east-1", "web"),
    ]
    rc, out = _check(proxy, ",".join(arns), "--role-arn", ROLE_TEMPLATE, "--external-id", "falco-xyz")
    assert rc == 0, out
    for account, region in ((A, "us-east-1"), (B, "eu-west-1"), (C, "us-east-1")):
        assert f"== account {account} in {region}: 1 cluster(s)" in out, out
        assert f"role {role_of(account)}" in out
    assert out.count("✓ EKS audit logging enabled on cluster prod") == 2, out
    assert out.count("✓ quota share of this account and Region: 1 of about 17 busy log groups") == 3, out
    assert out.count("all checks passed") == 3, out

    proxy.faults.deny_roles = (role_of(B),)
    rc, out = _check(proxy, ",".join(arns), "--role-arn", ROLE_TEMPLATE)
    assert rc == 1, out
    blocks = out.split("== ")[1:]
    denied = next(b for b in blocks if b.startswith(f"account {B}"))
    assert f"✗ assume role {role_of(B)}" in denied and "sts:AssumeRole" in denied, denied
    assert "fix: allow sts:AssumeRole" in denied
    assert all("all checks passed" in b for b in blocks if not b.startswith(f"account {B}")), out


def test_a_bad_item_or_role_map_is_one_line_and_exit_2(proxy: FaultProxy) -> None:
    rc, out = _check(proxy, f"prod,arn:aws:eks:us-east-1:{A}:nodegroup/x")
    assert rc == 2 and out.count("\n") == 1 and "neither an EKS cluster ARN" in out, out
    rc, out = _check(proxy, f"arn:aws:eks:us-east-1:{A}:cluster/x", "--role-arns", '{"1": "x"}')
    assert rc == 2 and out.count("\n") == 1 and "12-digit" in out, out


def test_observability_checks_linked_groups_by_arn_and_says_how_to_link_the_others(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    arns = [
        _cluster(moto.url, a, r, "obs") for a, r in ((A, "us-east-1"), (B, "eu-west-1"), (C, "us-east-1"))
    ]
    proxy.faults.linked_keys = {a: account_credentials(moto.url, a)["aws_access_key_id"] for a in (A, B)}
    rc, out = _check(proxy, ",".join(arns), "--cross-account", "observability")
    assert rc == 1, out  # C is not linked
    blocks = {b.split(":")[0]: b for b in out.split("== ")[1:]}
    for account in (A, B):
        block = blocks[f"account {account} in {'us-east-1' if account == A else 'eu-west-1'}"]
        assert "role own credentials, by ARN (observability)" in block
        assert "✓ linked log group arn:aws:logs:" in block and "✓ recent audit events" in block, block
    unlinked = blocks[f"account {C} in us-east-1"]
    assert (
        "✗ linked log group" in unlinked and f"fix: link account {C} to this monitoring account" in unlinked
    )
    assert proxy.stats.linked[A] > 0 and proxy.stats.linked[B] > 0
