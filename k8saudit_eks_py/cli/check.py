"""`check`: run the preflight checks and print one ✓/✗ line per check with its fix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, SKIP, WARN, CheckResult, Options
from k8saudit_eks_py.aws_setup.cluster_check import run_checks
from k8saudit_eks_py.cli.check_accounts import is_many, main_accounts
from k8saudit_eks_py.cli.options import (
    DURATION_FORMAT,
    add_aws_options,
    positive_duration,
    positive_float,
    positive_int,
)
from k8saudit_eks_py.eks_names import cluster_name_problem

__all__ = ["ASCII_MARKS", "add_parser", "format_results"]

_MARKS = {PASS: "✓", FAIL: "✗", WARN: "!", SKIP: "-"}
ASCII_MARKS = {PASS: "+", FAIL: "x", WARN: "!", SKIP: "-"}  # for a terminal or pipe that is not UTF-8


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="verify credentials, IAM permissions and audit logging for a cluster (or a stream)",
        description="Makes the AWS calls the plugin needs and prints ✓/✗ per check with the fix. "
        "Exit status 0 only when every check passes (a '!' warning does not fail).",
    )
    p.add_argument(
        "cluster",
        metavar="CLUSTER[,CLUSTER...]|kinesis://STREAM",
        help="the EKS cluster name, or several names and ARNs (arn:aws:eks:REGION:ACCOUNT:cluster/NAME: "
        "checked per account and Region), or kinesis://STREAM",
    )
    add_aws_options(p)
    p.add_argument(
        "--role-arns",
        metavar="JSON",
        help="clusters named by ARN: the role per account, a JSON object of account id → role ARN "
        "(init_config role_arns); --role-arn may contain {account} and {region}",
    )
    p.add_argument(
        "--external-id", help="external ID passed when assuming the roles (init_config external_id)"
    )
    p.add_argument(
        "--cross-account",
        choices=("role", "observability"),
        default="role",
        help="clusters named by ARN: read through a role in their account, or by ARN with these credentials "
        "from a CloudWatch cross-account observability monitoring account (init_config cross_account)",
    )
    p.add_argument("--log-group", help="log group to check (default /aws/eks/CLUSTER/cluster)")
    p.add_argument(
        "--clusters",
        default="",
        metavar="CLUSTER[,CLUSTER...]",
        help="kinesis://: clusters whose log group must have a subscription into the stream; poll mode: "
        "every cluster one Falco reads (its open_params), to check that they fit the API call cap",
    )
    p.add_argument(
        "--polling-interval",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="poll mode: init_config polling_interval (default %(default)s)",
    )
    p.add_argument(
        "--max-api-calls-per-second",
        type=positive_float,
        default=2.0,
        metavar="N",
        help="poll mode: init_config max_api_calls_per_second (default %(default)s)",
    )
    p.add_argument(
        "--lookback",
        type=positive_int,
        default=600,
        metavar="SECONDS",
        help="poll mode: init_config lookback, judged against ingestion delays (default %(default)s)",
    )
    p.add_argument(
        "--window",
        type=positive_duration,
        default="1h",
        metavar="TIME",
        help=f"how far back to look for events (default %(default)s); TIME like {DURATION_FORMAT}",
    )
    p.add_argument(
        "--coordination-table",
        metavar="TABLE",
        help="also check this DynamoDB lease table (init_config coordination_table): exists, key schema, IAM",
    )
    p.add_argument("--coordination-endpoint-url", metavar="URL", help="DynamoDB endpoint override")
    p.set_defaults(func=main)


def format_results(results: list[CheckResult], marks: dict[str, str] = _MARKS) -> str:
    lines = []
    for r in results:
        line = f"{marks[r.status]} {r.name}"
        if r.detail:
            line += f": {r.detail}"
        lines.append(line)
        if r.fix:
            fix = r.fix.splitlines()
            lines.append(f"    fix: {fix[0]}")
            lines.extend(f"    {more}" for more in fix[1:])
    failed = sum(r.status == FAIL for r in results)
    skipped = sum(r.status == SKIP for r in results)
    if failed or skipped:
        lines.append(f"{failed} check(s) failed" + (f", {skipped} could not run" if skipped else ""))
    else:
        lines.append("all checks passed")
    return "\n".join(lines)


def _can_write(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def main(args: argparse.Namespace) -> int:
    if args.cluster.startswith("kinesis://"):
        return _main_stream(args)
    if is_many(args.cluster):
        return main_accounts(args, _print_block)
    problem = cluster_name_problem(args.cluster)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    options = Options(
        cluster=args.cluster,
        region=args.region or "",
        profile=args.profile or "",
        role_arn=args.role_arn or "",
        external_id=args.external_id or "",
        endpoint_url=args.endpoint_url or "",
        log_group=args.log_group or "",
        window_seconds=args.window,
        coordination_table=args.coordination_table or "",
        coordination_endpoint_url=args.coordination_endpoint_url or "",
        log_groups=len({args.cluster, *(c.strip() for c in args.clusters.split(",") if c.strip())}),
        polling_interval=args.polling_interval,
        max_api_calls_per_second=args.max_api_calls_per_second,
        lookback=args.lookback,
    )
    return _print(run_checks(options))


def _print_block(results: list[CheckResult]) -> int:
    """One cluster's block of a many-account check; the number of failed or skipped checks."""
    _print(results)
    return sum(r.status not in (PASS, WARN) for r in results)


def _print(results: list[CheckResult]) -> int:
    marks = _MARKS if _can_write("".join(_MARKS.values())) else ASCII_MARKS
    text = format_results(results, marks) + "\n"
    encoding = sys.stdout.encoding or "ascii"
    sys.stdout.write(text.encode(encoding, "replace").decode(encoding))  # AWS messages may hold anything
    return 0 if results and all(r.status in (PASS, WARN) for r in results) else 1


def _main_stream(args: argparse.Namespace) -> int:
    from k8saudit_eks_py.aws_setup.stream_check import StreamOptions, run_stream_checks

    options = StreamOptions(
        stream=args.cluster[len("kinesis://") :],
        clusters=tuple(c.strip() for c in args.clusters.split(",") if c.strip()),
        region=args.region or "",
        profile=args.profile or "",
        endpoint_url=args.endpoint_url or "",
        window_seconds=args.window,
        coordination_table=args.coordination_table or "",
        coordination_endpoint_url=args.coordination_endpoint_url or "",
    )
    return _print(run_stream_checks(options))
