"""examples/archive/cloudformation.yaml: passes cfn-lint, sits beside stream mode's subscription filter,
delivers where the plugin reads (gzip records under a prefix) and grants the reader what it calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "archive" / "cloudformation.yaml"
STREAM_TEMPLATE = TEMPLATE.parents[1] / "stream" / "cloudformation.yaml"
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


def _resources(path: Path) -> dict[str, Any]:
    return dict(yaml.load(path.read_text(), Loader=_CfnLoader)["Resources"])


def test_template_passes_cfn_lint() -> None:
    result = subprocess.run([sys.executable, "-c", _CFN_LINT, str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_subscription_goes_to_firehose_beside_stream_mode() -> None:
    resources = _resources(TEMPLATE)
    filters = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::SubscriptionFilter"]
    stream_names = {
        r["Properties"]["FilterName"]
        for r in _resources(STREAM_TEMPLATE).values()
        if r["Type"] == "AWS::Logs::SubscriptionFilter"
    }
    assert len(filters) == 2
    # a log group takes two filters: the archive's must not replace stream mode's (same name = same filter)
    assert all(f["FilterName"] not in stream_names for f in filters)
    assert all(f["DestinationArn"] == {"GetAtt": "DeliveryStream.Arn"} for f in filters)
    put = resources["LogsToFirehoseRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert put["Action"] == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    s3 = resources["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert s3["CompressionFormat"] == "UNCOMPRESSED"  # records stay gzip members: the layout the plugin reads


def test_reader_policy_grants_what_archive_replay_calls() -> None:
    statements = _resources(TEMPLATE)["FalcoArchiveReaderPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    # ListObjectsV2 needs s3:ListBucket on the bucket, GetObject s3:GetObject on its objects
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("s3:ListBucket", {"GetAtt": "ArchiveBucket.Arn"}),
        ("s3:GetObject", {"Sub": "${ArchiveBucket.Arn}/*"}),
    ]
