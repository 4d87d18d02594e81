"""The lease table's key schema, how to tell a table that is not one, and the command that creates it."""

from __future__ import annotations

from typing import Any

from k8saudit_eks_py.coordination.lease import KEY
from k8saudit_eks_py.coordination.table import table_name

__all__ = ["ATTRIBUTES", "KEY_SCHEMA", "key_schema_problem", "setup_command"]

KEY_SCHEMA = [{"AttributeName": KEY, "KeyType": "HASH"}]
ATTRIBUTES = [{"AttributeName": KEY, "AttributeType": "S"}]


def setup_command(table: str, region: str) -> str:
    return f"k8saudit-eks-py setup-coordination --table {table_name(table)} --region {region}"


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
