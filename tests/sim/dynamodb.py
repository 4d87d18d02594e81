"""An in-memory DynamoDB lease table and the per-replica client that the real LeaseTable uses unchanged.

`Table.execute` is one request applied atomically: UpdateItem / PutItem / DeleteItem / GetItem / Scan with
the expressions of expressions.py, ConditionalCheckFailedException when a condition fails, ValidationException
for a malformed request, Scan pages of a few items (a multi-page scan is not a snapshot, as in DynamoDB).

`Network.request` is what a call goes through, in virtual time: the request travels (latency), is applied at
one instant, the answer travels back. Faults are drawn from the run's seeded RNG: a throttled request
(ProvisionedThroughputExceededException / ThrottlingException) or a 500 (InternalServerError, applied or
not: DynamoDB leaves it open) fails fast; a lost request or a lost answer (applied) ends in a
ReadTimeoutError after the client's read timeout; a replica cut off from DynamoDB gets
EndpointConnectionError after its connect timeout for every call. Every applied write is recorded
(`Table.history`) for the checkers.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from tests.sim.expressions import (
    Context,
    DynamoError,
    Item,
    apply_update,
    holds,
    parse_condition,
    parse_update,
)
from tests.sim.kernel import Kernel

__all__ = ["Faults", "Network", "SimDynamoClient", "Table", "Write"]

ENDPOINT = "https://dynamodb.sim.invalid"


@dataclass(frozen=True, slots=True)
class Write:
    time: float
    replica: str
    op: str
    key: str
    before: Item | None
    after: Item | None


def _copy(item: Item | None) -> Item | None:
    """Items are never changed in place (a write stores a new dict; typed values are shared, never
    mutated), so a shallow copy is a snapshot."""
    return None if item is None else dict(item)


class Table:
    def __init__(self, name: str, key: str = "unit", page_items: int = 3) -> None:
        self.name = name
        self.key = key
        self.page_items = page_items
        self.items: dict[str, Item] = {}
        self.history: list[Write] = []
        self.on_write: Callable[[Write], None] | None = None
        self._orders: dict[str, tuple[int, str]] = {}

    def _key_of(self, params: dict[str, Any], field_name: str = "Key") -> str:
        key = params.get(field_name)
        if not isinstance(key, dict) or set(key) != {self.key} or "S" not in key[self.key]:
            raise DynamoError("ValidationException", "The provided key element does not match the schema")
        return str(key[self.key]["S"])

    def _record(
        self, now: float, replica: str, op: str, key: str, before: Item | None, after: Item | None
    ) -> None:
        write = Write(now, replica, op, key, before, after)
        self.history.append(write)
        if self.on_write is not None:
            self.on_write(write)

    def execute(self, now: float, replica: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("TableName") != self.name:
            raise DynamoError("ResourceNotFoundException", "Requested resource not found")
        handler = {
            "UpdateItem": self._update,
            "PutItem": self._put,
            "DeleteItem": self._delete,
            "GetItem": self._get,
            "Scan": self._scan,
        }.get(op)
        if handler is None:
            raise DynamoError("UnknownOperationException", f"{op} is not modelled by the simulation")
        return handler(now, replica, params)

    def _context(self, params: dict[str, Any], *placeholder_sets: frozenset[str]) -> Context:
        ctx = Context(params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues"))
        for placeholders in placeholder_sets:
            ctx.use(placeholders)
        ctx.check_all_used()
        return ctx

    def _check(self, params: dict[str, Any], item: Item, ctx: Context) -> None:
        text = params.get("ConditionExpression")
        if text is not None and not holds(parse_condition(text).tree, item, ctx):
            raise DynamoError("ConditionalCheckFailedException", "The conditional request failed")

    def _update(self, now: float, replica: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key_of(params)
        update = parse_update(str(params.get("UpdateExpression", "")))
        cond = params.get("ConditionExpression")
        ctx = self._context(
            params, update.placeholders, *([parse_condition(cond).placeholders] if cond else [])
        )
        before = self.items.get(key)
        current = before if before is not None else {self.key: {"S": key}}
        self._check(params, before or {}, ctx)
        after = apply_update(update, current, ctx, frozenset({self.key}))
        self.items[key] = after
        self._record(now, replica, "UpdateItem", key, before, after)
        returns = params.get("ReturnValues", "NONE")
        if returns == "ALL_NEW":
            return {"Attributes": _copy(after)}
        if returns == "NONE":
            return {}
        raise DynamoError("ValidationException", f"ReturnValues {returns} is not modelled by the simulation")

    def _put(self, now: float, replica: str, params: dict[str, Any]) -> dict[str, Any]:
        item = params.get("Item")
        if not isinstance(item, dict):
            raise DynamoError("ValidationException", "Item is missing")
        key = self._key_of({"Key": {self.key: item.get(self.key)}})
        cond = params.get("ConditionExpression")
        ctx = self._context(params, *([parse_condition(cond).placeholders] if cond else []))
        before = self.items.get(key)
        self._check(params, before or {}, ctx)
        self.items[key] = _copy(item) or {}
        self._record(now, replica, "PutItem", key, before, item)
        return {}

    def _delete(self, now: float, replica: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key_of(params)
        cond = params.get("ConditionExpression")
        ctx = self._context(params, *([parse_condition(cond).placeholders] if cond else []))
        before = self.items.get(key)
        self._check(params, before or {}, ctx)
        if before is not None:
            del self.items[key]
            self._record(now, replica, "DeleteItem", key, before, None)
        return {}

    def _get(self, now: float, replica: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key_of(params)
        self._context(params)
        item = self.items.get(key)
        return {} if item is None else {"Item": _copy(item)}

    def _order(self, key: str) -> tuple[int, str]:
        """DynamoDB scans in the order of its keys' hashes, not of the keys."""
        order = self._orders.get(key)
        if order is None:
            order = self._orders[key] = (zlib.crc32(key.encode()), key)
        return order

    def _scan(self, now: float, replica: str, params: dict[str, Any]) -> dict[str, Any]:
        self._context(params)
        keys = sorted(self.items, key=self._order)
        start = params.get("ExclusiveStartKey")
        if start is not None:
            after = self._order(self._key_of({"Key": start}))
            keys = [k for k in keys if self._order(k) > after]
        limit = min(int(params.get("Limit", self.page_items)), self.page_items)
        page = keys[:limit]
        answer: dict[str, Any] = {
            "Items": [_copy(self.items[k]) for k in page],
            "Count": len(page),
            "ScannedCount": len(page),
        }
        if len(keys) > limit:
            answer["LastEvaluatedKey"] = {self.key: {"S": page[-1]}}
        return answer


@dataclass
class Faults:
    """Probabilities per request (the world turns them on and off along the schedule)."""

    throttle: float = 0.0
    server_error: float = 0.0
    lost_request: float = 0.0
    lost_answer: float = 0.0


@dataclass
class Network:
    kernel: Kernel
    table: Table
    rng: random.Random
    latency: tuple[float, float] = (0.002, 0.03)  # one way, seconds
    faults: Faults = field(default_factory=Faults)
    cut: set[str] = field(default_factory=set)  # replicas that cannot reach DynamoDB
    calls: int = 0
    fault_counts: dict[str, int] = field(default_factory=dict)
    on_failure: Callable[[str], None] | None = None  # told the replica whose call failed

    def _count(self, what: str, replica: str) -> None:
        self.fault_counts[what] = self.fault_counts.get(what, 0) + 1
        if self.on_failure is not None:
            self.on_failure(replica)

    def _error(self, op: str, code: str, message: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
        )

    def request(self, replica: str, op: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One call, in virtual time. The request, once sent, is applied by "DynamoDB" at its arrival
        whatever happens to the caller meanwhile (paused, killed): only the answer waits for it."""
        k, rng, f = self.kernel, self.rng, self.faults
        self.calls += 1
        if replica in self.cut:
            self._count("cut", replica)
            k.sleep(timeout)
            raise EndpointConnectionError(endpoint_url=ENDPOINT)
        there, back = rng.uniform(*self.latency), rng.uniform(*self.latency)
        roll = rng.random()
        if roll < f.throttle:
            self._count("throttle", replica)
            k.sleep(there + back)
            code = rng.choice(("ProvisionedThroughputExceededException", "ThrottlingException"))
            raise self._error(op, code, "Rate of requests exceeds the allowed throughput", 400)
        roll -= f.throttle
        server_error = roll < f.server_error
        roll -= f.server_error
        lost_request = not server_error and roll < f.lost_request
        lost_answer = not server_error and not lost_request and roll - f.lost_request < f.lost_answer
        applies = not lost_request and (not server_error or rng.random() < 0.5)
        outcome: dict[str, Any] = {}

        def arrive() -> None:
            if replica in self.cut:  # cut off while the request was on its way
                outcome["lost"] = True
                return
            try:
                outcome["answer"] = self.table.execute(k.now, replica, op, params)
            except DynamoError as exc:
                outcome["error"] = exc

        if applies:
            k.at(k.now + there, "dynamodb", arrive)
        if server_error:
            k.sleep(there + back)
            self._count("500 applied" if applies else "500", replica)
            raise self._error(op, "InternalServerError", "Internal server error", 500)
        if lost_request or lost_answer:
            k.sleep(timeout)
            self._count("lost answer" if lost_answer else "lost request", replica)
            raise ReadTimeoutError(endpoint_url=ENDPOINT)
        k.sleep(there + back)
        if "error" in outcome:
            exc = outcome["error"]
            raise self._error(op, exc.code, exc.message, exc.status)
        if "answer" not in outcome or replica in self.cut:
            k.sleep(max(0.0, timeout - there - back))
            self._count("lost request" if "answer" not in outcome else "lost answer", replica)
            raise ReadTimeoutError(endpoint_url=ENDPOINT)
        return dict(outcome["answer"])


class _Events:
    """client.meta.events: LeaseTable registers its call counter on before-send."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[..., Any]]] = {}

    def register(self, name: str, handler: Callable[..., Any]) -> None:
        self.handlers.setdefault(name, []).append(handler)

    def emit(self, name: str) -> None:
        for handler in self.handlers.get(name, []):
            handler(event_name=name)


class _Meta:
    def __init__(self) -> None:
        self.events = _Events()


class SimDynamoClient:
    """The boto3 DynamoDB client methods the lease table calls, for one replica."""

    def __init__(self, network: Network, replica: str, timeout: float) -> None:
        self.network = network
        self.replica = replica
        self.timeout = timeout  # connect and read timeout, as coordination/start.py sets them
        self.meta = _Meta()

    def _call(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        self.meta.events.emit("before-send.dynamodb")
        return self.network.request(self.replica, op, params, self.timeout)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self._call("UpdateItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._call("PutItem", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        return self._call("DeleteItem", params)

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("GetItem", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self._call("Scan", params)

    def close(self) -> None:
        pass
