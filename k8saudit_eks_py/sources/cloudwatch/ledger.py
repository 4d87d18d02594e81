"""Which events of a log group were accepted, per stream and 10 s bucket of timestamps, from the sweep's
position on: the record that lets a read anywhere behind the streams' positions (the trailing sweep, or
a head read that finds an event behind) tell an event seen before from one CloudWatch made visible late.

CloudWatch can make a stream's older events visible after newer ones (a PutLogEvents batch searchable
late, a batch ingested long after its timestamp). FilterLogEvents filters on timestamps only, so the only
way to find such an event is a read covering its timestamp after it became visible; the sweep re-reads
each bucket once, `lookback` after its timestamps, and delivers what it had not seen.

In memory each accepted event costs one 61-bit hash of its eventId, kept in a set while its bucket is
near the read positions and in a sorted array once it is not. The checkpoint keeps, per bucket, only a
record of 18 bytes + 8 per power sum + 4 per second of ingestionTime (base64): a sketch of the events
delivered (set_sketch.py: their number and power sums of their hashes: 4, plus 2 per event the stream
lately showed late in a bucket, or per its share of late events times the bucket's events, up to 64),
how many were delivered per second of ingestionTime, and when reads last finished over it.

After a restart those events are known by sketch, not by id: an event behind its stream's restored
position in such a bucket is "unsure", and the sweep decides once it has read the whole bucket. The
sketch names the unsure events that were not delivered, up to as many as it has power sums. More than
that are found by the histogram: CloudWatch makes a PutLogEvents batch searchable late as a whole (one
ingestionTime), and of such a batch the holder had read only the newest events (those within its
re-read window), so in each ingestion second that shows more events than were delivered, the lacking
ones are the oldest of some of its batches; each guess is tested against the sketch's count and power
sums. When no guess fits, all the unsure ones are delivered and counted (earlier events repeat rather
than a late one being lost). Two things keep the unsure ones few: the checkpoint also names (by hash)
the events found behind that still waited for Falco (`pending`: not delivered, so new; the sweep does
not move past them meanwhile), and an event CloudWatch ingested after the last read over its timestamp
finished (with a margin for clock skew) was never read by the holder before, so it is new whatever the
sketch says.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k8saudit_eks_py.sources.cloudwatch.set_sketch import (
    MAX_POWERS,
    PRIME,
    Sketch,
    event_hash,
    lacking_sums,
    missing,
    power_sums,
)

__all__ = [
    "BUCKET_MS",
    "KNOWN",
    "LATE",
    "NEW",
    "UNSURE",
    "Ledger",
    "check_counts",
    "pack_hashes",
    "unpack_hashes",
]

BUCKET_MS = 10_000
NEW, KNOWN, UNSURE, LATE = "new", "known", "unsure", "late"
SKEW_MS = 5_000  # CloudWatch's clock may be this far ahead of the one that wrote the checkpoint
# a bucket record's head: delivered, whole_at, part_at, part_from (ms after its start + 1), power sums;
# then the power sums, then the ingestion histogram: (second - bucket's first second, events) pairs
_RECORD = "<IIIIH"
_HISTOGRAM = "<hH"
_U32 = (1 << 32) - 1
_GUESSES = 64  # ingestion-histogram guesses per second of ingestionTime
_TRIES = 20_000  # guesses tested per bucket before delivering all unsure
_SUBSET_BATCHES = 4  # whole batches of one ingestion second combined in one guess
RECENT_BUCKETS = 3  # the newest buckets of a log group (30 s) ...
RECENT_POWERS = 16  # ... keep at least this many power sums (128 bytes more each)


@dataclass(slots=True)
class _Bucket:
    open: set[int] = field(default_factory=set)
    closed: array[int] = field(default_factory=lambda: array("q"))
    prior: Sketch = field(default_factory=Sketch)  # delivered before the restore (ids unknown)
    # When head reads (before or since the restore) last finished over this bucket, wall ms: over all
    # of it, and the latest one over part of it with the earliest start of those. An event ingested
    # after the read that last covered its timestamp was never read.
    whole_at: int = 0
    part_at: int = 0
    part_from: int = 0
    delivered: Sketch = field(default_factory=Sketch)  # delivered since
    behind: int = 0  # events accepted behind their stream's position (disorder seen here)
    # events delivered per second of ingestionTime: before the restore, and since
    prior_ingested: dict[int, int] = field(default_factory=dict)
    ingested: dict[int, int] = field(default_factory=dict)

    def unread(self, ts_ms: int, ingestion_ms: int) -> bool:
        """Ingested after every head read that covered `ts_ms` had finished (with a margin for skew)."""
        if ingestion_ms > max(self.whole_at, self.part_at) + SKEW_MS:
            return True
        return ts_ms < self.part_from and ingestion_ms > self.whole_at + SKEW_MS

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
        counts: Mapping[str, Mapping[str, str]] | None,
        restored: Mapping[str, tuple[int, list[str]]],
        pending: str = "",
    ) -> None:
        """`start`: the sweep's position (events before it are past every read). `counts`: the
        checkpoint's delivered events per stream and bucket; None for a state written before the sweep,
        whose streams delivered everything up to their restored position. `pending`: the checkpoint's
        hashes of events read behind their streams' positions and not delivered."""
        self.start = start
        self.counts_known = counts is not None
        self._buckets: dict[str, dict[int, _Bucket]] = {}
        for stream, per_bucket in (counts or {}).items():
            for key, text in per_bucket.items():
                b = int(key)
                if b * BUCKET_MS + BUCKET_MS > start:
                    _decode(str(text), b, self._bucket(stream, b))
        self._restored = {name: _Restored(ts, frozenset(ids)) for name, (ts, ids) in restored.items()}
        self._pending = set(unpack_hashes(pending))
        # per stream: events found behind per bucket lately (a decaying max; restored from the sketches'
        # capacities, which the holder before sized from it)
        self._late_share: dict[str, float] = {}  # per stream: the share of a bucket's events found late
        self._late: dict[str, float] = {
            stream: max((len(b.prior.sums) - 4) / 2 for b in per.values())
            for stream, per in self._buckets.items()
        }

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

    def verdict(self, stream: str, event_id: str, ts_ms: int, ingestion_ms: int | None = None) -> str:
        if ts_ms < self.start:
            return LATE
        bucket = self._buckets.get(stream, {}).get(ts_ms // BUCKET_MS)
        if bucket is not None and bucket.has(event_hash(event_id)):
            return KNOWN
        r = self._restored.get(stream)
        if r is not None:
            if ts_ms == r.ts and event_id in r.ids:
                return KNOWN
            if ts_ms < r.ts and (not self.counts_known or (bucket is not None and bucket.prior.n > 0)):
                if bucket is not None and (
                    event_hash(event_id) in self._pending
                    or (ingestion_ms is not None and bucket.unread(ts_ms, ingestion_ms))
                ):
                    return NEW  # waiting for Falco at the restore, or never read by the holder before
                # Delivered before the restore, or made visible late: only the sweep can tell. A state
                # from before the sweep delivered everything up to its position.
                return UNSURE if self.counts_known else KNOWN
        return NEW

    def add(self, stream: str, event_id: str, ts_ms: int, behind: bool = False) -> None:
        """An event accepted (`behind`: behind its stream's position)."""
        bucket = self._bucket(stream, ts_ms // BUCKET_MS)
        bucket.open.add(event_hash(event_id))
        bucket.behind += behind

    def read_over(self, stream: str, from_ms: int, at_ms: int) -> None:
        """A head read of `stream` from `from_ms` on (to now) finished at wall time `at_ms`."""
        for b, bucket in self._buckets.get(stream, {}).items():
            if b * BUCKET_MS >= from_ms:
                bucket.whole_at = max(bucket.whole_at, at_ms)
            elif b == from_ms // BUCKET_MS:
                # Several reads start inside a bucket: keep the earliest start and the latest end, which
                # claims more than was read (unsure rather than new: never a wrong "not delivered").
                bucket.part_from = min(bucket.part_from, from_ms) if bucket.part_at else from_ms
                bucket.part_at = max(bucket.part_at, at_ms)

    def swept(self, from_ms: int, to_ms: int, at_ms: int) -> None:
        """A sweep read of every stream over [from_ms, to_ms] finished at wall time `at_ms`: the buckets
        it covered whole were read then (it may stay at a bucket while an event it found waits)."""
        for per in self._buckets.values():
            for b, bucket in per.items():
                if b * BUCKET_MS >= from_ms and b * BUCKET_MS + BUCKET_MS - 1 <= to_ms:
                    bucket.whole_at = max(bucket.whole_at, at_ms)

    def delivered(self, stream: str, event_id: str, ts_ms: int, ingestion_ms: int = 0) -> None:
        if ts_ms >= self.start:
            bucket = self._bucket(stream, ts_ms // BUCKET_MS)
            bucket.delivered.add(event_hash(event_id))
            if ingestion_ms > 0:
                second = ingestion_ms // 1000
                bucket.ingested[second] = bucket.ingested.get(second, 0) + 1

    def resolve_unsure(
        self,
        stream: str,
        bucket_index: int,
        unsure: Sequence[str],
        ts: Sequence[int] = (),
        ingestion: Sequence[int] = (),
    ) -> tuple[list[str], int]:
        """The sweep read a whole bucket and met the eventIds `unsure` (with their timestamps and
        ingestionTimes, when known), which it could not place: those to deliver (the ones the restored
        sketch lacks), and how many of them were delivered before (when the sketch cannot tell which,
        and all are delivered)."""
        bucket = self._buckets.get(stream, {}).get(bucket_index)
        before = Sketch() if bucket is None else Sketch(bucket.prior.n, list(bucket.prior.sums))
        r = self._restored.get(stream)
        if r is not None and r.ts // BUCKET_MS == bucket_index:
            for event_id in r.ids:  # those are recognised by id, not met among the unsure
                before.add(event_hash(event_id), -1)
        if len(unsure) <= before.n:
            return [], 0
        hashes = [event_hash(i) for i in unsure]
        new = missing(hashes, before)
        if new is None and bucket is not None and len(ts) == len(ingestion) == len(unsure):
            new = _by_ingestion(hashes, unsure, ts, ingestion, bucket.prior_ingested, before)
        if new is None:
            return list(unsure), before.n  # cannot tell: deliver all rather than lose one
        return [unsure[i] for i in sorted(new)], 0

    def advance(self, to_ms: int) -> None:
        """The sweep read everything before `to_ms`: buckets wholly before it are forgotten."""
        self.start = max(self.start, to_ms)
        for stream in list(self._buckets):
            per = self._buckets[stream]
            for b in sorted(b for b in per if b * BUCKET_MS + BUCKET_MS <= self.start):
                gone = per.pop(b)
                self._late[stream] = max(0.9 * self._late.get(stream, 0.0), float(gone.behind))
                if gone.behind:
                    share = gone.behind / max(1, len(gone.open) + len(gone.closed))
                    self._late_share[stream] = max(0.9 * self._late_share.get(stream, 0.0), share)
            if not per:
                del self._buckets[stream]
        for name in [n for n, r in self._restored.items() if r.ts < self.start]:
            del self._restored[name]  # everything it could make unsure is behind the sweep

    def counts(self) -> dict[str, dict[str, str]]:
        """Per stream and bucket, a record: a sketch of the delivered events (with as many power sums
        as the disorder seen there calls for) and when head reads last finished over it (the
        checkpoint's part of this record)."""
        out: dict[str, dict[str, str]] = {}
        # The newest buckets hold what was not visible yet when the head reads passed (disorder within
        # the settle time a holder had not seen yet): room for some of them whatever it saw.
        recent = max((b for per in self._buckets.values() for b in per), default=0) - RECENT_BUCKETS + 1
        for stream, per in self._buckets.items():
            # Events not yet visible at the checkpoint are what the next holder must tell apart: as
            # many per bucket as the stream's buckets showed late (found behind) lately, and room more.
            late = max(self._late.get(stream, 0.0), *(bucket.behind for bucket in per.values()))
            share = self._late_share.get(stream, 0.0)
            kept: dict[str, str] = {}
            for b, bucket in per.items():
                total = bucket.prior.plus(bucket.delivered)
                if total.n > 0:
                    capacity = min(MAX_POWERS, 4 + int(2 * max(late, share * total.n)))
                    if b >= recent:  # late events scale with the stream's rate: a quarter of them
                        capacity = max(capacity, min(RECENT_POWERS, total.n // 4))
                    histogram = dict(bucket.prior_ingested)
                    for second, events in bucket.ingested.items():
                        histogram[second] = histogram.get(second, 0) + events
                    kept[str(b)] = _encode(total.cut(capacity), b, bucket, histogram)
            if kept:
                out[stream] = kept
        return out

    def size(self) -> int:
        """Events recorded in memory (for the memory bound)."""
        return sum(len(b.open) + len(b.closed) for per in self._buckets.values() for b in per.values())


def check_counts(value: Any) -> None:
    """ValueError/TypeError when a checkpoint's `counts` is not what counts() writes."""
    for per in dict(value).values():
        for key, text in dict(per).items():
            _decode(str(text), int(key), _Bucket())


def _offset(at_ms: int, b: int) -> int:
    # Times before the bucket's start are kept as its start: more coverage claimed (unsure, not new).
    return 0 if at_ms <= 0 else min(_U32, max(0, at_ms - b * BUCKET_MS) + 1)


def _at(offset: int, b: int) -> int:
    return 0 if offset == 0 else b * BUCKET_MS + offset - 1


def _encode(sketch: Sketch, b: int, bucket: _Bucket, histogram: Mapping[int, int]) -> str:
    first = b * BUCKET_MS // 1000
    entries = sorted(
        (second - first, min(0xFFFF, events))
        for second, events in histogram.items()
        if -0x8000 <= second - first < 0x8000  # farther ingestion seconds are left out: unsure, not lost
    )
    head = struct.pack(
        _RECORD,
        sketch.n,
        _offset(bucket.whole_at, b),
        _offset(bucket.part_at, b),
        _offset(bucket.part_from, b),
        len(sketch.sums),
    )
    body = struct.pack(f"<{len(sketch.sums)}Q", *sketch.sums)
    tail = b"".join(struct.pack(_HISTOGRAM, *entry) for entry in entries)
    return base64.b64encode(head + body + tail).decode()


def _decode(text: str, b: int, into: _Bucket) -> None:
    """ValueError (binascii.Error and struct.error are ValueErrors) when `text` is not an _encode()."""
    raw = base64.b64decode(text.encode(), validate=True)
    head = struct.calcsize(_RECORD)
    if len(raw) < head:
        raise ValueError(f"a bucket record of {len(raw)} bytes")
    n, whole, part, part_from, powers = struct.unpack_from(_RECORD, raw)
    rest = len(raw) - head - 8 * powers
    if not 1 <= powers <= MAX_POWERS or rest < 0 or rest % struct.calcsize(_HISTOGRAM):
        raise ValueError(f"a bucket record of {len(raw)} bytes with {powers} power sums")
    sums = list(struct.unpack_from(f"<{powers}Q", raw, head))
    if any(x >= PRIME for x in sums):
        raise ValueError("a power sum out of range")
    first = b * BUCKET_MS // 1000
    into.prior = Sketch(n, sums)
    into.prior_ingested = {
        first + offset: events for offset, events in struct.iter_unpack(_HISTOGRAM, raw[head + 8 * powers :])
    }
    into.whole_at, into.part_at, into.part_from = _at(whole, b), _at(part, b), _at(part_from, b)


def _by_ingestion(
    hashes: Sequence[int],
    unsure: Sequence[str],
    ts: Sequence[int],
    ingestion: Sequence[int],
    delivered_per_second: Mapping[int, int],
    before: Sketch,
) -> set[int] | None:
    """The unsure events that were not delivered, guessed from the ingestion histogram and tested against
    the sketch. In each second of ingestionTime, as many were not delivered as it met more than were;
    they are the oldest events of some of its batches (one ingestionTime each: of a batch made searchable
    late, the holder had read the newest, those within its re-read window). None when no guess fits
    within _GUESSES per second and _TRIES in all."""
    c = len(before.sums)
    if c == 0:
        return None
    per_second: dict[int, dict[int, list[int]]] = {}
    for i in sorted(range(len(hashes)), key=lambda i: (ts[i], unsure[i])):
        per_second.setdefault(ingestion[i] // 1000, {}).setdefault(ingestion[i], []).append(i)
    options: list[list[tuple[list[int], list[int]]]] = []  # per second: (guess, its power sums)
    for second, batches in per_second.items():
        deficit = sum(len(b) for b in batches.values()) - delivered_per_second.get(second, 0)
        if deficit > 0:
            guesses = _prefix_guesses(list(batches.values()), deficit)
            options.append([(g, power_sums([hashes[i] for i in g], c)) for g in guesses])
    if sum(len(o[0][0]) for o in options if o) != len(hashes) - before.n or not all(options):
        return None
    tries = 0

    def search(k: int, rest: list[int]) -> list[int] | None:
        nonlocal tries
        if k == len(options):
            return [] if not any(rest) else None
        for guess, sums in options[k]:
            tries += 1
            if tries > _TRIES:
                return None
            found = search(k + 1, [(a - b) % PRIME for a, b in zip(rest, sums, strict=True)])
            if found is not None:
                return guess + found
        return None

    chosen = search(0, lacking_sums(hashes, before))
    return None if chosen is None else set(chosen)


def _prefix_guesses(batches: list[list[int]], deficit: int) -> list[list[int]]:
    """Ways to take `deficit` events as whole `batches` (each in timestamp order) and the oldest part of at
    most one more, fewest batches first; at most _GUESSES, from at most _TRIES combinations."""
    out: list[list[int]] = []
    sizes = [len(b) for b in batches]
    scanned = 0
    for n in range(min(len(batches), _SUBSET_BATCHES) + 1):
        for combo in itertools.combinations(range(len(batches)), n):
            scanned += 1
            rest = deficit - sum(sizes[i] for i in combo)
            if rest < 0:
                continue
            whole = [e for i in combo for e in batches[i]]
            if rest == 0:
                out.append(whole)
            else:
                out += [
                    whole + batches[j][:rest]
                    for j in range(len(batches))
                    if j not in combo and sizes[j] > rest
                ]
            if len(out) >= _GUESSES or scanned >= _TRIES:
                return out[:_GUESSES]
    return out


def pack_hashes(event_ids: Iterable[str]) -> str:
    """The checkpoint's `pending`: eventId hashes, 8 bytes each."""
    hashes = [event_hash(e) for e in event_ids]
    return base64.b64encode(struct.pack(f"<{len(hashes)}Q", *hashes)).decode()


def unpack_hashes(text: str) -> list[int]:
    """ValueError when `text` is not what pack_hashes wrote."""
    raw = base64.b64decode(text.encode(), validate=True)
    if len(raw) % 8:
        raise ValueError(f"pending of {len(raw)} bytes, not a multiple of 8")
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))
