"""`check`: run the preflight checks and print one ✓/✗ line per check with its fix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from k8saudit_eks_py.cli.options import DURATION_FORMAT, add_aws_options, positive_duration
from k8saudit_eks_py.preflight import FAIL, PASS, SKIP, WARN, CheckResult, Options, run_checks

__all__ = ["add_parser", "format_results"]

_MARKS = {PASS: "✓", FAIL: "✗", WARN: "!", SKIP: "-"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="verify credentials, IAM permissions and audit logging for a cluster",
        description="Makes the AWS calls the plugin needs and prints ✓/✗ per check with the fix. "
        "Exit status 0 only when every check passes (a '!' warning does not fail).",
    )
    p.add_argument("cluster", metavar="CLUSTER")
    add_aws_options(p)
    p.add_argument("--log-group", help="log group to check (default /aws/eks/CLUSTER/cluster)")
    p.add_argument(
        "--window",
        type=positive_duration,
        default="1h",
        metavar="TIME",
        help=f"how far back to look for events (default %(default)s); TIME like {DURATION_FORMAT}",
    )
    p.set_defaults(func=main)


def format_results(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        line = f"{_MARKS[r.status]} {r.name}"
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


def main(args: argparse.Namespace) -> int:
    options = Options(
        cluster=args.cluster,
        region=args.region or "",
        profile=args.profile or "",
        role_arn=args.role_arn or "",
        endpoint_url=args.endpoint_url or "",
        log_group=args.log_group or "",
        window_seconds=args.window,
    )
    results = run_checks(options)
    sys.stdout.write(format_results(results) + "\n")
    return 0 if results and all(r.status in (PASS, WARN) for r in results) else 1
