"""The lease table: `setup-coordination`, its verification at open, `check --coordination-table`, and the
DynamoDB endpoint settings (init_config, AWS_ENDPOINT_URL_DYNAMODB, the shared config's services)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8saudit_eks_py.coordination.start import start_coordinator
from k8saudit_eks_py.errors import OpenError
from tests.support.check_cli import check, iam_enforced, iam_user, make_cluster
from tests.support.leases import dynamodb, new_table, wait_for
from tests.support.moto_server import (  # noqa: F401 - aws_env: dummy credentials only
    REGION,
    MotoServer,
    aws_env,
    dummy_environ,
    make_config,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    s = MotoServer()
    try:
        yield s
    finally:
        s.stop()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = env or dummy_environ()
    e["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", *args], capture_output=True, text=True, env=e, timeout=120
    )


def table_names(server: MotoServer) -> list[str]:
    return list(dynamodb(server.url).list_tables()["TableNames"])


def test_setup_coordination_dry_run_then_create_then_again(server: MotoServer) -> None:
    name = f"falco-leases-{uuid.uuid4().hex[:6]}"
    base = ("setup-coordination", "--table", name, "--region", REGION, "--endpoint-url", server.url)
    dry = cli(*base, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == (
        f"would create table {name} (partition key 'unit' string, on-demand billing) in {REGION}\n"
    )
    assert name not in table_names(server)
    made = cli(*base)
    assert made.returncode == 0, made.stderr
    assert (
        made.stdout == f"created table {name} (partition key 'unit' string, on-demand billing) in {REGION}\n"
    )
    described = dynamodb(server.url).describe_table(TableName=name)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "unit", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    again = cli(*base)
    assert again.returncode == 0
    assert (
        again.stdout == f"table {name} already exists with the right key schema; nothing to do in {REGION}\n"
    )


def test_setup_coordination_refuses_a_table_with_another_key_schema(server: MotoServer) -> None:
    dynamodb(server.url).create_table(
        TableName="not-leases",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    proc = cli("setup-coordination", "--table", "not-leases", "--endpoint-url", server.url)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert (
        "error: table not-leases exists but is not a lease table: key schema is id (HASH, S)" in proc.stderr
    )


def test_setup_coordination_with_the_endpoint_down_is_one_line() -> None:
    env = dummy_environ()
    proc = cli("setup-coordination", "--table", "t", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: EndpointConnectionError") and proc.stderr.count("\n") == 1


def test_setup_coordination_follows_aws_endpoint_url_dynamodb(server: MotoServer) -> None:
    env = dummy_environ()
    env["AWS_ENDPOINT_URL_DYNAMODB"] = server.url
    proc = cli("setup-coordination", "--table", "from-env", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "from-env" in table_names(server)


def test_open_names_the_fix_for_a_missing_table(server: MotoServer) -> None:
    cfg = make_config(server.url, coordination_table="nope", coordination_endpoint_url=server.url)
    with pytest.raises(OpenError) as err:
        start_coordinator(cfg, REGION, ["u"])
    assert str(err.value).startswith("coordination_table nope not found in region us-east-1")
    assert str(err.value).endswith(
        "create it with: k8saudit-eks-py setup-coordination --table nope --region us-east-1"
    )


def test_open_refuses_a_table_with_another_key_schema(server: MotoServer) -> None:
    dynamodb(server.url).create_table(
        TableName="wrong-key",
        KeySchema=[{"AttributeName": "unit", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "unit", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    cfg = make_config(server.url, coordination_table="wrong-key", coordination_endpoint_url=server.url)
    with pytest.raises(OpenError, match=r"wrong-key is not a lease table: key schema is unit \(HASH, S\), n"):
        start_coordinator(cfg, REGION, ["u"])


def test_open_with_the_table_as_an_arn_takes_the_unit(server: MotoServer) -> None:
    name = new_table(server.url)
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{name}"
    cfg = make_config(
        server.url, coordination_table=arn, coordination_endpoint_url=server.url, replica_id="p0"
    )
    c = start_coordinator(cfg, REGION, ["u"])
    try:
        assert wait_for(lambda: c.held() == ["u"], 10)
        assert c.me == "p0"
    finally:
        c.close()


@pytest.mark.parametrize("how", ["environment", "shared config"])
def test_boto3_dynamodb_endpoint_settings_work_without_an_override(
    server: MotoServer, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = new_table(server.url)
    if how == "environment":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)
    else:
        config = tmp_path / "config"
        config.write_text(
            f"[default]\nservices = local\n\n[services local]\ndynamodb =\n  endpoint_url = {server.url}\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    cfg = make_config("http://127.0.0.1:9", coordination_table=name)  # logs endpoint: unused here
    c = start_coordinator(cfg, REGION, ["u"])
    try:
        assert wait_for(lambda: c.held() == ["u"], 10)
    finally:
        c.close()


def test_open_names_the_iam_statement_when_access_is_denied(
    server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = new_table(server.url)
    env = iam_user(server, "no-dynamodb")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env["AWS_SECRET_ACCESS_KEY"])
    cfg = make_config(server.url, coordination_table=name, coordination_endpoint_url=server.url)
    with iam_enforced(server), pytest.raises(OpenError) as err:
        start_coordinator(cfg, REGION, ["u"])
    text = str(err.value)
    assert text.startswith(
        f"access denied to coordination_table {name} (AccessDenied: User: "
        "arn:aws:iam::123456789012:user/no-dynamodb is not authorized to perform: dynamodb:DescribeTable)"
    )
    statement = json.loads(text[text.index("{") :])
    assert statement["Action"] == [
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ]
    assert statement["Resource"] == f"arn:aws:dynamodb:{REGION}:*:table/{name}"


def test_check_verifies_the_coordination_table(server: MotoServer) -> None:
    make_cluster(server, "teamwide")
    name = new_table(server.url)
    rc, out = check(server, "teamwide", "--coordination-table", name)
    assert rc == 0, out
    lines = out.splitlines()
    assert f"✓ coordination table {name}: exists, key schema ok" in lines
    for action in ("DescribeTable", "Scan", "GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        assert f"✓ IAM dynamodb:{action}: allowed" in lines
    assert dynamodb(server.url).scan(TableName=name)["Items"] == []  # the probes wrote nothing


def test_check_reports_a_missing_table_with_the_setup_command(server: MotoServer) -> None:
    make_cluster(server, "lonely")
    rc, out = check(server, "lonely", "--coordination-table", "absent")
    assert rc == 1
    assert "✗ coordination table absent: not found in us-east-1" in out
    assert "k8saudit-eks-py setup-coordination --table absent --region us-east-1" in out


def test_check_reports_a_table_with_another_key_schema(server: MotoServer) -> None:
    make_cluster(server, "odd")
    dynamodb(server.url).create_table(
        TableName="odd-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rc, out = check(server, "odd", "--coordination-table", "odd-table")
    assert rc == 1
    assert "✗ coordination table odd-table: key schema is pk (HASH, S); a lease table has one string" in out
    assert "fix: point coordination_table at a new table: k8saudit-eks-py setup-coordination --table" in out
    assert "IAM dynamodb:" not in out


def test_check_reports_denied_table_actions_with_the_policy(server: MotoServer) -> None:
    make_cluster(server, "partial")
    name = new_table(server.url)
    actions = [
        "sts:GetCallerIdentity",
        "logs:*",
        "eks:*",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
        "dynamodb:GetItem",
    ]
    env = iam_user(server, "reader", actions)
    with iam_enforced(server):
        rc, out = check(server, "partial", "--coordination-table", name, env=env)
    assert rc == 1, out
    assert f"✓ coordination table {name}: exists, key schema ok" in out
    assert "✓ IAM dynamodb:GetItem: allowed" in out
    assert "✗ IAM dynamodb:PutItem: AccessDenied: User: arn:aws:iam::123456789012:user/reader is not" in out
    assert "✗ IAM dynamodb:UpdateItem: AccessDenied: " in out
    policy = json.loads(
        out[out.index("{", out.index("fix: attach this policy")) : out.index("✗ IAM dynamodb:Update")]
    )
    assert policy["Statement"][0]["Resource"] == f"arn:aws:dynamodb:{REGION}:123456789012:table/{name}"
