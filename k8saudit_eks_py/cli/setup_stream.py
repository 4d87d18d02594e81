"""`setup-stream`: create the AWS side of stream mode and print the falco.yaml lines and reader policy."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from k8saudit_eks_py.aws_setup.stream_create import (
    SetupError,
    SetupOptions,
    falco_yaml,
    reader_policy_for,
    setup_stream,
)

__all__ = ["add_parser"]

_CLUSTER = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "setup-stream",
        help="create the Kinesis stream, IAM role and subscription filters of stream mode",
        description="Idempotent: creates what is missing (the stream, the role CloudWatch Logs assumes, one "
        "subscription filter per cluster log group) and leaves what exists. Prints the falco.yaml lines "
        "and the IAM policy Falco needs to read the stream.",
    )
    p.add_argument("clusters", metavar="CLUSTER[,CLUSTER...]")
    p.add_argument("--stream", required=True, metavar="NAME", help="Kinesis stream name")
    p.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    p.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    p.add_argument("--shards", type=int, metavar="N", help="provisioned shards (default: on-demand)")
    p.add_argument(
        "--filter-pattern", default="", metavar="P", help="CloudWatch filter pattern (default: all)"
    )
    p.add_argument("--endpoint-url", help="endpoint override for every AWS call (local test server)")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    clusters = tuple(c.strip() for c in args.clusters.split(","))
    bad = [c for c in clusters if not _CLUSTER.fullmatch(c)]
    if bad:
        print(f"error: {bad[0]!r} is not an EKS cluster name", file=sys.stderr)
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
    )
    try:
        result = setup_stream(options)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for action in result.actions:
        print(f"{'-' if args.dry_run else '✓'} {action}")
    print("\nfalco.yaml:\n" + falco_yaml(result.stream_arn, result.region, clusters))
    print("\nIAM policy for the identity Falco runs as:\n" + reader_policy_for(result, args.stream))
    return 0
