"""`k8saudit-eks-py setup-coordination`: create the DynamoDB lease table several replicas share."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import BotoCoreError

from k8saudit_eks_py.aws import describe, make_client, resolve_region
from k8saudit_eks_py.aws_setup.lease_table_create import create_table
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "setup-coordination",
        help="create the DynamoDB table of leases and checkpoints for several replicas (coordination_table)",
        description="Creates TABLE with the lease table's key schema and on-demand billing, unless it "
        "already exists. Safe to run again. With --dry-run, only says what it would do.",
    )
    p.add_argument("--table", required=True, help="table name (or ARN) to set as coordination_table")
    p.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    p.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    p.add_argument("--role-arn", help="IAM role to assume for creating the table")
    p.add_argument("--endpoint-url", help="DynamoDB endpoint override (VPC endpoint, local server)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = PluginConfig(profile=args.profile or "", region=args.region or "", role_arn=args.role_arn or "")
    try:
        region = resolve_region(cfg)
        client = make_client("dynamodb", cfg, region, endpoint_url=args.endpoint_url or "")
        ok, message = create_table(client, args.table, dry_run=args.dry_run)
    except OpenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 1
    if not ok:
        print(f"error: {message}", file=sys.stderr)
        return 1
    print(f"{message} in {region}")
    return 0
