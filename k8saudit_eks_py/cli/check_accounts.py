"""`check` of clusters in many accounts and Regions (CLUSTER is a comma-separated list of names and ARNs):
one block per account and Region, as the plugin reads them (the role it would assume there, its clusters,
that account's share of its FilterLogEvents quota), each cluster's checks with their fixes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import orjson

from k8saudit_eks_py.account_roles import is_template, role_arns_problem, role_for, template_problem
from k8saudit_eks_py.aws_setup.check_context import PASS, WARN, CheckResult, Options
from k8saudit_eks_py.aws_setup.cluster_check import run_checks
from k8saudit_eks_py.aws_setup.linked_check import run_linked_checks
from k8saudit_eks_py.aws_setup.poll_capacity import capacity_problem, groups_served
from k8saudit_eks_py.cluster_refs import ClusterRef, parse_items

__all__ = ["is_many", "main_accounts"]


def is_many(text: str) -> bool:
    """A list of clusters, or a cluster named by ARN: checked per account and Region."""
    return "," in text or text.startswith("arn:")


def _roles(args: argparse.Namespace) -> tuple[str, dict[str, str]] | str:
    """(role_arn, role_arns), or the problem to print."""
    role_arn = args.role_arn or ""
    try:
        role_arns = orjson.loads(args.role_arns) if args.role_arns else {}
    except orjson.JSONDecodeError:
        return "--role-arns must be a JSON object of account id → role ARN"
    if not isinstance(role_arns, dict):
        return "--role-arns must be a JSON object of account id → role ARN"
    problem = template_problem(role_arn) or role_arns_problem(role_arns)
    if problem:
        return problem.replace("init_config key 'role_arn'", "--role-arn").replace(
            "init_config key 'role_arns'", "--role-arns"
        )
    return role_arn, role_arns


def main_accounts(args: argparse.Namespace, print_block: Callable[[list[CheckResult]], int]) -> int:
    try:
        refs = parse_items(args.cluster)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    roles = _roles(args)
    if isinstance(roles, str):
        print(f"error: {roles}", file=sys.stderr)
        return 2
    role_arn, role_arns = roles
    groups: dict[tuple[str, str], list[ClusterRef]] = {}
    for ref in refs:
        groups.setdefault((ref.account, ref.region or (args.region or "")), []).append(ref)
    failed = 0
    table_checked = False
    observability = args.cross_account == "observability"
    for (account, region), members in groups.items():
        if account:
            role = "" if observability else role_for(role_arn, role_arns, account, region)
            where = f"account {account} in {region}"
        else:
            role = "" if is_template(role_arn) else role_arn
            where = f"own account in {region or 'the default Region'}"
        names = ", ".join(r.name for r in members)
        linked = bool(account) and not role  # read by ARN with the plugin's own credentials
        how = role or ("own credentials, by ARN (observability)" if linked else "(own credentials)")
        print(f"== {where}: {len(members)} cluster(s) ({names}); role {how}")
        for index, ref in enumerate(members):
            lease_here = not account and not table_checked and bool(args.coordination_table)
            table_checked |= lease_here
            options = Options(
                cluster=ref.name,
                region=region,
                profile=args.profile or "",
                role_arn=role,
                external_id=args.external_id or "",
                endpoint_url=args.endpoint_url or "",
                window_seconds=args.window,
                coordination_table=args.coordination_table if lease_here else "",
                coordination_endpoint_url=args.coordination_endpoint_url or "",
                log_groups=len(members),
                polling_interval=args.polling_interval,
                max_api_calls_per_second=args.max_api_calls_per_second,
            )
            results = run_linked_checks(options, ref.log_group_arn) if linked else run_checks(options)
            if index == len(members) - 1:
                results.append(_quota_share(len(members), args))
            print(f"-- cluster {ref.name}")
            failed += print_block(results)
    if args.coordination_table and not table_checked:
        print(
            f"! lease table {args.coordination_table}: not checked (no cluster of the plugin's own account); "
            f"run `check OWN-CLUSTER --coordination-table {args.coordination_table}` with Falco's credentials"
        )
    return 1 if failed else 0


def _quota_share(groups: int, args: argparse.Namespace) -> CheckResult:
    cap, interval = args.max_api_calls_per_second, args.polling_interval
    served = groups_served(cap, interval)
    problem = capacity_problem(groups, cap, interval)
    status = WARN if problem else PASS
    detail = f"{groups} of about {served} busy log groups its FilterLogEvents cap of {cap:g}/s serves"
    return CheckResult("quota share of this account and Region", status, detail, problem or "")
