"""moto's DynamoDB with DynamoDB's atomic conditional writes.

moto's server handles each request in its own thread, and its DynamoDB backend evaluates a write's condition
and then applies the write with no lock: two UpdateItems conditioned on the same owner and lease counter can
both pass their check before either writes, and both succeed (seen: two replicas each taking one free lease).
DynamoDB applies the writes to one item one at a time. `install()` serialises the backend's item operations
(reads too, so a read never sees half of an update) behind one lock, in the process that runs moto.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

__all__ = ["install", "uninstall"]

_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)
_LOCK = threading.RLock()
_ORIGINAL: dict[str, Callable[..., Any]] = {}


def _serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    return locked


def install() -> None:
    if _ORIGINAL:
        return
    for name in _OPERATIONS:
        _ORIGINAL[name] = getattr(DynamoDBBackend, name)
        setattr(DynamoDBBackend, name, _serialised(_ORIGINAL[name]))


def uninstall() -> None:
    for name, operation in _ORIGINAL.items():
        setattr(DynamoDBBackend, name, operation)
    _ORIGINAL.clear()
