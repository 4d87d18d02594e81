"""examples/ for several replicas agree with the plugin: Helm values, IAM statement for the lease table."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from k8saudit_eks_py import PLUGIN_NAME
from k8saudit_eks_py.aws_setup.iam_policies import iam_statement
from k8saudit_eks_py.config import init_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_helm_values_for_two_replicas_share_a_lease_table() -> None:
    values = yaml.safe_load((EXAMPLES / "helm" / "values-replicas.yaml").read_text())
    assert values["controller"]["deployment"]["replicas"] == 2
    plugin = values["falco"]["plugins"][0]
    assert plugin["name"] == PLUGIN_NAME
    config = plugin["init_config"]
    assert set(config) <= set(init_schema()["properties"])
    assert config["coordination_table"] == "falco-eks-audit-leases"
    assert "checkpoint_file" not in config  # positions live in the table, not on one node's disk
    assert len(plugin["open_params"].split(",")) == 3
    env = {e["name"]: e for e in values["extra"]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_iam_statement_for_the_lease_table_is_what_check_and_open_ask_for() -> None:
    policy = json.loads((EXAMPLES / "iam-policy-coordination.json").read_text())
    assert policy["Statement"] == [iam_statement("falco-eks-audit-leases", "*")]
