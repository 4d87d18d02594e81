"""`setup-stream`: create the AWS side of stream mode and print the falco.yaml lines and reader policy."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from k8saudit_eks_py.account_roles import template_problem
from k8saudit_eks_py.aws_setup.destination_create import CrossAccount
from k8saudit_eks_py.aws_setup.stream_create import (
    SetupError,
    SetupOptions,
    falco_yaml,
    reader_policy_for,
    setup_stream,
)

__all__ = ["add_parser"]

from k8saudit_eks_py.cluster_refs import parse_items
from k8saudit_eks_py.eks_names import cluster_name_problem


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "setup-stream",
        help="create the Kinesis stream, IAM role and subscription filters of stream mode",
        description="Idempotent: creates what is missing (the stream, the role CloudWatch Logs assumes, one "
        "subscription filter per cluster log group) and leaves what exists. Prints the falco.yaml lines "
        "and the IAM policy Falco needs to read the stream.",
    )
    p.add_argument(
        "clusters",
        metavar="CLUSTER[,CLUSTER...]",
        help="cluster names (this account and Region), or EKS cluster ARNs of member accounts: those are "
        "subscribed through a CloudWatch Logs destination in front of the stream",
    )
    p.add_argument("--stream", required=True, metavar="NAME", help="Kinesis stream name")
    p.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    p.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    p.add_argument("--shards", type=int, metavar="N", help="provisioned shards (default: on-demand)")
    p.add_argument(
        "--filter-pattern", default="", metavar="P", help="CloudWatch filter pattern (default: all)"
    )
    p.add_argument("--endpoint-url", help="endpoint override for every AWS call (local test server)")
    p.add_argument(
        "--member-role",
        metavar="ARN",
        help="role assumed in each member account to make its subscription filters; may contain "
        "{account} and {region} (e.g. arn:aws:iam::{account}:role/k8saudit-eks-subscriber)",
    )
    p.add_argument("--external-id", help="external ID passed when assuming --member-role")
    p.add_argument(
        "--organization-id",
        metavar="o-...",
        help="let every account of this organization subscribe to the destination (default: the accounts "
        "named)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    bad = [c for c in (i.strip() for i in args.clusters.split(",")) if c and not c.startswith("arn:")]
    bad = [c for c in bad if cluster_name_problem(c)]
    if bad:
        print(f"error: {bad[0]!r} is not an EKS cluster name", file=sys.stderr)
        return 2
    try:
        refs = parse_items(args.clusters)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clusters = tuple(r.name for r in refs if not r.by_arn)
    members = tuple(r for r in refs if r.by_arn)
    problem = template_problem(args.member_role or "")
    if members and not args.member_role:
        problem = "clusters named by ARN need --member-role (the role that makes their subscription filters)"
    if problem:
        text = problem.replace("init_config key 'role_arn'", "--member-role")
        print(f"error: {text}", file=sys.stderr)
        return 2
    if args.shards is not None and args.shards < 1:
        print("error: --shards must be at least 1 (or leave it out for on-demand)", file=sys.stderr)
        return 2
    options = SetupOptions(
        clusters=clusters,
        stream=args.stream,
        region=args.region or "",
        profile=args.profile or "",
        shards=args.shards,
        filter_pattern=args.filter_pattern,
        endpoint_url=args.endpoint_url or "",
        dry_run=args.dry_run,
        cross=CrossAccount(
            members, args.member_role or "", args.external_id or "", args.organization_id or ""
        )
        if members
        else None,
    )
    try:
        result = setup_stream(options)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for action in result.actions:
        print(f"{'-' if args.dry_run else '✓'} {action}")
    for failure in result.failures:
        print(f"✗ {failure}")
    # Clusters of another account than the stream's are shown (and chosen) as ACCOUNT/NAME.
    shown = (
        *clusters,
        *(r.name if r.account == result.account else f"{r.account}/{r.name}" for r in members),
    )
    print("\nfalco.yaml:\n" + falco_yaml(result.stream_arn, result.region, shown))
    print("\nIAM policy for the identity Falco runs as:\n" + reader_policy_for(result, args.stream))
    return 1 if result.failures else 0
