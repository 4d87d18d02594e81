"""One Kinesis shard being read: its iterator, its pacing, and the positions that become its checkpoint.

The reader thread owns the iterator and the read position; next_batch (Falco's thread) owns the delivered
position; both change under the source's lock. Positions order by (record ordinal, log events of it), so
"what was delivered" never goes backwards whatever order the two threads touch them in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from k8saudit_eks_py.sources.kinesis.shards import Position, ShardInfo, UnitState, iterator_args

__all__ = ["ReaderPacing", "ShardReader", "after_key"]

NOTHING = Position(None, 0, -1)


def after_key(p: Position) -> tuple[int, int]:
    """Sort key: inside a record (skip N) comes before its end (skip 0)."""
    return (p.ordinal, p.skip if p.skip > 0 else 1 << 62)


@dataclass(frozen=True, slots=True)
class ReaderPacing:
    """Kinesis limits per shard: 5 GetRecords calls/s and 2 MB/s (shared by every consumer of the shard)."""

    min_interval_s: float = 0.2
    bytes_per_s: float = 2 * 1024 * 1024
    idle_s: float = 0.5  # caught up: next GetRecords after this long (latency vs. calls)
    records_limit: int = 10_000


@dataclass(slots=True)
class ShardReader:
    info: ShardInfo
    key: str  # checkpoint unit
    since_ms: int  # AT_TIMESTAMP used when the shard has no state
    saved: UnitState | None  # the state last committed (or loaded)
    iterator: str | None = None
    due: float = 0.0
    failures: int = 0
    ordinal: int = 0  # records read so far by this process
    last_read_seq: str | None = None  # newest record fully read (resume point after ExpiredIterator)
    skip_seq: str | None = None  # resuming inside this record: its first skip_n log events were delivered
    skip_n: int = 0
    read_pos: Position = NOTHING  # after the newest record fully processed into the queue
    delivered_pos: Position = NOTHING  # after the newest event next_batch returned
    end_read: bool = False  # closed shard: the last GetRecords had no NextShardIterator
    finished_sent: bool = False  # the finished state was handed to the store
    millis_behind: int = 0
    first_delivered: bool = False
    from_trim_horizon: bool = False  # the saved position is past the stream's retention
    resumed_from: str | None = None  # the saved sequence number the current iterator starts at

    def iterator_request(self) -> dict[str, Any]:
        """GetShardIterator arguments: after the newest record read, else the saved state, else since."""
        self.resumed_from = None
        if self.last_read_seq is not None:
            return {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": self.last_read_seq,
            }
        if self.from_trim_horizon:
            return {"ShardIteratorType": "TRIM_HORIZON"}
        args, skip = iterator_args(self.saved, self.since_ms)
        self.resumed_from = args.get("StartingSequenceNumber")
        self.skip_seq = args.get("StartingSequenceNumber") if skip else None
        self.skip_n = skip
        return args

    def pace(self, records: int, nbytes: int, behind_ms: int, pacing: ReaderPacing) -> None:
        """When the next GetRecords may go: soon (within 5/s and 2 MB/s) while behind, else after idle_s."""
        busy = records > 0 or behind_ms > 0
        wait = max(pacing.min_interval_s, nbytes / pacing.bytes_per_s) if busy else pacing.idle_s
        self.due = time.monotonic() + wait

    def state(self, position: Position) -> UnitState:
        """The checkpoint state for `position` (with the lineage facts every state carries)."""
        return {**position.state(), "since": self.since_ms, "parents": list(self.info.parents)}

    def finished_state(self) -> UnitState:
        return {"finished": True, "since": self.since_ms, "parents": list(self.info.parents)}
