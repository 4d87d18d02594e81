"""`check CLUSTER` (poll mode): every check in order, a check whose prerequisite failed reported as
could-not-run, then the lease table when --coordination-table is given and the capacity warning.

Order: region, credentials, the optional assumed role (account_check.py), audit logging, log group,
Logs IAM actions and recent events (logs_check.py), the lease table (lease_table_check.py: DynamoDB at
coordination_endpoint_url or boto3's resolution, AWS_ENDPOINT_URL_DYNAMODB included), the capacity of
the FilterLogEvents cap (poll_capacity.py, no AWS call).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3

from k8saudit_eks_py.aws_setup.account_check import check_assume_role, check_credentials, check_region
from k8saudit_eks_py.aws_setup.check_context import SKIP, WARN, CheckContext, CheckResult, Options
from k8saudit_eks_py.aws_setup.lease_table_check import check_lease_table
from k8saudit_eks_py.aws_setup.logs_check import check_audit_logging, check_log_group, check_recent_events
from k8saudit_eks_py.aws_setup.poll_capacity import capacity_problem, events_served, groups_served

__all__ = ["run_checks"]


def run_checks(
    options: Options,
    session_factory: Callable[..., Any] = boto3.Session,
    clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    """All checks in order; a check whose prerequisite failed is reported as skipped."""
    ctx = CheckContext(options)
    ctx.log_group = options.log_group or f"/aws/eks/{options.cluster}/cluster"
    if not check_region(ctx, session_factory):
        return _could_not_run(ctx, "AWS credentials", "needs a valid AWS region")
    if not check_credentials(ctx):
        return _could_not_run(ctx, _after_credentials(ctx), "needs AWS credentials")
    if options.role_arn and not check_assume_role(ctx, session_factory):
        return _could_not_run(ctx, "EKS audit logging", f"needs the role {options.role_arn}")
    check_audit_logging(ctx)
    group_exists = check_log_group(ctx)
    check_recent_events(ctx, group_exists, clock)
    if options.coordination_table:
        check_lease_table(ctx)
    _check_capacity(ctx)
    return ctx.results


def _check_capacity(ctx: CheckContext) -> None:
    """A warning (no AWS call) when the clusters cannot all be polled often enough under the cap."""
    o = ctx.options
    problem = capacity_problem(o.log_groups, o.max_api_calls_per_second, o.polling_interval)
    if problem:
        served = groups_served(o.max_api_calls_per_second, o.polling_interval)
        ctx.add(
            f"poll mode capacity ({o.log_groups} log groups)",
            WARN,
            f"max_api_calls_per_second {o.max_api_calls_per_second:g} at polling_interval "
            f"{o.polling_interval:g}s serves about {served} busy log groups and "
            f"{events_served(o.max_api_calls_per_second):,} events/s",
            problem,
        )


def _check_names(ctx: CheckContext) -> list[str]:
    """The names of every check, in the order run_checks makes them."""
    names = ["AWS credentials"]
    if ctx.options.role_arn:
        names.append(f"assume role {ctx.options.role_arn}")
    return [
        *names,
        f"EKS audit logging enabled on cluster {ctx.options.cluster}",
        "IAM logs:DescribeLogGroups",
        f"log group {ctx.log_group} exists",
        "IAM logs:FilterLogEvents",
        f"recent audit events (last {ctx.options.window_seconds // 60} min)",
    ]


def _after_credentials(ctx: CheckContext) -> str:
    return f"assume role {ctx.options.role_arn}" if ctx.options.role_arn else "EKS audit logging"


def _could_not_run(ctx: CheckContext, first: str, why: str) -> list[CheckResult]:
    """List the checks from the one named like `first` on as could-not-run, so the user sees them all."""
    names = _check_names(ctx)
    start = next(i for i, name in enumerate(names) if name.startswith(first))
    for name in names[start:]:
        ctx.add(name, SKIP, why)
    return ctx.results
