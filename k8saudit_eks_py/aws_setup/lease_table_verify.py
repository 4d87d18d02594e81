"""Verifying the lease table when a source opens with coordination_table: an OpenError with the fix for
a missing, wrong or forbidden table (coordination/start.py calls verify_table)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from k8saudit_eks_py.aws_setup.aws_errors import error_kind, error_text
from k8saudit_eks_py.aws_setup.iam_policies import iam_statement
from k8saudit_eks_py.aws_setup.lease_table_schema import key_schema_problem, setup_command
from k8saudit_eks_py.coordination.table import table_name
from k8saudit_eks_py.errors import OpenError

__all__ = ["TableProblem", "describe_problem", "verify_table"]


@dataclass(frozen=True, slots=True)
class TableProblem:
    kind: str  # "missing" | "schema" | "denied" | "credentials" | "transient"
    message: str


def _problem(exc: BaseException, table: str, region: str) -> TableProblem:
    kind = error_kind(exc)
    name = table_name(table)
    if kind == "not_found":
        return TableProblem(
            "missing",
            f"coordination_table {name} not found in region {region} ({error_text(exc)}); create it with: "
            + setup_command(table, region),
        )
    if kind == "denied":
        return TableProblem(
            "denied",
            f"access denied to coordination_table {name} ({error_text(exc)}). The IAM identity Falco runs as "
            "needs this statement:\n" + json.dumps(iam_statement(table, region), indent=2),
        )
    if kind == "credentials":
        return TableProblem(
            "credentials",
            f"no usable AWS credentials for coordination_table {name} ({error_text(exc)}); the table is "
            "reached with the same credentials, role_arn and region as CloudWatch Logs",
        )
    return TableProblem("transient", f"coordination_table {name}: {error_text(exc)}")


def describe_problem(client: Any, table: str, region: str) -> TableProblem | None:
    try:
        description = client.describe_table(TableName=table)["Table"]
    except (ClientError, BotoCoreError) as exc:
        return _problem(exc, table, region)
    wrong = key_schema_problem(description)
    if wrong:
        return TableProblem(
            "schema",
            f"coordination_table {table_name(table)} is not a lease table: {wrong}. Point coordination_table "
            f"at another name and create it with: {setup_command(table, region)}",
        )
    return None


def verify_table(client: Any, table: str, region: str) -> None:
    """For the source's open: OpenError with the fix for a missing, wrong or forbidden table. Transient
    trouble (throttling, 5xx, network) passes: the Coordinator retries."""
    problem = describe_problem(client, table, region)
    if problem is not None and problem.kind != "transient":
        raise OpenError(problem.message)
