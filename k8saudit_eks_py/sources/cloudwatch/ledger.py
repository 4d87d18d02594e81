"""Which events of a log group were accepted, per stream and 10 s bucket of timestamps, from the sweep's
position on: the record that lets a read anywhere behind the streams' positions (the trailing sweep, or
a head read that finds an event behind) tell an event seen before from one CloudWatch made visible late.

CloudWatch can make a stream's older events visible after newer ones (a PutLogEvents batch searchable
late, a batch ingested long after its timestamp). FilterLogEvents filters on timestamps only, so the only
way to find such an event is a read covering its timestamp after it became visible; the sweep re-reads
each bucket once, `lookback` after its timestamps, and delivers what it had not seen.

In memory each accepted event costs one 63-bit hash of its eventId, kept in a set while its bucket is
near the read positions and in a sorted array once it is not. The checkpoint keeps, per bucket, only the
number of events delivered and the sum of their hashes (`counts`). After a restart those events are
known by count, not by id: an event behind its stream's restored position in such a bucket is "unsure",
and the sweep decides once it has read the whole bucket: when it shows exactly as many unknown events
as the count, they are the ones delivered; when it shows more, the delivered ones are the subset whose
hashes add up to the sum (searched when that is cheap: a few new events among few unsure ones), and
otherwise all the unknown ones are delivered (earlier events repeat rather than a late one being lost).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUCKET_MS", "KNOWN", "LATE", "NEW", "UNSURE", "Ledger", "check_counts", "event_hash"]

BUCKET_MS = 10_000
NEW, KNOWN, UNSURE, LATE = "new", "known", "unsure", "late"
_MOD = 1 << 63
_SEARCH_MAX = 20_000  # subsets tried at most to tell a restart's delivered events from late ones


def event_hash(event_id: str) -> int:
    """Stable across processes (the checkpoint's sums are compared by the next holder)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") % _MOD


@dataclass(slots=True)
class _Bucket:
    open: set[int] = field(default_factory=set)
    closed: array[int] = field(default_factory=lambda: array("q"))
    prior: int = 0  # delivered before the restore (from the checkpoint), ids unknown
    prior_sum: int = 0  # the sum of their hashes
    delivered: int = 0  # delivered since
    delivered_sum: int = 0

    def has(self, h: int) -> bool:
        if h in self.open:
            return True
        i = bisect.bisect_left(self.closed, h)
        return i < len(self.closed) and self.closed[i] == h

    def close(self) -> None:
        if self.open:
            merged = sorted([*self.closed, *self.open])
            self.closed = array("q", merged)
            self.open = set()


@dataclass(slots=True)
class _Restored:
    ts: int  # the stream's newest delivered timestamp at restore: nothing delivered before was newer
    ids: frozenset[str]  # the eventIds delivered at exactly that millisecond


class Ledger:
    def __init__(
        self,
        start: int,
        counts: Mapping[str, Mapping[str, Sequence[int]]] | None,
        restored: Mapping[str, tuple[int, list[str]]],
    ) -> None:
        """`start`: the sweep's position (events before it are past every read). `counts`: the
        checkpoint's delivered events per stream and bucket; None for a state written before the sweep,
        whose streams delivered everything up to their restored position."""
        self.start = start
        self.counts_known = counts is not None
        self._buckets: dict[str, dict[int, _Bucket]] = {}
        for stream, per_bucket in (counts or {}).items():
            for key, (n, total) in per_bucket.items():
                b = int(key)
                if b * BUCKET_MS + BUCKET_MS > start and int(n) > 0:
                    bucket = self._bucket(stream, b)
                    bucket.prior, bucket.prior_sum = int(n), int(total) % _MOD
        self._restored = {name: _Restored(ts, frozenset(ids)) for name, (ts, ids) in restored.items()}

    def _bucket(self, stream: str, b: int) -> _Bucket:
        per = self._buckets.get(stream)
        if per is None:
            per = self._buckets[stream] = {}
        bucket = per.get(b)
        if bucket is None:
            bucket = per[b] = _Bucket()
            old = per.get(b - 2)  # a bucket two behind the one being filled no longer changes often
            if old is not None:
                old.close()
        return bucket

    def verdict(self, stream: str, event_id: str, ts_ms: int) -> str:
        if ts_ms < self.start:
            return LATE
        bucket = self._buckets.get(stream, {}).get(ts_ms // BUCKET_MS)
        if bucket is not None and bucket.has(event_hash(event_id)):
            return KNOWN
        r = self._restored.get(stream)
        if r is not None:
            if ts_ms == r.ts and event_id in r.ids:
                return KNOWN
            if ts_ms < r.ts and (not self.counts_known or (bucket is not None and bucket.prior > 0)):
                # Delivered before the restore, or made visible late: only the sweep can tell. A state
                # from before the sweep delivered everything up to its position.
                return UNSURE if self.counts_known else KNOWN
        return NEW

    def add(self, stream: str, event_id: str, ts_ms: int) -> None:
        self._bucket(stream, ts_ms // BUCKET_MS).open.add(event_hash(event_id))

    def delivered(self, stream: str, event_id: str, ts_ms: int) -> None:
        if ts_ms >= self.start:
            bucket = self._bucket(stream, ts_ms // BUCKET_MS)
            bucket.delivered += 1
            bucket.delivered_sum = (bucket.delivered_sum + event_hash(event_id)) % _MOD

    def resolve_unsure(self, stream: str, bucket_index: int, unsure: Sequence[str]) -> tuple[list[str], int]:
        """The sweep read a whole bucket and met the eventIds `unsure`, which it could not place: those
        to deliver (none when they are as many as those delivered before the restore), and how many of
        them were delivered before (when the sums cannot tell which)."""
        bucket = self._buckets.get(stream, {}).get(bucket_index)
        prior, total = (bucket.prior, bucket.prior_sum) if bucket is not None else (0, 0)
        r = self._restored.get(stream)
        if r is not None and r.ts // BUCKET_MS == bucket_index:
            # those are recognised by id, not met among the unsure
            prior -= len(r.ids)
            total = (total - sum(event_hash(i) for i in r.ids)) % _MOD
        if len(unsure) <= prior:
            return [], 0
        hashes = [event_hash(i) for i in unsure]
        new = len(unsure) - prior
        pick = min(new, prior)  # search the smaller side: the new ones, or the delivered ones
        if math.comb(len(unsure), pick) <= _SEARCH_MAX:
            target = (sum(hashes) - total) % _MOD if pick == new else total
            for combo in itertools.combinations(range(len(unsure)), pick):
                if sum(hashes[i] for i in combo) % _MOD == target:
                    chosen = set(combo)
                    keep = chosen if pick == new else set(range(len(unsure))) - chosen
                    return [unsure[i] for i in sorted(keep)], 0
        return list(unsure), prior  # cannot tell: deliver all rather than lose one

    def advance(self, to_ms: int) -> None:
        """The sweep read everything before `to_ms`: buckets wholly before it are forgotten."""
        self.start = max(self.start, to_ms)
        for stream in list(self._buckets):
            per = self._buckets[stream]
            for b in [b for b in per if b * BUCKET_MS + BUCKET_MS <= self.start]:
                del per[b]
            if not per:
                del self._buckets[stream]
        for name in [n for n, r in self._restored.items() if r.ts < self.start]:
            del self._restored[name]  # everything it could make unsure is behind the sweep

    def counts(self) -> dict[str, dict[str, list[int]]]:
        """Delivered events per stream and bucket (the checkpoint's part of this record)."""
        out: dict[str, dict[str, list[int]]] = {}
        for stream, per in self._buckets.items():
            kept = {
                str(b): [n, (bucket.prior_sum + bucket.delivered_sum) % _MOD]
                for b, bucket in per.items()
                if (n := bucket.prior + bucket.delivered) > 0
            }
            if kept:
                out[stream] = kept
        return out

    def size(self) -> int:
        """Events recorded in memory (for the memory bound)."""
        return sum(len(b.open) + len(b.closed) for per in self._buckets.values() for b in per.values())


def check_counts(value: Any) -> None:
    """ValueError/TypeError when a checkpoint's `counts` is not what counts() writes."""
    for per in dict(value).values():
        for key, (n, total) in dict(per).items():
            int(key), int(n), int(total)
