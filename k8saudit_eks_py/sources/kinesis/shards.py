"""Which Kinesis shards to read, and where each one starts: the one place that decides.

A shard is a self-contained work unit with its own checkpoint state (a small dict, see `Position`):

  {"after": SEQ}                 every log event of record SEQ and before was delivered
  {"at": SEQ, "skip": N}         record SEQ's first N log events were delivered (a batch ended inside it)
  {"finished": true}             the shard is closed and everything in it was delivered
  plus "since": MS               the AT_TIMESTAMP its lineage started from (children of a shard start there)
  and "parents": [ID, ...]       its parent shards (ListShards' ParentShardId / AdjacentParentShardId)

Rule: a child shard is read only after each of its parents is finished (its saved state says so), so the
order of a partition key survives a split or a merge. Parents no longer listed (past retention) count as
finished. With one process every eligible shard is read; with replicas a coordinator chooses among them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Position", "ShardInfo", "eligible", "iterator_args", "parse_shards", "unit_key"]

UnitState = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ShardInfo:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool  # has an EndingSequenceNumber: no new records will come


@dataclass(frozen=True, slots=True)
class Position:
    """A point in a shard, comparable within one reading: (record ordinal, log events delivered of it)."""

    seq: str | None  # None: nothing read yet
    skip: int  # 0: the whole record `seq` is behind us; > 0: that many of its log events are
    ordinal: int  # records read before this one in this process (orders positions cheaply)

    def state(self) -> UnitState:
        if self.seq is None:
            return {}
        return {"after": self.seq} if self.skip == 0 else {"at": self.seq, "skip": self.skip}


def unit_key(stream: str, shard_id: str) -> str:
    """The checkpoint key of one shard (the stream by name or ARN, as open_params gave it)."""
    return f"kinesis|{stream}|{shard_id}"


def parse_shards(listed: list[dict[str, Any]]) -> list[ShardInfo]:
    shards = []
    for s in listed:
        parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
        ending = (s.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
        shards.append(ShardInfo(str(s["ShardId"]), parents, bool(ending)))
    return shards


def is_finished(state: UnitState | None) -> bool:
    return bool(state and state.get("finished"))


def eligible(shards: list[ShardInfo], states: Mapping[str, UnitState | None]) -> list[ShardInfo]:
    """The shards to read now: not finished, and every listed parent finished. `states` maps shard ids to
    their saved states (missing or None: never saved)."""
    listed = {s.shard_id for s in shards}
    out = []
    for s in shards:
        if is_finished(states.get(s.shard_id)):
            continue
        if all(p not in listed or is_finished(states.get(p)) for p in s.parents):
            out.append(s)
    return out


def start_since(shard: ShardInfo, states: Mapping[str, UnitState | None], default_ms: int) -> int:
    """The AT_TIMESTAMP of a shard without a state: its parents' (a child continues its parents' reading),
    else `default_ms` (now - shift at open)."""
    inherited = [
        int(st["since"])
        for p in shard.parents
        if (st := states.get(p)) is not None and isinstance(st.get("since"), int)
    ]
    return min(inherited) if inherited else default_ms


def iterator_args(state: UnitState | None, since_ms: int) -> tuple[dict[str, Any], int]:
    """GetShardIterator arguments resuming at `state` (or AT_TIMESTAMP since_ms), and how many log events
    of the first record returned were already delivered."""
    if state and isinstance(state.get("after"), str):
        return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": state["after"]}, 0
    if state and isinstance(state.get("at"), str):
        skip = state.get("skip")
        return (
            {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": state["at"]},
            skip if isinstance(skip, int) and skip > 0 else 0,
        )
    return {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": since_ms / 1000}, 0
