"""A moto server (in this process) whose Kinesis resharding behaves like AWS's.

moto's SplitShard moves the parent's records into the children and MergeShards copies them into the child,
new records may still land in a closed shard, and a closed shard keeps handing out iterators forever. AWS
keeps the records in the closed parent, starts the children empty, writes only to open shards, and answers
the GetRecords that reaches the end of a closed shard without a NextShardIterator. Those differences are
patched here: for the life of the context manager (moto in this process), or with `install()` in the process
that runs moto (tests.support.moto_main --aws-resharding). DynamoDB's writes are made atomic as well
(tests.support.atomic_dynamodb). A split or merge and every put or read of records take one lock: the
patches rewrite the shards' records after moto's split or merge, which must not race a concurrent put (a
record acknowledged into a new child would be wiped) or read (a closed parent seen empty would end early).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.kinesis import models
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.utilities.utils import md5_hash

from tests.support import atomic_dynamodb
from tests.support.moto_server import free_port

__all__ = ["aws_resharding_moto", "install", "uninstall"]


_LOCK = threading.RLock()


def _locked(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    return locked


@_locked
def _split(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
    shard = self.shards[shard_to_split]
    records = shard.records
    _ORIGINAL["split"](self, shard_to_split, new_starting_hash_key)
    # moto re-put the parent's records into the children: undo that, the parent keeps them.
    shard.records = records
    for child in self.shards.values():
        if child.parent == shard.shard_id:
            child.records = OrderedDict()


@_locked
def _merge(self: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    _ORIGINAL["merge"](self, shard_to_merge, adjacent_shard_to_merge)
    for child in self.shards.values():
        if child.parent == shard_to_merge and child.adjacent_parent == adjacent_shard_to_merge:
            child.records = OrderedDict()


@_locked
def _get_records(self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None) -> Any:
    nxt, records, behind = _ORIGINAL["get_records"](self, stream_arn, shard_iterator, limit)
    stream_name, shard_id, last = models.decompose_shard_iterator(shard_iterator)
    shard = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name or None).get_shard(shard_id)
    read_to = records[-1].sequence_number if records else int(last)
    if not shard.is_open and read_to >= shard.get_max_sequence_number():
        nxt = None  # the end of a closed shard
    return nxt, records, behind


def _shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
    shard = _ORIGINAL["shard_for_key"](self, partition_key, explicit_hash_key)  # validates the key too
    if shard is None or shard.is_open:
        return shard
    key = (
        int(explicit_hash_key) if explicit_hash_key else int(md5_hash(partition_key.encode()).hexdigest(), 16)
    )
    return next(
        (s for s in self.shards.values() if s.is_open and s.starting_hash <= key < s.ending_hash), None
    )


_ORIGINAL: dict[str, Any] = {}


def install() -> None:
    if _ORIGINAL:
        return
    _ORIGINAL.update(
        split=models.Stream.split_shard,
        merge=models.Stream.merge_shards,
        get_records=models.KinesisBackend.get_records,
        shard_for_key=models.Stream.get_shard_for_key,
        put_record=models.Stream.put_record,
    )
    models.Stream.put_record = _locked(_ORIGINAL["put_record"])  # type: ignore[method-assign]
    models.Stream.get_shard_for_key = _shard_for_key  # type: ignore[method-assign]
    models.Stream.split_shard = _split  # type: ignore[method-assign]
    models.Stream.merge_shards = _merge  # type: ignore[method-assign]
    models.KinesisBackend.get_records = _get_records  # type: ignore[method-assign]


def uninstall() -> None:
    if not _ORIGINAL:
        return
    models.Stream.split_shard = _ORIGINAL["split"]  # type: ignore[method-assign]
    models.Stream.merge_shards = _ORIGINAL["merge"]  # type: ignore[method-assign]
    models.KinesisBackend.get_records = _ORIGINAL["get_records"]  # type: ignore[method-assign]
    models.Stream.get_shard_for_key = _ORIGINAL["shard_for_key"]  # type: ignore[method-assign]
    models.Stream.put_record = _ORIGINAL["put_record"]  # type: ignore[method-assign]
    _ORIGINAL.clear()


@contextmanager
def aws_resharding_moto() -> Iterator[str]:
    """The URL of a moto server (in this process) with AWS's resharding behaviour and atomic DynamoDB."""
    install()
    atomic_dynamodb.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        uninstall()
        atomic_dynamodb.uninstall()
