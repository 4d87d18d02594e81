"""`check` logic: real AWS calls that prove the plugin can read a cluster's audit log, each with its fix.

Every check makes the call the plugin (or an operator) would make and maps the answer to a result:
region, credentials (sts:GetCallerIdentity), the optional assumed role, audit logging enabled
(eks:DescribeCluster; AccessDenied there only warns), logs:DescribeLogGroups and the log group,
logs:DescribeLogStreams, logs:FilterLogEvents and recent audit events. CloudWatch calls go to
`endpoint_url` when given (as in the plugin); STS and EKS use boto3's normal endpoint resolution
(AWS_ENDPOINT_URL_STS, _EKS, AWS_ENDPOINT_URL). With a coordination table, preflight_coordination.py adds
its checks (DynamoDB: coordination_endpoint_url or boto3's resolution, AWS_ENDPOINT_URL_DYNAMODB included).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from k8saudit_eks_py.eks_names import region_problem
from k8saudit_eks_py.poll_capacity import capacity_problem, events_served, groups_served
from k8saudit_eks_py.preflight_coordination import coordination_results

__all__ = [
    "AUDIT_STREAM_PREFIX",
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "CheckResult",
    "Options",
    "enable_audit_command",
    "iam_policy",
    "run_checks",
]

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
}
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # PASS | FAIL | WARN | SKIP
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Options:
    cluster: str
    region: str = ""
    profile: str = ""
    role_arn: str = ""
    endpoint_url: str = ""
    log_group: str = ""
    window_seconds: int = 3600  # how far back "recent audit events" looks
    max_pages: int = 20  # FilterLogEvents pages read at most while looking for them
    coordination_table: str = ""  # checked (exists, key schema, IAM actions) when set
    coordination_endpoint_url: str = ""
    log_groups: int = 1  # clusters one Falco reads in poll mode (the capacity check)
    polling_interval: float = 5.0
    max_api_calls_per_second: float = 2.0


def _command(*argv: str) -> str:
    """A command line to paste into a shell: every argument quoted as needed."""
    return shlex.join(argv)


def enable_audit_command(cluster: str, region: str) -> str:
    logging = '{"clusterLogging":[{"types":["audit"],"enabled":true}]}'
    return _command(
        "aws", "eks", "update-cluster-config", "--name", cluster, "--region", region, "--logging", logging
    )


def iam_policy(log_group_arn: str = "arn:aws:logs:*:*:log-group:/aws/eks/*/cluster:*") -> dict[str, Any]:
    """Least privilege for the plugin (+ the optional eks:DescribeCluster that `check` uses)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadEksAuditLogs",
                "Effect": "Allow",
                "Action": ["logs:FilterLogEvents", "logs:DescribeLogStreams"],
                "Resource": log_group_arn,
            },
            {
                # A list call: CloudWatch Logs authorizes it on the account's log-group ARNs, not a name.
                "Sid": "FindTheLogGroup",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": "arn:aws:logs:*:*:log-group:*",
            },
            {
                "Sid": "OptionalCheckAuditLoggingIsEnabled",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": "arn:aws:eks:*:*:cluster/*",
            },
        ],
    }


def _error(exc: BaseException) -> tuple[str, str]:
    """(code, message) of an AWS error. Some endpoints (moto, proxies) answer a JSON-protocol call with an
    XML error body that botocore cannot parse: then the code is the HTTP status and the body is the
    message, so look for the real <Code>/<Message> inside it."""
    if not isinstance(exc, botocore.exceptions.ClientError):
        return "", f"{type(exc).__name__}: {exc}"
    err = exc.response.get("Error", {})
    code, message = str(err.get("Code", "")), str(err.get("Message", ""))
    inner = _XML_CODE.search(message)
    if inner:
        code = inner.group(1)
        found = _XML_MESSAGE.search(message)
        message = found.group(1) if found else ""
    if code.isdigit() and int(code) == 403 and not inner:
        code = "AccessDenied"
    return code, f"{code}: {message}" if message else code


def _code(exc: BaseException) -> str:
    return _error(exc)[0]


def _message(exc: BaseException) -> str:
    return _error(exc)[1]


@dataclass
class _Context:
    options: Options
    session: Any = None
    region: str = ""
    account: str = ""
    principal: str = ""
    log_group: str = ""
    results: list[CheckResult] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str = "", fix: str = "") -> CheckResult:
        result = CheckResult(name, status, detail, fix)
        self.results.append(result)
        return result

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"config": _CLIENT_CONFIG}
        if service == "logs" and self.options.endpoint_url:
            kwargs["endpoint_url"] = self.options.endpoint_url
        return self.session.client(service, **kwargs)

    def policy_fix(self, action: str) -> str:
        group_arn = f"arn:aws:logs:{self.region}:{self.account or '*'}:log-group:{self.log_group}:*"
        who = f" to {self.principal}" if self.principal else ""
        return f"allow {action}: attach this policy{who} (the IAM role the plugin runs as):\n" + json.dumps(
            iam_policy(group_arn), indent=2
        )


def _check_region(ctx: _Context, session_factory: Callable[..., Any]) -> bool:
    o = ctx.options
    try:
        ctx.session = session_factory(profile_name=o.profile or None, region_name=o.region or None)
    except botocore.exceptions.ProfileNotFound as exc:
        ctx.add(
            "AWS profile", FAIL, str(exc), "pass an existing --profile (see `aws configure list-profiles`)"
        )
        return False
    ctx.region = ctx.session.region_name or ""
    if not ctx.region:
        ctx.add("AWS region", FAIL, "no region configured", "pass --region REGION or set AWS_REGION")
        return False
    problem = region_problem(ctx.region)
    if problem is None:
        ctx.add("AWS region", PASS, ctx.region)
        return True
    fatal, why = problem
    if not fatal:
        ctx.add("AWS region", WARN, why)
        return True
    ctx.add("AWS region", FAIL, why, "pass --region with the cluster's region, e.g. --region eu-west-1")
    return False


def _check_credentials(ctx: _Context) -> bool:
    try:
        identity = ctx.client("sts").get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        ctx.add(
            "AWS credentials",
            FAIL,
            "no credentials found",
            "on EKS: annotate the Falco service account with eks.amazonaws.com/role-arn (IRSA) or use "
            "EKS Pod Identity; elsewhere: set AWS_PROFILE, run `aws sso login` or `aws configure`",
        )
        return False
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fix = "refresh or replace the credentials (expired session? wrong keys?)"
        if _code(exc) not in _BAD_CREDENTIALS:
            fix = "check network access to STS and the credentials in use"
        ctx.add("AWS credentials", FAIL, _message(exc), fix)
        return False
    ctx.account, ctx.principal = identity.get("Account", ""), identity.get("Arn", "")
    ctx.add("AWS credentials", PASS, f"{ctx.principal} (account {ctx.account})")
    return True


def _check_assume_role(ctx: _Context, session_factory: Callable[..., Any]) -> bool:
    o = ctx.options
    try:
        creds = ctx.client("sts").assume_role(RoleArn=o.role_arn, RoleSessionName="k8saudit-eks-py-check")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ctx.principal or "<caller ARN>"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        ctx.add(
            f"assume role {o.role_arn}",
            FAIL,
            _message(exc),
            f"allow sts:AssumeRole on {o.role_arn} for {ctx.principal}, and let the role trust it:\n"
            + json.dumps(trust, indent=2),
        )
        return False
    c = creds["Credentials"]
    ctx.session = session_factory(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=ctx.region,
    )
    ctx.principal = creds.get("AssumedRoleUser", {}).get("Arn", o.role_arn)
    ctx.add(f"assume role {o.role_arn}", PASS, ctx.principal)
    return True


def _check_audit_logging(ctx: _Context) -> None:
    name = f"EKS audit logging enabled on cluster {ctx.options.cluster}"
    enable = enable_audit_command(ctx.options.cluster, ctx.region)
    try:
        cluster = ctx.client("eks").describe_cluster(name=ctx.options.cluster)["cluster"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        code = _code(exc)
        if code in _DENIED:
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
                + _command("aws", "eks", "list-clusters", "--region", ctx.region),
            )
        else:
            ctx.add(name, WARN, f"not checked: {_message(exc)}")
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


def _check_log_group(ctx: _Context) -> bool:
    logs = ctx.client("logs")
    try:
        groups = logs.describe_log_groups(logGroupNamePrefix=ctx.log_group).get("logGroups", [])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if _code(exc) in _DENIED:
            ctx.add(
                "IAM logs:DescribeLogGroups", FAIL, _message(exc), ctx.policy_fix("logs:DescribeLogGroups")
            )
        else:
            ctx.add(
                "IAM logs:DescribeLogGroups", FAIL, _message(exc), "check network access to CloudWatch Logs"
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


def _check_describe_streams(ctx: _Context) -> None:
    """The plugin lists the group's streams to read each one from its own position."""
    name = "IAM logs:DescribeLogStreams"
    try:
        ctx.client("logs").describe_log_streams(logGroupName=ctx.log_group, limit=1)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fix = ctx.policy_fix("logs:DescribeLogStreams") if _code(exc) in _DENIED else "check network access"
        ctx.add(name, FAIL, _message(exc), fix)
        return
    ctx.add(name, PASS, "allowed")


def _check_recent_events(ctx: _Context, group_exists: bool, clock: Callable[[], float]) -> None:
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
    try:
        while pages < o.max_pages:
            page = logs.filter_log_events(**kwargs)
            pages += 1
            for ev in page.get("events", []):
                # Filter by name here too: some endpoints ignore logStreamNamePrefix.
                if ev.get("logStreamName", "").startswith(AUDIT_STREAM_PREFIX):
                    found += 1
                    newest = max(newest, int(ev.get("timestamp", 0)))
            token = page.get("nextToken")
            if found or not token:
                break
            kwargs["nextToken"] = token
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        code = _code(exc)
        if code in _DENIED:
            ctx.add("IAM logs:FilterLogEvents", FAIL, _message(exc), ctx.policy_fix("logs:FilterLogEvents"))
            ctx.add(recent, SKIP, "needs logs:FilterLogEvents")
        elif code == "ResourceNotFoundException" and not group_exists:
            ctx.add("IAM logs:FilterLogEvents", SKIP, "the log group does not exist")
            ctx.add(recent, SKIP, "the log group does not exist")
        else:
            ctx.add(
                "IAM logs:FilterLogEvents", FAIL, _message(exc), "check network access to CloudWatch Logs"
            )
            ctx.add(recent, SKIP, "FilterLogEvents failed")
        return
    ctx.add("IAM logs:FilterLogEvents", PASS, "allowed")
    if found:
        age = max(0, now_ms - newest) // 1000
        ctx.add(recent, PASS, f"newest {age}s ago" + (" (first page with events)" if pages > 1 else ""))
    else:
        ctx.add(
            recent,
            FAIL,
            f"no event in streams {AUDIT_STREAM_PREFIX}-* of {ctx.log_group}",
            "audit events reach CloudWatch a few minutes after the API call; if audit logging is off, "
            "enable it:\n" + enable_audit_command(o.cluster, ctx.region),
        )


def run_checks(
    options: Options,
    session_factory: Callable[..., Any] = boto3.Session,
    clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    """All checks in order; a check whose prerequisite failed is reported as skipped."""
    ctx = _Context(options)
    ctx.log_group = options.log_group or f"/aws/eks/{options.cluster}/cluster"
    if not _check_region(ctx, session_factory):
        return _could_not_run(ctx, "AWS credentials", "needs a valid AWS region")
    if not _check_credentials(ctx):
        return _could_not_run(ctx, _after_credentials(ctx), "needs AWS credentials")
    if options.role_arn and not _check_assume_role(ctx, session_factory):
        return _could_not_run(ctx, "EKS audit logging", f"needs the role {options.role_arn}")
    _check_audit_logging(ctx)
    group_exists = _check_log_group(ctx)
    _check_recent_events(ctx, group_exists, clock)
    if options.coordination_table:
        _check_coordination(ctx)
    _check_capacity(ctx)
    return ctx.results


def _check_capacity(ctx: _Context) -> None:
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


def _check_coordination(ctx: _Context) -> None:
    endpoint = (
        {"endpoint_url": ctx.options.coordination_endpoint_url}
        if ctx.options.coordination_endpoint_url
        else {}
    )
    dynamodb = ctx.session.client("dynamodb", config=_CLIENT_CONFIG, **endpoint)
    for row in coordination_results(dynamodb, ctx.options.coordination_table, ctx.region, ctx.account):
        ctx.add(*row)


def _check_names(ctx: _Context) -> list[str]:
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


def _after_credentials(ctx: _Context) -> str:
    return f"assume role {ctx.options.role_arn}" if ctx.options.role_arn else "EKS audit logging"


def _could_not_run(ctx: _Context, first: str, why: str) -> list[CheckResult]:
    """List the checks from the one named like `first` on as could-not-run, so the user sees them all."""
    names = _check_names(ctx)
    start = next(i for i, name in enumerate(names) if name.startswith(first))
    for name in names[start:]:
        ctx.add(name, SKIP, why)
    return ctx.results
