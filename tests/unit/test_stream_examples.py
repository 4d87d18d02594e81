"""examples/stream/: the CloudFormation template passes cfn-lint and grants what the plugin and
setup-stream use; the Helm values and IAM policies agree with the plugin's configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from k8saudit_eks_py.aws_setup.iam_policies import put_records_policy, reader_policy
from k8saudit_eks_py.config import init_schema

STREAM = Path(__file__).resolve().parents[2] / "examples" / "stream"
# cfn-lint's console script, run with this interpreter (the package has no __main__).
_CFN_LINT = "import sys; from cfnlint.runner import main; sys.exit(main())"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Sub, !GetAtt, ...) kept as {tag: value}."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)  # type: ignore[no-untyped-call]


def test_cloudformation_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CFN_LINT, str(STREAM / "cloudformation.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_grants_what_the_plugin_and_setup_stream_use() -> None:
    template = yaml.load((STREAM / "cloudformation.yaml").read_text(), Loader=_CfnLoader)
    resources = template["Resources"]
    role = resources["LogsToKinesisRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": {"Sub": "logs.${AWS::Region}.amazonaws.com"}}
    put = role["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert put["Action"] == json.loads(put_records_policy("r", "s"))["Statement"][0]["Action"]
    assert put["Resource"] == {"GetAtt": "AuditStream.Arn"}  # that stream only
    reader = resources["FalcoReaderPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert reader["Action"] == json.loads(reader_policy("r", "s"))["Statement"][0]["Action"]
    filters = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::SubscriptionFilter"]
    assert len(filters) == 2 and all(f["FilterName"] == "k8saudit-eks-py" for f in filters)


def test_reader_policy_file_is_the_one_the_plugin_prints() -> None:
    doc = json.loads((STREAM / "iam-reader-policy.json").read_text())
    expected = json.loads(reader_policy("*", "eks-audit"))["Statement"][0]
    assert doc["Statement"][0]["Action"] == expected["Action"]
    assert doc["Statement"][0]["Resource"] == expected["Resource"]
    role = json.loads((STREAM / "iam-logs-to-kinesis-role.json").read_text())
    assert role["PermissionsPolicy"]["Statement"][0]["Action"] == ["kinesis:PutRecord", "kinesis:PutRecords"]


def test_helm_values_run_two_replicas_on_a_stream_with_known_keys() -> None:
    values = yaml.safe_load((STREAM / "helm-values.yaml").read_text())
    assert values["controller"]["deployment"]["replicas"] == 2
    plugin = values["falco"]["plugins"][0]
    assert plugin["name"] == "k8saudit-eks"
    assert plugin["open_params"].startswith("kinesis://arn:aws:kinesis:")
    known = set(init_schema()["properties"])
    assert set(plugin["init_config"]) <= known
    assert plugin["init_config"]["coordination_table"]  # replicas share shards through leases
