"""cluster_check.run_checks with botocore Stubber: every AWS answer maps to the right ✓/✗/! and fix."""

from __future__ import annotations

import json
import shlex
from typing import Any

import boto3
from botocore.stub import Stubber

from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, SKIP, WARN, CheckResult, Options
from k8saudit_eks_py.aws_setup.cluster_check import run_checks
from k8saudit_eks_py.aws_setup.logs_check import enable_audit_command
from k8saudit_eks_py.cli.check import ASCII_MARKS, format_results

NOW = 1_800_000_000.0
GROUP = "/aws/eks/prod/cluster"


class StubbedSession:
    """A boto3 session whose clients are real botocore clients answered by Stubbers."""

    def __init__(self, region: str = "eu-west-1") -> None:
        self.region_name = region
        self.stubs: dict[str, Stubber] = {}
        self.clients: dict[str, Any] = {}
        for service in ("sts", "eks", "logs"):
            client = boto3.client(
                service, region_name=region or "eu-west-1", aws_access_key_id="t", aws_secret_access_key="t"
            )
            self.clients[service] = client
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()

    def client(self, service: str, **_: Any) -> Any:
        return self.clients[service]


def identity(stub: Stubber) -> None:
    stub.add_response(
        "get_caller_identity",
        {"Account": "123456789012", "Arn": "arn:aws:sts::123456789012:assumed-role/falco/x", "UserId": "u"},
    )


def cluster(stub: Stubber, types: list[str], enabled: bool = True) -> None:
    stub.add_response(
        "describe_cluster",
        {"cluster": {"name": "prod", "logging": {"clusterLogging": [{"types": types, "enabled": enabled}]}}},
        {"name": "prod"},
    )


def groups(stub: Stubber, names: list[str]) -> None:
    stub.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": n} for n in names]},
        {"logGroupNamePrefix": GROUP},
    )
    if GROUP in names:  # the group exists: DescribeLogStreams is checked next
        stub.add_response("describe_log_streams", {"logStreams": []}, {"logGroupName": GROUP, "limit": 1})


def filter_page(
    stub: Stubber, events: list[dict[str, Any]], token: str | None = None, after: str | None = None
) -> None:
    """One FilterLogEvents answer; `after` = the nextToken this request must carry."""
    page: dict[str, Any] = {"events": events}
    if token:
        page["nextToken"] = token
    expected: dict[str, Any] = {
        "logGroupName": GROUP,
        "logStreamNamePrefix": "kube-apiserver-audit",
        "startTime": int(NOW * 1000) - 3600_000,
        "endTime": int(NOW * 1000),
    }
    if after:
        expected["nextToken"] = after
    stub.add_response("filter_log_events", page, expected)


def run(session: StubbedSession, **opts: Any) -> list[tuple[str, str]]:
    results = run_checks(
        Options(cluster="prod", **opts), session_factory=lambda **_: session, clock=lambda: NOW
    )
    for stub in session.stubs.values():
        stub.assert_no_pending_responses()
    return [(r.name, r.status) for r in results]


AUDIT = {"logStreamName": "kube-apiserver-audit-" + "a" * 32, "timestamp": int(NOW * 1000) - 90_000}


def test_all_pass() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["api", "audit"])
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [AUDIT])
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert [r.status for r in results] == [PASS] * 8
    text = format_results(results)
    assert "✓ recent audit events (last 60 min): newest 90s ago" in text
    assert text.endswith("all checks passed")


def test_describe_cluster_denied_is_a_warning_not_a_failure() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    s.stubs["eks"].add_client_error("describe_cluster", "AccessDeniedException", "not authorized", 403)
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [AUDIT])
    got = dict(run(s))
    assert got["EKS audit logging enabled on cluster prod"] == WARN
    assert [v for v in got.values() if v != PASS] == [WARN]


def test_audit_logging_disabled_gives_the_update_command() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["api", "audit"], enabled=False)
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [])
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    failed = {r.name: r for r in results if r.status == FAIL}
    assert set(failed) == {"EKS audit logging enabled on cluster prod", "recent audit events (last 60 min)"}
    command = (
        "aws eks update-cluster-config --name prod --region eu-west-1 "
        """--logging '{"clusterLogging":[{"types":["audit"],"enabled":true}]}'"""
    )
    assert command in failed["EKS audit logging enabled on cluster prod"].fix
    assert command in failed["recent audit events (last 60 min)"].fix


def test_filter_denied_prints_a_policy_for_this_log_group_and_the_caller() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["audit"])
    groups(s.stubs["logs"], [GROUP])
    s.stubs["logs"].add_client_error(
        "filter_log_events", "AccessDeniedException", "User x is not authorized", 400
    )
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    by_name = {r.name: r for r in results}
    denied = by_name["IAM logs:FilterLogEvents"]
    assert denied.status == FAIL
    assert "arn:aws:sts::123456789012:assumed-role/falco/x" in denied.fix
    policy = json.loads(denied.fix[denied.fix.index("{") :])
    assert policy["Statement"][0]["Action"] == ["logs:FilterLogEvents", "logs:DescribeLogStreams"]
    assert policy["Statement"][0]["Resource"] == f"arn:aws:logs:eu-west-1:123456789012:log-group:{GROUP}:*"
    assert by_name["recent audit events (last 60 min)"].status == SKIP


def test_missing_log_group_and_unknown_cluster() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    s.stubs["eks"].add_client_error("describe_cluster", "ResourceNotFoundException", "No cluster found", 404)
    groups(s.stubs["logs"], ["/aws/eks/prod/cluster-old"])  # a prefix match is not the group
    s.stubs["logs"].add_client_error("filter_log_events", "ResourceNotFoundException", "missing", 400)
    got = dict(run(s))
    assert got == {
        "AWS region": PASS,
        "AWS credentials": PASS,
        "EKS audit logging enabled on cluster prod": FAIL,
        "IAM logs:DescribeLogGroups": PASS,
        f"log group {GROUP} exists": FAIL,
        "IAM logs:FilterLogEvents": SKIP,
        "recent audit events (last 60 min)": SKIP,
    }


def test_only_non_audit_streams_is_a_failure() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["audit"])
    groups(s.stubs["logs"], [GROUP])
    # Some endpoints ignore logStreamNamePrefix: other streams must not count as audit events.
    filter_page(s.stubs["logs"], [{**AUDIT, "logStreamName": "authenticator-" + "b" * 32}])
    assert dict(run(s))["recent audit events (last 60 min)"] == FAIL


def test_events_found_on_a_later_page() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["audit"])
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [], token="t1")  # AWS may return an empty page with a token
    filter_page(s.stubs["logs"], [AUDIT], after="t1")
    assert dict(run(s))["recent audit events (last 60 min)"] == PASS


def test_bad_credentials_stop_early() -> None:
    s = StubbedSession()
    s.stubs["sts"].add_client_error("get_caller_identity", "ExpiredToken", "The security token expired", 403)
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert [(r.name, r.status) for r in results] == [
        ("AWS region", PASS),
        ("AWS credentials", FAIL),
        *LATER_CHECKS,
    ]
    assert "refresh or replace" in results[1].fix
    assert {r.detail for r in results[2:]} == {"needs AWS credentials"}
    assert format_results(results).splitlines()[-1] == "1 check(s) failed, 5 could not run"


def test_no_region() -> None:
    s = StubbedSession(region="")
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert [(r.name, r.status) for r in results] == [
        ("AWS region", FAIL),
        ("AWS credentials", SKIP),
        *LATER_CHECKS,
    ]
    assert "--region" in results[0].fix


LATER_CHECKS = [
    ("EKS audit logging enabled on cluster prod", SKIP),
    ("IAM logs:DescribeLogGroups", SKIP),
    (f"log group {GROUP} exists", SKIP),
    ("IAM logs:FilterLogEvents", SKIP),
    ("recent audit events (last 60 min)", SKIP),
]


def test_unknown_region_fails_and_the_rest_could_not_run() -> None:
    s = StubbedSession(region="mars-north-9")
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert [(r.name, r.status) for r in results] == [
        ("AWS region", FAIL),
        ("AWS credentials", SKIP),
        *LATER_CHECKS,
    ]
    assert results[0].detail.startswith("'mars-north-9' is not an AWS region")
    s = StubbedSession(region="euwest-1")
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert results[0].status == FAIL and "did you mean eu-west-1?" in results[0].detail


def test_a_region_newer_than_botocore_only_warns() -> None:
    s = StubbedSession(region="eu-west-9")  # shaped like an aws-partition region, not (yet) in the list
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["audit"])
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [AUDIT])
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    assert (results[0].status, results[1].status) == (WARN, PASS)
    assert "upgrade boto3" in results[0].detail


def test_fix_commands_are_quoted_for_the_shell() -> None:
    command = enable_audit_command("prod", "eu-west-1")
    assert command == (
        "aws eks update-cluster-config --name prod --region eu-west-1 "
        """--logging '{"clusterLogging":[{"types":["audit"],"enabled":true}]}'"""
    )
    odd = enable_audit_command("a b;rm -rf ~", "eu-west-1")
    assert shlex.split(odd)[4] == "a b;rm -rf ~"


def test_ascii_marks_when_the_output_cannot_show_check_marks() -> None:
    results = [CheckResult("AWS region", PASS, "eu-west-1"), CheckResult("AWS credentials", FAIL, "none")]
    text = format_results(results, ASCII_MARKS)
    assert text.splitlines()[:2] == ["+ AWS region: eu-west-1", "x AWS credentials: none"]
    text.encode("ascii")


def test_xml_error_bodies_are_understood() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["audit"])
    body = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>not authorized to perform: "
    body += "logs:DescribeLogGroups</Message></Error></Errors></ErrorResponse>"
    s.stubs["logs"].add_client_error("describe_log_groups", "403", body, 403)
    filter_page(s.stubs["logs"], [AUDIT])
    results = run_checks(Options(cluster="prod"), session_factory=lambda **_: s, clock=lambda: NOW)
    denied = next(r for r in results if r.name == "IAM logs:DescribeLogGroups")
    assert denied.status == FAIL
    assert denied.detail == "AccessDenied: not authorized to perform: logs:DescribeLogGroups"
    assert "logs:DescribeLogGroups" in denied.fix


def test_more_clusters_than_the_cap_serves_is_a_warning_saying_what_to_change() -> None:
    s = StubbedSession()
    identity(s.stubs["sts"])
    cluster(s.stubs["eks"], ["api", "audit"])
    groups(s.stubs["logs"], [GROUP])
    filter_page(s.stubs["logs"], [AUDIT])
    options = Options(cluster="prod", log_groups=30, polling_interval=5, max_api_calls_per_second=2)
    results = run_checks(options, session_factory=lambda **_: s, clock=lambda: NOW)
    assert [r.status for r in results] == [PASS] * 8 + [WARN]
    text = format_results(results)
    assert "! poll mode capacity (30 log groups): max_api_calls_per_second 2 at polling_interval 5s " in text
    assert "serves about 17 busy log groups and 636 events/s" in text
    assert "Raise max_api_calls_per_second to 3.5" in text and "raise polling_interval to 10" in text
    assert "stream mode" in text and text.endswith("all checks passed")
