"""`check` for coordination_table: the lease table exists, has the right key schema, and the IAM actions
the plugin uses on it are allowed (each probed with a harmless real call, as preflight.py does for Logs)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from k8saudit_eks_py.coordination.table import table_name
from k8saudit_eks_py.coordination.table_setup import (
    error_kind,
    error_text,
    iam_statement,
    key_schema_problem,
    probe_actions,
    setup_command,
)

__all__ = ["Row", "coordination_results"]

PASS, FAIL = "pass", "fail"  # the statuses of preflight.py
Row = tuple[str, str, str, str]  # (name, status, detail, fix)


def coordination_results(client: Any, table: str, region: str, account: str) -> list[Row]:
    name = f"coordination table {table_name(table)}"
    rows: list[Row] = []
    try:
        description = client.describe_table(TableName=table)["Table"]
    except (ClientError, BotoCoreError) as exc:
        if error_kind(exc) == "not_found":
            return [(name, FAIL, f"not found in {region}", f"create it:\n{setup_command(table, region)}")]
        if error_kind(exc) != "denied":
            return [(name, FAIL, error_text(exc), "check network access to DynamoDB and coordination_table")]
    else:
        wrong = key_schema_problem(description)
        if wrong:  # probing item actions on another key schema would only report validation errors
            fix = "point coordination_table at a new table: " + setup_command(
                f"{table_name(table)}-leases", region
            )
            return [(name, FAIL, wrong, fix)]
        rows.append((name, PASS, "exists, key schema ok", ""))
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [iam_statement(table, region, account or "*")]}, indent=2
    )
    fixed = False
    for action, error in probe_actions(client, table).items():
        if error is None:
            rows.append((f"IAM {action}", PASS, "allowed", ""))
        else:
            fix = "" if fixed else "attach this policy to the IAM role the plugin runs as:\n" + policy
            rows.append((f"IAM {action}", FAIL, error, fix))
            fixed = True
    return rows
