"""Creating the lease table (setup-coordination) and verifying it at open and in `check`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from k8saudit_eks_py.aws import classify, describe
from k8saudit_eks_py.coordination.lease import KEY
from k8saudit_eks_py.coordination.table import table_name
from k8saudit_eks_py.errors import OpenError

__all__ = [
    "ACTIONS",
    "KEY_SCHEMA",
    "TableProblem",
    "create_table",
    "iam_statement",
    "key_schema_problem",
    "probe_actions",
    "verify_table",
]

KEY_SCHEMA = [{"AttributeName": KEY, "KeyType": "HASH"}]
ATTRIBUTES = [{"AttributeName": KEY, "AttributeType": "S"}]
# What the plugin does with the table (and what `check` probes).
ACTIONS = (
    "dynamodb:DescribeTable",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",  # presence items of replicas long gone (optional: without it they stay)
)
_PROBE_KEY = {KEY: {"S": "k8saudit-eks-py check probe (never created)"}}


@dataclass(frozen=True, slots=True)
class TableProblem:
    kind: str  # "missing" | "schema" | "denied" | "credentials" | "transient"
    message: str


def setup_command(table: str, region: str) -> str:
    return f"k8saudit-eks-py setup-coordination --table {table_name(table)} --region {region}"


def iam_statement(table: str, region: str, account: str = "*") -> dict[str, Any]:
    arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return {"Sid": "K8sAuditEksPyLeases", "Effect": "Allow", "Action": list(ACTIONS), "Resource": arn}


def key_schema_problem(description: dict[str, Any]) -> str | None:
    """Why the table's key schema is not the lease table's, or None when it is."""
    schema = description.get("KeySchema", [])
    types = {a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])}
    if schema == KEY_SCHEMA and types.get(KEY) == "S":
        return None
    shown = ", ".join(
        f"{k['AttributeName']} ({k['KeyType']}, {types.get(k['AttributeName'], '?')})" for k in schema
    )
    return f"key schema is {shown or 'unknown'}; a lease table has one string partition key named '{KEY}'"


_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def error_kind(exc: BaseException) -> str:
    """classify(), also reading a 403 with an XML body (some endpoints, moto among them, answer DynamoDB's
    JSON protocol that way) as access denied."""
    if isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
        return "denied"
    return classify(exc)


def error_text(exc: BaseException) -> str:
    """describe(), with the real code and message of an XML error body."""
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", ""))
        code, text = _XML_CODE.search(message), _XML_MESSAGE.search(message)
        if code:
            return f"{code.group(1)}: {text.group(1) if text else ''}".rstrip(": ")
    return describe(exc)


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


def create_table(client: Any, table: str, *, dry_run: bool = False) -> tuple[bool, str]:
    """(ok, what was done or would be done). Idempotent: an existing lease table is left as it is."""
    name = table_name(table)
    try:
        description = client.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if classify(exc) != "not_found":
            return False, f"cannot look up table {name}: {describe(exc)}"
        description = None
    if description is not None:
        wrong = key_schema_problem(description)
        if wrong:
            return False, f"table {name} exists but is not a lease table: {wrong}; choose another name"
        return True, f"table {name} already exists with the right key schema; nothing to do"
    plan = f"table {name} (partition key '{KEY}' string, on-demand billing)"
    if dry_run:
        return True, f"would create {plan}"
    try:
        client.create_table(
            TableName=name,
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceInUseException":
            return True, f"table {name} is being created by someone else; nothing to do"
        return False, f"cannot create table {name}: {describe(exc)}"
    return True, f"created {plan}"
