"""examples/accounts/ and examples/stream/member-account.yaml: the templates pass cfn-lint, the member roles
grant only what the plugin and setup-stream use, the trust needs the external ID, and the Helm values are
init_config the plugin accepts with the ARN items open needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from k8saudit_eks_py.cluster_refs import labels, parse_items
from k8saudit_eks_py.config import parse_config
from tests.unit.test_stream_examples import _CFN_LINT, _CfnLoader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEMPLATES = ("accounts/member-reader-role.yaml", "stream/member-account.yaml")


@pytest.mark.parametrize("name", TEMPLATES)
def test_member_templates_pass_cfn_lint(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CFN_LINT, str(EXAMPLES / name)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_member_reader_role_trusts_falco_with_the_external_id_and_reads_only_audit_logs() -> None:
    template = yaml.load((EXAMPLES / "accounts/member-reader-role.yaml").read_text(), Loader=_CfnLoader)
    role = template["Resources"]["ReaderRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "FalcoRoleArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    actions = sorted(
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == [
        "eks:DescribeCluster",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:FilterLogEvents",
    ]
    assert "/aws/eks/*/cluster:*" in statements[0]["Resource"]["Sub"]
    policy = json.loads((EXAMPLES / "accounts/falco-assume-roles-policy.json").read_text())
    assert policy["Statement"][0]["Resource"].endswith(":role/" + role["RoleName"])


def test_member_subscriber_role_is_what_setup_stream_member_role_needs() -> None:
    template = yaml.load((EXAMPLES / "stream/member-account.yaml").read_text(), Loader=_CfnLoader)
    role = template["Resources"]["SubscriberRole"]["Properties"]
    assert role["RoleName"] == "k8saudit-eks-subscriber"
    actions = {
        a
        for s in role["Policies"][0]["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"logs:PutSubscriptionFilter", "logs:DescribeSubscriptionFilters"}
    sub = template["Resources"]["AuditSubscription"]["Properties"]
    assert "RoleArn" not in sub and sub["FilterName"] == "k8saudit-eks-py"


def test_helm_values_for_many_accounts_are_accepted_and_name_the_two_prod_apart() -> None:
    values = yaml.safe_load((EXAMPLES / "accounts/helm-values.yaml").read_text())
    plugin = values["falco"]["plugins"][0]
    config = parse_config(orjson.dumps(plugin["init_config"]).decode())
    assert config.role_arn.format(account="1", region="r") == "arn:aws:iam::1:role/falco-k8saudit-reader"
    refs = parse_items(plugin["open_params"])
    assert all(r.by_arn for r in refs)
    assert labels(refs) == ["111111111111/eu-west-1/prod", "222222222222/us-east-1/prod", "staging"]
