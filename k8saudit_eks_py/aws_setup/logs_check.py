"""The CloudWatch Logs checks of `check CLUSTER`: audit logging enabled (eks:DescribeCluster; AccessDenied
there only warns), logs:DescribeLogGroups and the log group, logs:DescribeLogStreams, logs:FilterLogEvents
and recent audit events. Each makes the call the plugin (or an operator) would make."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from k8saudit_eks_py.aws_setup.aws_errors import DENIED, error_code, error_message
from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, SKIP, WARN, CheckContext, shell_command
from k8saudit_eks_py.aws_setup.iam_policies import iam_policy

__all__ = [
    "AUDIT_STREAM_PREFIX",
    "check_audit_logging",
    "check_log_group",
    "check_recent_events",
    "enable_audit_command",
]

AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def enable_audit_command(cluster: str, region: str) -> str:
    logging = '{"clusterLogging":[{"types":["audit"],"enabled":true}]}'
    return shell_command(
        "aws", "eks", "update-cluster-config", "--name", cluster, "--region", region, "--logging", logging
    )


def _policy_fix(ctx: CheckContext, action: str) -> str:
    group_arn = f"arn:aws:logs:{ctx.region}:{ctx.account or '*'}:log-group:{ctx.log_group}:*"
    who = f" to {ctx.principal}" if ctx.principal else ""
    return f"allow {action}: attach this policy{who} (the IAM role the plugin runs as):\n" + json.dumps(
        iam_policy(group_arn), indent=2
    )


def check_audit_logging(ctx: CheckContext) -> None:
    name = f"EKS audit logging enabled on cluster {ctx.options.cluster}"
    enable = enable_audit_command(ctx.options.cluster, ctx.region)
    try:
        cluster = ctx.client("eks").describe_cluster(name=ctx.options.cluster)["cluster"]
    except _ERRORS as exc:
        code = error_code(exc)
        if code in DENIED:
            ctx.add(
                name,
                WARN,
                "not checked: eks:DescribeCluster is not allowed (optional; the plugin does not need it)",
            )
        elif code == "ResourceNotFoundException":
            ctx.add(
                name,
                FAIL,
                f"no cluster {ctx.options.cluster!r} in {ctx.region} (account {ctx.account})",
                "check the name and region: "
                + shell_command("aws", "eks", "list-clusters", "--region", ctx.region),
            )
        else:
            ctx.add(name, WARN, f"not checked: {error_message(exc)}")
        return
    enabled = [
        entry
        for entry in cluster.get("logging", {}).get("clusterLogging", [])
        if entry.get("enabled") and "audit" in entry.get("types", [])
    ]
    if enabled:
        ctx.add(name, PASS)
    else:
        ctx.add(name, FAIL, "the audit log type is disabled", f"enable it (takes a few minutes):\n{enable}")


def check_log_group(ctx: CheckContext) -> bool:
    logs = ctx.client("logs")
    try:
        groups = logs.describe_log_groups(logGroupNamePrefix=ctx.log_group).get("logGroups", [])
    except _ERRORS as exc:
        if error_code(exc) in DENIED:
            ctx.add(
                "IAM logs:DescribeLogGroups",
                FAIL,
                error_message(exc),
                _policy_fix(ctx, "logs:DescribeLogGroups"),
            )
        else:
            ctx.add(
                "IAM logs:DescribeLogGroups",
                FAIL,
                error_message(exc),
                "check network access to CloudWatch Logs",
            )
        ctx.add(f"log group {ctx.log_group} exists", SKIP, "needs logs:DescribeLogGroups")
        return False
    ctx.add("IAM logs:DescribeLogGroups", PASS, "allowed")
    if any(g.get("logGroupName") == ctx.log_group for g in groups):
        ctx.add(f"log group {ctx.log_group} exists", PASS)
        _check_describe_streams(ctx)
        return True
    ctx.add(
        f"log group {ctx.log_group} exists",
        FAIL,
        f"not found in account {ctx.account}, region {ctx.region}",
        "EKS creates it when control-plane logging is enabled; enable audit logging:\n"
        + enable_audit_command(ctx.options.cluster, ctx.region)
        + "\n(or pass --log-group if the audit log lives elsewhere, --region/--profile for another account)",
    )
    return False


def _check_describe_streams(ctx: CheckContext) -> None:
    """The plugin lists the group's streams to read each one from its own position."""
    name = "IAM logs:DescribeLogStreams"
    try:
        ctx.client("logs").describe_log_streams(logGroupName=ctx.log_group, limit=1)
    except _ERRORS as exc:
        denied = error_code(exc) in DENIED
        fix = _policy_fix(ctx, "logs:DescribeLogStreams") if denied else "check network access"
        ctx.add(name, FAIL, error_message(exc), fix)
        return
    ctx.add(name, PASS, "allowed")


def check_recent_events(ctx: CheckContext, group_exists: bool, clock: Callable[[], float]) -> None:
    o = ctx.options
    minutes = o.window_seconds // 60
    recent = f"recent audit events (last {minutes} min)"
    now_ms = int(clock() * 1000)
    kwargs: dict[str, Any] = {
        "logGroupName": ctx.log_group,
        "logStreamNamePrefix": AUDIT_STREAM_PREFIX,
        "startTime": now_ms - o.window_seconds * 1000,
        "endTime": now_ms,
    }
    logs = ctx.client("logs")
    found, newest, pages = 0, 0, 0
    delays: list[int] = []  # ingestionTime - timestamp (ms) of the audit events read
    try:
        while pages < o.max_pages:
            page = logs.filter_log_events(**kwargs)
            pages += 1
            for ev in page.get("events", []):
                # Filter by name here too: some endpoints ignore logStreamNamePrefix.
                if ev.get("logStreamName", "").startswith(AUDIT_STREAM_PREFIX):
                    found += 1
                    newest = max(newest, int(ev.get("timestamp", 0)))
                    if isinstance(ev.get("ingestionTime"), int):
                        delays.append(int(ev["ingestionTime"]) - int(ev.get("timestamp", 0)))
            token = page.get("nextToken")
            if found or not token:
                break
            kwargs["nextToken"] = token
    except _ERRORS as exc:
        code = error_code(exc)
        if code in DENIED:
            ctx.add(
                "IAM logs:FilterLogEvents",
                FAIL,
                error_message(exc),
                _policy_fix(ctx, "logs:FilterLogEvents"),
            )
            ctx.add(recent, SKIP, "needs logs:FilterLogEvents")
        elif code == "ResourceNotFoundException" and not group_exists:
            ctx.add("IAM logs:FilterLogEvents", SKIP, "the log group does not exist")
            ctx.add(recent, SKIP, "the log group does not exist")
        else:
            ctx.add(
                "IAM logs:FilterLogEvents",
                FAIL,
                error_message(exc),
                "check network access to CloudWatch Logs",
            )
            ctx.add(recent, SKIP, "FilterLogEvents failed")
        return
    ctx.add("IAM logs:FilterLogEvents", PASS, "allowed")
    if found:
        age = max(0, now_ms - newest) // 1000
        ctx.add(recent, PASS, f"newest {age}s ago" + (" (first page with events)" if pages > 1 else ""))
        if delays:
            check_ingestion_delay(ctx, delays)
    else:
        ctx.add(
            recent,
            FAIL,
            f"no event in streams {AUDIT_STREAM_PREFIX}-* of {ctx.log_group}",
            "audit events reach CloudWatch a few minutes after the API call; if audit logging is off, "
            "enable it:\n" + enable_audit_command(o.cluster, ctx.region),
        )


def check_ingestion_delay(ctx: CheckContext, delays_ms: list[int]) -> None:
    """How late CloudWatch ingested the events just read, against `lookback`: poll mode delivers an event
    that becomes visible up to lookback after its timestamp (its trailing sweep re-reads each 10 s of
    timestamps lookback + 5 s later), and counts and logs a later one as `events_too_late`. Ingestion is
    one part of the delay; how long CloudWatch then takes to make an event searchable is not visible here
    (the plugin's `disorder_max_seconds` metric shows what it met)."""
    lookback = ctx.options.lookback
    delays = sorted(max(0, d) for d in delays_ms)
    worst = delays[-1] / 1000
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] / 1000
    name = "ingestion delay (poll mode lookback)"
    detail = f"p99 {p99:.1f}s, max {worst:.1f}s over {len(delays)} events; lookback {lookback}s"
    raise_to = max(2 * lookback, int(4 * worst))
    if worst > lookback:
        ctx.add(
            name,
            FAIL,
            detail + ": events ingested later than lookback are not delivered in poll mode",
            f"set init_config lookback to {raise_to} (costs checkpoint size, not reads), or use stream mode "
            "(kinesis://STREAM reads in ingestion order)",
        )
    elif worst > lookback / 2:
        ctx.add(
            name,
            WARN,
            detail + ": less than half of lookback is left for CloudWatch's search delay",
            f"set init_config lookback to {raise_to}",
        )
    else:
        ctx.add(name, PASS, detail)
