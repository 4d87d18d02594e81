"""`check --coordination-table`: the lease table exists, has the right key schema, and the IAM actions
the plugin uses on it are allowed (each probed with a harmless real call, as logs_check.py does for Logs).
DynamoDB is reached at coordination_endpoint_url, else by boto3's resolution (AWS_ENDPOINT_URL_DYNAMODB)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from k8saudit_eks_py.aws import describe
from k8saudit_eks_py.aws_setup.aws_errors import error_kind, error_text
from k8saudit_eks_py.aws_setup.check_context import CLIENT_CONFIG, FAIL, PASS, CheckContext
from k8saudit_eks_py.aws_setup.iam_policies import iam_statement
from k8saudit_eks_py.aws_setup.lease_table_schema import key_schema_problem, setup_command
from k8saudit_eks_py.coordination.lease import KEY
from k8saudit_eks_py.coordination.table import table_name

__all__ = ["Row", "check_lease_table", "coordination_results", "probe_actions"]

Row = tuple[str, str, str, str]  # (name, status, detail, fix)
_PROBE_KEY = {KEY: {"S": "k8saudit-eks-py check probe (never created)"}}


def check_lease_table(ctx: CheckContext) -> None:
    """Add the lease table's rows to a `check` run (cluster or stream) whose credentials passed."""
    endpoint = (
        {"endpoint_url": ctx.options.coordination_endpoint_url}
        if ctx.options.coordination_endpoint_url
        else {}
    )
    dynamodb = ctx.session.client("dynamodb", config=CLIENT_CONFIG, **endpoint)
    for row in coordination_results(dynamodb, ctx.options.coordination_table, ctx.region, ctx.account):
        ctx.add(*row)


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


def probe_actions(client: Any, table: str) -> dict[str, str | None]:
    """action -> None when allowed, else the error. Writes are conditional on a key that never exists, so
    an allowed write answers ConditionalCheckFailedException and changes nothing."""
    name = table  # a name or an ARN, as the plugin uses it
    never = {"ConditionExpression": "attribute_exists(#k)", "ExpressionAttributeNames": {"#k": KEY}}
    calls: dict[str, Any] = {
        "dynamodb:DescribeTable": lambda: client.describe_table(TableName=name),
        "dynamodb:Scan": lambda: client.scan(TableName=name, Limit=1),
        "dynamodb:GetItem": lambda: client.get_item(TableName=name, Key=_PROBE_KEY),
        "dynamodb:PutItem": lambda: client.put_item(TableName=name, Item=_PROBE_KEY, **never),
        "dynamodb:UpdateItem": lambda: client.update_item(
            TableName=name,
            Key=_PROBE_KEY,
            UpdateExpression="SET #o = :o",
            ExpressionAttributeValues={":o": {"S": ""}},
            **{**never, "ExpressionAttributeNames": {"#k": KEY, "#o": "owner"}},
        ),
        "dynamodb:DeleteItem": lambda: client.delete_item(TableName=name, Key=_PROBE_KEY, **never),
    }
    results: dict[str, str | None] = {}
    for action, call in calls.items():
        try:
            call()
            results[action] = None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            results[action] = None if code == "ConditionalCheckFailedException" else error_text(exc)
        except BotoCoreError as exc:
            results[action] = describe(exc)
    return results
