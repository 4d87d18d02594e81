"""The lease table's DynamoDB operations: every write is conditional on the owner and the lease counter.

Operations raise LeaseLost when the condition fails (someone else moved the lease) and let every other
botocore error through: the Coordinator retries those with backoff.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
from botocore.exceptions import ClientError

from k8saudit_eks_py.checkpoint_store import UnitState, encode_state
from k8saudit_eks_py.coordination.lease import (
    CHECKPOINT,
    COUNTER,
    HANDOFF_TO,
    KEY,
    ORIGIN,
    OWNER,
    OWNER_SWITCHES,
    Lease,
    from_item,
    presence_key,
)

__all__ = ["LeaseLost", "LeaseTable", "table_name"]


class LeaseLost(Exception):
    """A conditional write found the lease owned by someone else or with another counter."""

    def __init__(self, unit: str) -> None:
        super().__init__(f"lease on {unit} moved to another replica")
        self.unit = unit


def table_name(table: str) -> str:
    """The table name of `table` given as a name or an ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)."""
    if table.startswith("arn:"):
        return table.split(":table/", 1)[-1].split("/", 1)[0]
    return table


class LeaseTable:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        # DynamoDB takes a table ARN wherever it takes a name: an ARN reaches a table in another account.
        self.name = table
        self._calls = 0
        self._calls_lock = threading.Lock()
        # Every HTTP attempt counts (api_calls_dynamodb), whichever thread sends it.
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, **_: Any) -> None:
        with self._calls_lock:
            self._calls += 1

    @property
    def calls(self) -> int:
        return self._calls

    def _update(self, unit: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self.client.update_item(
                TableName=self.name, Key={KEY: {"S": unit}}, ReturnValues="ALL_NEW", **kwargs
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise LeaseLost(unit) from None
            raise
        return dict(answer.get("Attributes", {}))

    def scan(self) -> list[Lease]:
        """Every lease, read consistently (a table holds one item per cluster or shard: a few pages)."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            leases.extend(from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return leases
            kwargs["ExclusiveStartKey"] = last

    def ensure(self, unit: str) -> None:
        """Create the unit's free lease unless it exists (every replica may race to do so)."""
        try:
            self.client.put_item(
                TableName=self.name,
                Item={KEY: {"S": unit}, OWNER: {"S": ""}, COUNTER: {"N": "0"}, OWNER_SWITCHES: {"N": "0"}},
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": KEY},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def take(self, lease: Lease, me: str, origin: UnitState | None = None) -> Lease:
        """Own a free or expired lease as last seen (owner and counter unchanged since). `origin` is
        recorded in the same write unless the unit already has one: the first take decides it."""
        sets = "#o = :me, #c = #c + :one, #s = #s + :one"
        names = {"#o": OWNER, "#c": COUNTER, "#s": OWNER_SWITCHES, "#h": HANDOFF_TO}
        values = {
            ":me": {"S": me},
            ":old": {"S": lease.owner},
            ":counter": {"N": str(lease.counter)},
            ":one": {"N": "1"},
        }
        if origin is not None:
            sets += ", #or = if_not_exists(#or, :origin)"
            names["#or"] = ORIGIN
            values[":origin"] = {"S": encode_state(lease.unit, origin).decode()}
        return from_item(
            self._update(
                lease.unit,
                UpdateExpression=f"SET {sets} REMOVE #h",
                ConditionExpression="#o = :old AND #c = :counter",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )

    def renew(self, unit: str, me: str, counter: int) -> Lease:
        """Bump the counter of a lease this replica holds; the answer tells whether a hand-over is asked."""
        return from_item(
            self._update(
                unit,
                UpdateExpression="SET #c = #c + :one",
                ConditionExpression="#o = :me AND #c = :counter",
                ExpressionAttributeNames={"#o": OWNER, "#c": COUNTER},
                ExpressionAttributeValues={
                    ":me": {"S": me},
                    ":counter": {"N": str(counter)},
                    ":one": {"N": "1"},
                },
            )
        )

    def request_handoff(self, lease: Lease, me: str) -> None:
        """Ask the live owner of `lease` to hand it over at its next renewal (the counter is left alone,
        so the owner keeps its lease, and its right to deliver, until it hands over). Conditional on the
        owner and on the request seen: of two replicas asking for one lease at once, one wins and the
        other asks for another, instead of the later silently replacing the earlier. Not on the counter:
        the owner renews every period, and rounds of equal periods keep their phase, so a request that
        found the counter moved between the scan and the write would find it moved again every round."""
        self._update(
            lease.unit,
            UpdateExpression="SET #h = :me",
            ConditionExpression="#o = :old AND "
            + ("(attribute_not_exists(#h) OR #h = :seen)" if not lease.handoff_to else "#h = :seen"),
            ExpressionAttributeNames={"#o": OWNER, "#h": HANDOFF_TO},
            ExpressionAttributeValues={
                ":me": {"S": me},
                ":old": {"S": lease.owner},
                ":seen": {"S": lease.handoff_to},
            },
        )

    def hand_over(self, unit: str, me: str, counter: int, to: str) -> Lease:
        """Give a held lease to `to` (balancing: "" releases it for anyone, e.g. on close)."""
        return from_item(
            self._update(
                unit,
                UpdateExpression="SET #o = :to, #c = #c + :one, #s = #s + :one REMOVE #h",
                ConditionExpression="#o = :me AND #c = :counter",
                ExpressionAttributeNames={
                    "#o": OWNER,
                    "#c": COUNTER,
                    "#s": OWNER_SWITCHES,
                    "#h": HANDOFF_TO,
                },
                ExpressionAttributeValues={
                    ":me": {"S": me},
                    ":to": {"S": to},
                    ":counter": {"N": str(counter)},
                    ":one": {"N": "1"},
                },
            )
        )

    def save_checkpoint(self, unit: str, me: str, counter: int, state: UnitState) -> None:
        """Store the unit's state if this replica still holds the lease with this counter (fencing)."""
        text = encode_state(unit, state).decode()
        self._update(
            unit,
            UpdateExpression="SET #cp = :state",
            ConditionExpression="#o = :me AND #c = :counter",
            ExpressionAttributeNames={"#o": OWNER, "#c": COUNTER, "#cp": CHECKPOINT},
            ExpressionAttributeValues={
                ":me": {"S": me},
                ":counter": {"N": str(counter)},
                ":state": {"S": text},
            },
        )

    def announce(self, me: str) -> None:
        """Bump this replica's presence item (created on first use): others count it as live while its
        counter moves, before they decide how many units each replica should hold."""
        self.client.update_item(
            TableName=self.name,
            Key={KEY: {"S": presence_key(me)}},
            UpdateExpression="SET #o = :me, #c = if_not_exists(#c, :zero) + :one",
            ExpressionAttributeNames={"#o": OWNER, "#c": COUNTER},
            ExpressionAttributeValues={":me": {"S": me}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    def withdraw(self, me: str) -> None:
        """Mark this replica's presence item as gone (a clean close: the others rebalance at once)."""
        self.client.update_item(
            TableName=self.name,
            Key={KEY: {"S": presence_key(me)}},
            UpdateExpression="SET #o = :gone, #c = if_not_exists(#c, :zero) + :one",
            ExpressionAttributeNames={"#o": OWNER, "#c": COUNTER},
            ExpressionAttributeValues={":gone": {"S": ""}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    def forget(self, key: str, counter: int) -> None:
        """Delete a presence item unless it moved since seen (a replica that left or died long ago)."""
        try:
            self.client.delete_item(
                TableName=self.name,
                Key={KEY: {"S": key}},
                ConditionExpression="#c = :counter",
                ExpressionAttributeNames={"#c": COUNTER},
                ExpressionAttributeValues={":counter": {"N": str(counter)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def get(self, unit: str) -> Lease | None:
        answer = self.client.get_item(TableName=self.name, Key={KEY: {"S": unit}}, ConsistentRead=True)
        item = answer.get("Item")
        return from_item(item) if item else None

    def load_checkpoint(self, unit: str) -> UnitState | None:
        answer = self.client.get_item(TableName=self.name, Key={KEY: {"S": unit}}, ConsistentRead=True)
        item = answer.get("Item")
        if not item or CHECKPOINT not in item:
            return None
        state = orjson.loads(item[CHECKPOINT]["S"])
        return state if isinstance(state, dict) else None
