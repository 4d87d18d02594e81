"""open_params items naming clusters by name or ARN, how each is shown, and the per-account role keys."""

from __future__ import annotations

import orjson
import pytest

from k8saudit_eks_py.cluster_refs import ClusterRef, labels, parse_item, parse_items
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.errors import ConfigError, OpenError
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from k8saudit_eks_py.sources.cloudwatch.routes import targets

A, B = "111111111111", "222222222222"


def test_items_by_name_cluster_arn_and_log_group_arn() -> None:
    assert parse_item("prod") == ClusterRef("prod")
    eks = parse_item(f"arn:aws:eks:eu-west-1:{A}:cluster/prod")
    logs = parse_item(f"arn:aws:logs:eu-west-1:{A}:log-group:/aws/eks/prod/cluster:*")
    assert eks == logs == ClusterRef("prod", A, "eu-west-1")
    assert eks.log_group == "/aws/eks/prod/cluster"
    assert eks.log_group_arn == f"arn:aws:logs:eu-west-1:{A}:log-group:/aws/eks/prod/cluster"
    assert parse_item(f"arn:aws-cn:eks:cn-north-1:{A}:cluster/x").partition == "aws-cn"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (f"arn:aws:eks:eu-west-1:{A}:nodegroup/prod", "neither an EKS cluster ARN"),
        ("arn:aws:eks:eu-west-1:12345:cluster/prod", "neither an EKS cluster ARN"),
        (f"arn:aws:logs:eu-west-1:{A}:log-group:/other/group", "not an EKS audit log group"),
        (f"arn:aws:eks:eu-west-1:{A}:cluster/bad name", "not a valid EKS cluster name"),
        ("bad name", "not a valid EKS cluster name"),
    ],
)
def test_bad_items_say_what_to_write(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_item(item)


def test_the_same_cluster_twice_is_refused_the_same_name_in_two_accounts_is_not() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_items(
            f"arn:aws:eks:eu-west-1:{A}:cluster/p,arn:aws:logs:eu-west-1:{A}:log-group:/aws/eks/p/cluster"
        )
    assert len(parse_items(f"arn:aws:eks:eu-west-1:{A}:cluster/p,arn:aws:eks:eu-west-1:{B}:cluster/p")) == 2


def test_names_are_plain_unless_two_items_share_one() -> None:
    refs = parse_items(
        f"prod,arn:aws:eks:us-east-1:{A}:cluster/prod,arn:aws:eks:eu-west-1:{B}:cluster/prod,"
        f"arn:aws:eks:eu-west-1:{B}:cluster/web"
    )
    assert labels(refs) == ["prod", f"{A}/us-east-1/prod", f"{B}/eu-west-1/prod", "web"]


def _config(**values: object) -> str:
    return orjson.dumps(values).decode()


def test_routes_roles_and_unit_keys() -> None:
    config = parse_config(
        _config(
            role_arn="arn:aws:iam::{account}:role/reader", role_arns={B: f"arn:aws:iam::{B}:role/special"}
        )
    )
    refs = parse_items(f"arn:aws:eks:us-east-1:{A}:cluster/prod,arn:aws:eks:eu-west-1:{B}:cluster/prod")
    a, b = targets(config, "us-east-1", refs)
    assert a.route.key == (A, "us-east-1") and a.route.role_arn == f"arn:aws:iam::{A}:role/reader"
    assert b.route.key == (B, "eu-west-1") and b.route.role_arn == f"arn:aws:iam::{B}:role/special"
    assert a.request == b.request == {"logGroupName": "/aws/eks/prod/cluster"}  # inside each account
    # Checkpoint and lease keys hold the account and Region: the two `prod` never share one.
    assert a.key == f"aws|us-east-1|arn:aws:logs:us-east-1:{A}:log-group:/aws/eks/prod/cluster"
    assert a.key != b.key and B in b.key and "eu-west-1" in b.key
    # A plain name keeps its key and request.
    (plain,) = targets(config, "us-east-1", parse_items("prod"))
    assert plain.key == "aws|us-east-1|/aws/eks/prod/cluster" and plain.route.key == ("", "us-east-1")


def test_observability_and_accounts_without_a_role_use_own_credentials_by_identifier() -> None:
    refs = parse_items(f"arn:aws:eks:eu-west-1:{A}:cluster/prod")
    for config in (
        parse_config(_config(cross_account="observability", role_arn="arn:aws:iam::{account}:role/r")),
        parse_config(_config()),
    ):
        (t,) = targets(config, "us-east-1", refs)
        assert t.route.key == ("", "eu-west-1") and t.route.role_arn is None
        assert t.request == {
            "logGroupIdentifier": f"arn:aws:logs:eu-west-1:{A}:log-group:/aws/eks/prod/cluster"
        }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"role_arn": "arn:aws:iam::{acct}:role/r"}, "only {account} and {region}"),
        ({"role_arn": "arn:aws:iam::{account}:user/r"}, "not an IAM role ARN"),
        ({"role_arns": {"12": "arn:aws:iam::12:role/r"}}, "12-digit"),
        ({"role_arns": {A: f"arn:aws:iam::{B}:role/r"}}, f"is in account {B}"),
        ({"role_arns": {A: 5}}, "must be a string"),
        ({"role_arns": "x"}, "must be a JSON object"),
        ({"cross_account": "oam"}, "'role' or 'observability'"),
    ],
)
def test_account_keys_fail_init_with_the_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(**values))


def test_a_plain_name_with_a_role_per_account_fails_open_asking_for_the_arn() -> None:
    config = parse_config(_config(region="us-east-1", role_arn="arn:aws:iam::{account}:role/r"))
    with pytest.raises(OpenError, match="name it by its ARN"):
        open_cloudwatch("prod", config)


def test_tail_takes_arn_items_for_clusters_not_for_a_file_path() -> None:
    from k8saudit_eks_py.cli.tail import bare_path_hint

    assert bare_path_hint(f"arn:aws:eks:eu-west-1:{A}:cluster/prod,web") is None
    assert bare_path_hint("some/dir/audit.jsonl") is not None
