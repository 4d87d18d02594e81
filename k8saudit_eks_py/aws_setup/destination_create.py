"""`setup-stream` across accounts: the security account's side (a CloudWatch Logs destination per Region in
front of its Kinesis stream, with an access policy naming the member accounts or an organization, and a
delivery role that CloudWatch Logs of those accounts and Regions may assume) and each member account's side
(a subscription filter on each cluster's log group into the destination of its Region, made through a member
role; no role is named in the filter).

A destination must be in the Region of the log groups it serves; its stream may be in another, so members
in several Regions get one destination each, all into the same stream. A member account whose role cannot
be assumed fails alone: its clusters are reported, the others are subscribed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from k8saudit_eks_py.cluster_refs import ClusterRef

__all__ = [
    "CrossAccount",
    "access_policy",
    "cross_account_trust_policy",
    "destination_arn",
    "destination_name",
    "setup_destinations",
    "subscribe_members",
]

FILTER_NAME = "k8saudit-eks-py"


@dataclass(frozen=True, slots=True)
class CrossAccount:
    members: tuple[ClusterRef, ...]  # clusters read through a destination (another account or Region)
    member_role: str = ""  # role to assume in each member account; may contain {account} and {region}
    external_id: str = ""
    organization_id: str = ""  # allow the whole organization instead of listing the member accounts

    def accounts(self) -> list[str]:
        return sorted({m.account for m in self.members})

    def regions(self) -> list[str]:
        return sorted({m.region for m in self.members})


def destination_name(stream: str) -> str:
    return f"{stream}-k8saudit-eks"[:512]


def destination_arn(region: str, account: str, stream: str) -> str:
    return f"arn:aws:logs:{region}:{account}:destination:{destination_name(stream)}"


def access_policy(arn: str, accounts: list[str], organization_id: str) -> str:
    """Who may subscribe a log group to the destination: the member accounts, or the organization."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "logs:PutSubscriptionFilter",
        "Resource": arn,
    }
    if organization_id:
        statement["Principal"] = "*"
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": [organization_id]}}
    else:
        statement["Principal"] = {"AWS": accounts}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


def cross_account_trust_policy(regions: list[str], accounts: list[str]) -> str:
    """The delivery role: CloudWatch Logs may assume it for log groups of these accounts and Regions."""
    sources = [f"arn:aws:logs:{region}:{account}:*" for region in regions for account in accounts]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringLike": {"aws:SourceArn": sources}},
                }
            ],
        },
        indent=2,
    )


def setup_destinations(
    x: CrossAccount,
    *,
    stream: str,
    stream_arn: str,
    role_arn: str,
    account: str,
    logs_in: Callable[[str], Any],
    dry_run: bool,
) -> tuple[dict[str, str], list[str]]:
    """One destination per member Region in the security account: Region → destination ARN, actions."""
    name = destination_name(stream)
    grantees = sorted({*x.accounts(), account})
    out: dict[str, str] = {}
    actions = []
    for region in x.regions():
        arn = destination_arn(region, account, stream)
        policy_of = (
            f"organization {x.organization_id}" if x.organization_id else f"accounts {', '.join(grantees)}"
        )
        if dry_run:
            actions.append(f"PutDestination {name} in {region} → {stream_arn} (role {role_arn}): would call")
            actions.append(f"PutDestinationPolicy {name} in {region} ({policy_of}): would call")
        else:
            logs = logs_in(region)
            made = logs.put_destination(destinationName=name, targetArn=stream_arn, roleArn=role_arn)
            arn = str(made.get("destination", {}).get("arn") or arn)
            logs.put_destination_policy(
                destinationName=name, accessPolicy=access_policy(arn, grantees, x.organization_id)
            )
            actions.append(f"destination {name} in {region} → {stream}: put, policy for {policy_of}")
        out[region] = arn
    return out, actions


def subscribe_members(
    x: CrossAccount,
    *,
    destinations: dict[str, str],
    filter_pattern: str,
    member_logs: Callable[[str, str, str], Any],
    dry_run: bool,
) -> tuple[list[str], list[str]]:
    """Each member cluster's subscription filter, made as its account's member role: (actions, failures).
    `member_logs(role, account, region)` is a Logs client with that role's credentials."""
    actions: list[str] = []
    failures: list[str] = []
    denied: dict[str, str] = {}  # account → why its role could not be used
    for m in x.members:
        role = x.member_role.format(account=m.account, region=m.region)
        target = destinations[m.region]
        what = f"account {m.account}: PutSubscriptionFilter {m.log_group} in {m.region} → {target}"
        if dry_run:
            actions.append(f"account {m.account}: AssumeRole {role}: would call")
            actions.append(f"{what}: would call")
            continue
        if m.account in denied:
            failures.append(f"{what}: not made ({denied[m.account]})")
            continue
        try:
            logs = member_logs(role, m.account, m.region)
            logs.put_subscription_filter(
                logGroupName=m.log_group,
                filterName=FILTER_NAME,
                filterPattern=filter_pattern,
                destinationArn=target,
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            op = getattr(exc, "operation_name", "")
            if op == "AssumeRole":
                denied[m.account] = f"cannot assume {role}: {exc}"
                failures.append(
                    f"{what}: not made (cannot assume {role}: {exc}). Fix: deploy "
                    "examples/stream/member-account.yaml in that account (or let the role trust this "
                    "identity, with --external-id if its trust policy requires one)"
                )
            else:
                failures.append(f"{what}: failed ({exc})")
            continue
        actions.append(f"{what}: made")
    return actions, failures
