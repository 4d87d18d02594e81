"""examples/: the rule file, Helm values and IAM policy agree with the plugin's identity and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from k8saudit_eks_py import LIBRARY_NAME, PLUGIN_NAME, __version__
from k8saudit_eks_py.aws_setup.iam_policies import iam_policy
from k8saudit_eks_py.config import init_schema
from k8saudit_eks_py.output_format import DEFAULT_FORMAT

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_dummy_rule_is_the_seed_rule_and_requires_k8saudit_eks() -> None:
    doc = _load("rules/dummy_rule.yaml")
    required = next(item["required_plugin_versions"] for item in doc if "required_plugin_versions" in item)
    assert required == [{"name": PLUGIN_NAME, "version": "0.12.0"}]
    # Falco's check: same major, installed version >= required.
    if __version__ != "0.0.0":  # an uninstalled source tree has no version
        assert _version(__version__)[0] == 0 and _version(__version__) >= (0, 12, 0)
    rule = next(item for item in doc if "rule" in item)
    assert rule == {
        "rule": "Dummy rule",
        "desc": "Dummy rule\n",
        "condition": "ka.verb in (get,create,delete,update)\n",
        "output": DEFAULT_FORMAT,
        "priority": "WARNING",
        "source": "k8s_audit",
        "tags": ["k8s"],
    }


def test_helm_values_run_one_plugin_only_replica_with_irsa() -> None:
    values = _load("helm/values.yaml")
    assert values["controller"] == {"kind": "deployment", "deployment": {"replicas": 1}}
    assert values["driver"] == {"enabled": False}
    assert values["collectors"] == {"enabled": False}
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    falco = values["falco"]
    plugin = falco["plugins"][0]
    assert plugin["name"] == PLUGIN_NAME
    assert plugin["library_path"] == f"/usr/share/falco/plugins/{LIBRARY_NAME}"
    assert set(plugin["init_config"]) <= set(init_schema()["properties"])
    assert falco["load_plugins"] == [PLUGIN_NAME, "json"]
    assert falco["rules_files"] == ["/etc/falco/k8s_audit_rules.yaml"]
    # The checkpoint lives in the mounted volume.
    mount = values["mounts"]["volumeMounts"][0]["mountPath"]
    assert plugin["init_config"]["checkpoint_file"].startswith(mount + "/")
    install = values["falcoctl"]["config"]["artifact"]["install"]
    assert install["resolveDeps"] is False
    assert any(ref.startswith("k8saudit-eks-py:") for ref in install["refs"])
    assert not any(
        ref.startswith("k8saudit-eks-py")
        for ref in values["falcoctl"]["config"]["artifact"]["follow"]["refs"]
    )
    assert values["metrics"]["pluginsMetricsEnabled"] is True


def test_iam_policy_is_least_privilege() -> None:
    policy = json.loads((EXAMPLES / "iam-policy.json").read_text())
    assert policy == iam_policy()
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == [
        "eks:DescribeCluster",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:FilterLogEvents",
    ]
    read = next(s for s in policy["Statement"] if "logs:FilterLogEvents" in s["Action"])
    assert read["Resource"] == "arn:aws:logs:*:*:log-group:/aws/eks/*/cluster:*"
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in policy["Statement"])
