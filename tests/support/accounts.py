"""Several AWS accounts in one moto server: moto picks a request's account from its access key id, and an
STS AssumeRole into account X hands out keys whose calls land in X's data. Seeding helpers that write a
cluster's audit events as its own account, in its own Region."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3

from tests.support.moto_server import audit_event, create_group, put_events

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
ROLE_TEMPLATE = "arn:aws:iam::{account}:role/falco-k8saudit-reader"
STREAM = "kube-apiserver-audit-aaaa"


def role_of(account: str) -> str:
    return ROLE_TEMPLATE.format(account=account)


def account_credentials(url: str, account: str) -> dict[str, str]:
    """Keys of `account` (an AssumeRole into it through moto's STS, with the tests' dummy keys)."""
    sts = boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed")[
        "Credentials"
    ]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def account_logs(url: str, account: str, region: str) -> Any:
    return boto3.client("logs", endpoint_url=url, region_name=region, **account_credentials(url, account))


@dataclass(frozen=True)
class Cluster:
    account: str
    region: str
    name: str
    first: int  # its events are auditIDs a-<first>..., apart from every other cluster's

    @property
    def arn(self) -> str:
        return f"arn:aws:eks:{self.region}:{self.account}:cluster/{self.name}"

    @property
    def group(self) -> str:
        return f"/aws/eks/{self.name}/cluster"

    @property
    def group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.group}"


def seed(url: str, cluster: Cluster, timestamps: Iterable[int], *, offset: int = 0) -> set[str]:
    """Audit events at `timestamps` into the cluster's log group, in its account and Region (created by the
    first call, offset 0); their auditIDs (a-<first + offset + i>)."""
    client = account_logs(url, cluster.account, cluster.region)
    if offset == 0:
        create_group(client, cluster.group, [STREAM])
    events = [(cluster.first + offset + i, ts) for i, ts in enumerate(timestamps)]
    put_events(client, cluster.group, STREAM, [(ts, audit_event(n, ts)) for n, ts in events])
    return {f"a-{n}" for n, _ in events}
