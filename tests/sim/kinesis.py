"""A simulated Kinesis stream fed by a CloudWatch Logs subscription, and the client the real source reads.

Shards own hash-key ranges; a record goes to the open shard covering its hash key. A split closes a shard
(it gets an EndingSequenceNumber) and opens two children naming it as ParentShardId; a merge closes two
adjacent shards and opens one child naming both (ParentShardId, AdjacentParentShardId). Sequence numbers
grow across the stream. GetShardIterator takes AT_TIMESTAMP (arrival time), AFTER_SEQUENCE_NUMBER,
AT_SEQUENCE_NUMBER and TRIM_HORIZON; GetRecords answers a few records at a time, and no NextShardIterator
once a closed shard is read to its end. Each record's data is a real subscription message (gzip JSON).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["SimKinesisClient", "SimStream", "subscription_record"]

HASH_MAX = 2**128 - 1


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    arrival_ms: int
    data: bytes


@dataclass
class Shard:
    shard_id: str
    lo: int
    hi: int
    parents: tuple[str, ...]
    start_seq: int
    end_seq: int | None = None
    records: list[Record] = field(default_factory=list)

    def listing(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ShardId": self.shard_id,
            "HashKeyRange": {"StartingHashKey": str(self.lo), "EndingHashKey": str(self.hi)},
            "SequenceNumberRange": {"StartingSequenceNumber": str(self.start_seq)},
        }
        if self.end_seq is not None:
            out["SequenceNumberRange"]["EndingSequenceNumber"] = str(self.end_seq)
        if self.parents:
            out["ParentShardId"] = self.parents[0]
        if len(self.parents) > 1:
            out["AdjacentParentShardId"] = self.parents[1]
        return out


def subscription_record(log_group: str, log_stream: str, events: list[tuple[str, int, str]]) -> bytes:
    """The gzip JSON a CloudWatch Logs subscription filter writes: events are (id, timestamp ms, message)."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["falco"],
        "logEvents": [{"id": i, "timestamp": ts, "message": m} for i, ts, m in events],
    }
    return gzip.compress(orjson.dumps(doc), compresslevel=1, mtime=0)


class SimStream:
    def __init__(self, name: str, shards: int) -> None:
        self.name = name
        self.shards: dict[str, Shard] = {}
        self._next_shard = 0
        self._seq = 1000
        width = (HASH_MAX + 1) // shards
        for i in range(shards):
            hi = HASH_MAX if i == shards - 1 else (i + 1) * width - 1
            self._open(i * width, hi, ())

    def _open(self, lo: int, hi: int, parents: tuple[str, ...]) -> Shard:
        shard = Shard(f"shardId-{self._next_shard:012d}", lo, hi, parents, self._seq)
        self._next_shard += 1
        self.shards[shard.shard_id] = shard
        return shard

    def open_shards(self) -> list[Shard]:
        return sorted((s for s in self.shards.values() if s.end_seq is None), key=lambda s: s.lo)

    def put(self, hash_key: int, data: bytes, now_ms: int) -> Shard:
        shard = next(s for s in self.open_shards() if s.lo <= hash_key <= s.hi)
        self._seq += 1
        shard.records.append(Record(self._seq, now_ms, data))
        return shard

    def _close(self, shard: Shard) -> None:
        self._seq += 1
        shard.end_seq = self._seq

    def split(self, shard_id: str) -> list[Shard]:
        parent = self.shards[shard_id]
        mid = (parent.lo + parent.hi) // 2
        self._close(parent)
        return [self._open(parent.lo, mid, (shard_id,)), self._open(mid + 1, parent.hi, (shard_id,))]

    def merge(self, left_id: str, right_id: str) -> Shard:
        left, right = self.shards[left_id], self.shards[right_id]
        assert left.hi + 1 == right.lo, "merged shards must be adjacent"
        self._close(left)
        self._close(right)
        return self._open(left.lo, right.hi, (left_id, right_id))


class SimKinesisClient:
    def __init__(
        self,
        stream: SimStream,
        now_ms: Callable[[], int],
        page_records: int = 5,
        fault: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.stream = stream
        self.now_ms = now_ms
        self.page_records = page_records
        self.fault = fault  # raises the error a call gets (throttling), given the operation
        self.calls = 0

    def list_shards(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.fault("ListShards")
        shards = sorted(self.stream.shards.values(), key=lambda s: s.shard_id)
        offset = int(kwargs.get("NextToken") or 0)
        page = shards[offset : offset + 3]
        answer: dict[str, Any] = {"Shards": [s.listing() for s in page]}
        if offset + 3 < len(shards):
            answer["NextToken"] = str(offset + 3)
        return answer

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.fault("GetShardIterator")
        shard = self.stream.shards[kwargs["ShardId"]]
        kind = kwargs["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            index = 0
        elif kind == "AT_TIMESTAMP":
            ts_ms = int(float(kwargs["Timestamp"]) * 1000)
            index = next(
                (i for i, r in enumerate(shard.records) if r.arrival_ms >= ts_ms), len(shard.records)
            )
        elif kind in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"):
            seq = int(kwargs["StartingSequenceNumber"])
            index = next(
                (
                    i
                    for i, r in enumerate(shard.records)
                    if (r.seq > seq if kind == "AFTER_SEQUENCE_NUMBER" else r.seq >= seq)
                ),
                len(shard.records),
            )
        else:
            raise ValueError(f"iterator type {kind} is not modelled")
        return {"ShardIterator": f"{shard.shard_id}|{index}"}

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.fault("GetRecords")
        shard_id, index_text = str(kwargs["ShardIterator"]).split("|")
        shard, index = self.stream.shards[shard_id], int(index_text)
        limit = min(int(kwargs.get("Limit") or self.page_records), self.page_records)
        page = shard.records[index : index + limit]
        end = index + len(page)
        answer: dict[str, Any] = {
            "Records": [
                {
                    "SequenceNumber": str(r.seq),
                    "Data": r.data,
                    "ApproximateArrivalTimestamp": r.arrival_ms / 1000,
                    "PartitionKey": "k",
                }
                for r in page
            ],
            "MillisBehindLatest": 0
            if end >= len(shard.records)
            else self.now_ms() - shard.records[end].arrival_ms,
        }
        if shard.end_seq is None or end < len(shard.records):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer

    def close(self) -> None:
        pass
