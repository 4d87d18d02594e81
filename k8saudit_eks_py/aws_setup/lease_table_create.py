"""`setup-coordination`: create the lease table, idempotently (or only say what would be done)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from k8saudit_eks_py.aws import classify, describe
from k8saudit_eks_py.aws_setup.lease_table_schema import ATTRIBUTES, KEY_SCHEMA, key_schema_problem
from k8saudit_eks_py.coordination.lease import KEY
from k8saudit_eks_py.coordination.table import table_name

__all__ = ["create_table"]


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
