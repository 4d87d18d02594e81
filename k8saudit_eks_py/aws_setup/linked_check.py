"""`check` of a cluster in a linked account read with CloudWatch cross-account observability (no role): with
the monitoring account's own credentials, the log group is read by its ARN (logGroupIdentifier), as the
plugin reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import botocore.exceptions

from k8saudit_eks_py.aws_setup.account_check import check_credentials, check_region
from k8saudit_eks_py.aws_setup.aws_errors import DENIED, error_code, error_message
from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, SKIP, CheckContext, CheckResult, Options

__all__ = ["run_linked_checks"]

_AUDIT_PREFIX = "kube-apiserver-audit"


def run_linked_checks(
    options: Options,
    group_arn: str,
    session_factory: Callable[..., Any] = boto3.Session,
    clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    ctx = CheckContext(options)
    ctx.log_group = group_arn
    if not check_region(ctx, session_factory) or not check_credentials(ctx):
        return ctx.results
    account = group_arn.split(":")[4]
    name = f"linked log group {group_arn} readable"
    now_ms = int(clock() * 1000)
    try:
        logs = ctx.client("logs")
        logs.describe_log_streams(logGroupIdentifier=group_arn, limit=1)
        page = logs.filter_log_events(
            logGroupIdentifier=group_arn,
            logStreamNamePrefix=_AUDIT_PREFIX,
            startTime=now_ms - options.window_seconds * 1000,
            endTime=now_ms,
            limit=1,
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        code = error_code(exc)
        if code in DENIED or code == "ResourceNotFoundException":
            fix = (
                f"link account {account} to this monitoring account ({ctx.account}) with CloudWatch "
                "cross-account observability (an OAM sink here, a link there sharing "
                "AWS::Logs::LogGroup), and allow logs:FilterLogEvents and logs:DescribeLogStreams on "
                f"{group_arn}:* to {ctx.principal}; or read it through a role (cross_account: role)"
            )
        else:
            fix = "check network access to CloudWatch Logs"
        ctx.add(name, FAIL, error_message(exc), fix)
        ctx.add("recent audit events", SKIP, "the log group cannot be read")
        return ctx.results
    ctx.add(name, PASS, f"as {ctx.principal}")
    if page.get("events"):
        ctx.add(f"recent audit events (last {options.window_seconds // 60} min)", PASS)
    else:
        ctx.add(
            f"recent audit events (last {options.window_seconds // 60} min)",
            FAIL,
            f"no event in streams {_AUDIT_PREFIX}* of {group_arn}",
            f"is audit logging enabled on cluster {options.cluster} in account {account}?",
        )
    return ctx.results
