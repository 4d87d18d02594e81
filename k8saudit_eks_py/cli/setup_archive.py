"""`setup-archive`: create the AWS side of long retention (subscription → Firehose → S3) and print the
open_params that replay it and the reader's IAM policy."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from k8saudit_eks_py.aws_setup.archive_create import (
    ArchiveOptions,
    SetupError,
    archive_reader_policy,
    setup_archive,
)
from k8saudit_eks_py.cli.options import positive_int

__all__ = ["add_parser"]

_CLUSTER = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_STREAM = re.compile(r"[a-zA-Z0-9_.-]{1,64}")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "setup-archive",
        help="create the subscription → Firehose → S3 path that keeps audit events for archive replay",
        description="Idempotent: creates what is missing (the S3 bucket, the Firehose delivery stream, the "
        "roles Firehose and CloudWatch Logs assume, one subscription filter per cluster log group named "
        "k8saudit-eks-py-archive, beside stream mode's) and leaves what exists. Prints the open_params "
        "that replay the archive and the IAM policy the reader needs. --dry-run names every call it "
        "would make and changes nothing.",
    )
    p.add_argument("clusters", metavar="CLUSTER[,CLUSTER...]")
    p.add_argument("--bucket", required=True, metavar="NAME", help="S3 bucket (created if missing)")
    p.add_argument("--prefix", default="eks-audit/", help="key prefix of the archive (default %(default)s)")
    p.add_argument(
        "--delivery-stream",
        default="k8saudit-eks-archive",
        metavar="NAME",
        help="Firehose delivery stream name (default %(default)s)",
    )
    p.add_argument(
        "--retention-days",
        type=positive_int,
        default=400,
        metavar="N",
        help="days before S3 deletes an archived object, set on a new bucket (default %(default)s)",
    )
    p.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    p.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    p.add_argument(
        "--filter-pattern", default="", metavar="P", help="CloudWatch filter pattern (default: all)"
    )
    p.add_argument("--endpoint-url", help="endpoint override for every AWS call (local test server)")
    p.add_argument("--dry-run", action="store_true", help="print every call it would make, change nothing")
    p.set_defaults(func=main)


def _usage_error(args: argparse.Namespace, clusters: tuple[str, ...]) -> str | None:
    bad = [c for c in clusters if not _CLUSTER.fullmatch(c)]
    if bad:
        return f"{bad[0]!r} is not an EKS cluster name"
    if not _BUCKET.fullmatch(args.bucket):
        return f"{args.bucket!r} is not an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')"
    if not _STREAM.fullmatch(args.delivery_stream):
        return f"{args.delivery_stream!r} is not a Firehose delivery stream name"
    if args.prefix.startswith("/"):
        return f"--prefix {args.prefix!r} must not start with '/'"
    return None


def main(args: argparse.Namespace) -> int:
    clusters = tuple(c.strip() for c in args.clusters.split(","))
    mistake = _usage_error(args, clusters)
    if mistake:
        print(f"error: {mistake}", file=sys.stderr)
        return 2
    prefix = args.prefix if not args.prefix or args.prefix.endswith("/") else args.prefix + "/"
    options = ArchiveOptions(
        clusters=clusters,
        bucket=args.bucket,
        prefix=prefix,
        delivery_stream=args.delivery_stream,
        retention_days=args.retention_days,
        region=args.region or "",
        profile=args.profile or "",
        filter_pattern=args.filter_pattern,
        endpoint_url=args.endpoint_url or "",
        dry_run=args.dry_run,
    )
    try:
        result = setup_archive(options)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for action in result.actions:
        print(f"{'-' if args.dry_run else '✓'} {action}")
    print(
        f"\nReplay the archive (Firehose writes within about 5 minutes; add ?from=TIME&to=TIME for a "
        f"window):\n    open_params: s3://{args.bucket}/{prefix}\n"
        f"    k8saudit-eks-py tail s3://{args.bucket}/{prefix} --from 1d --region {result.region}"
    )
    print("\nIAM policy for the identity that replays it:\n" + archive_reader_policy(args.bucket, prefix))
    return 0
