"""Read positions of one log group (a work unit): which streams to read next, from where, and which events
are new. No clock, no I/O: callers pass `now_ms` and feed back what CloudWatch returned.

EKS writes one stream per API-server instance, each in time order; what arrives late is a whole stream (an
instance whose shipping lags, a new instance), not one event inside a stream. So each stream has its own
position: the timestamp of the newest event read from it. A read of a stream starts at that position minus a
small overlap (disorder inside a stream), and eventIds already seen at or after that start are dropped. Each
event is therefore read about 1 + overlap / polling_interval times, whatever the lookback.

A stream without any event yet (new, or forgotten after a long idle) is read from
max(origin, front − lookback): `origin` is the group's first start minus `shift`, `front` the time the group
was last followed up to. `lookback` keeps its meaning: how late an event may become visible and still be
delivered.

Discovery (`plan(now, discover=True)`, what the source uses): the read of the streams at the group's common
position asks for every stream of the audit prefix rather than for names, so a stream that appears or
revives with events from that position on shows up in the one call a poll costs. Its events are taken there
only when the read covers everything the stream still needs (its floor is at or after the read's start);
otherwise the stream is marked moved and gets a read of its own from its floor next poll. Streams whose
events arrive entirely behind that position are found by the source's periodic listing, as before. A read
that the prefix read could absorb for a few re-read events (a quiet group's idle streams) is merged into it.

The checkpoint (`state()`) holds, per stream, the newest delivered timestamp and the eventIds delivered at
exactly that millisecond, plus origin and front: a few hundred bytes per stream whatever the event rate.
Streams idle for `retire_ms` leave it, and at most `max_streams` are kept.

A state migrated from an earlier release's checkpoint (checkpoint_migrate.py) also carries `legacy_ids`:
eventIds that release delivered after its horizon. They are skipped (and counted as delivered for their
stream) when met; the state keeps them until the first poll has read every stream past the horizon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8saudit_eks_py.checkpoint_migrate import LEGACY_IDS
from k8saudit_eks_py.sources.cloudwatch.ledger import (
    BUCKET_MS,
    KNOWN,
    LATE,
    NEW,
    Ledger,
    check_counts,
    pack_hashes,
    unpack_hashes,
)

__all__ = ["MAX_NAMES", "GroupPositions", "Read", "ReadParams", "StreamPosition"]

MAX_NAMES = 100  # FilterLogEvents takes at most 100 logStreamNames
MAX_PENDING = 2_000  # events found behind and waiting for Falco named in the checkpoint at most
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReadParams:
    lookback_ms: int
    overlap_ms: int  # re-read of each stream's last moments: disorder inside a stream
    together_ms: int  # streams whose read starts are this close share one read
    idle_every_ms: int  # streams with nothing new are still read this often (lastEventTimestamp may lag)
    retire_ms: int  # streams idle this long are read only when DescribeLogStreams says they moved
    max_streams: int = 100  # streams kept in the checkpoint at most (the newest)
    merge_events: int = 100  # a read merges into the prefix read when that re-reads at most this many
    window_max_ms: int = 5_000  # the re-read window widens to the disorder seen, up to this
    settle_max_ms: int = 10_000  # reads stop this far before now at most (the disorder seen)
    sweep_step_ms: int = 60_000  # the sweep reads this much of the past per call sequence
    sweep_margin_ms: int = 5_000  # the sweep reads a timestamp lookback + this after it

    @staticmethod
    def derive(lookback_s: float, polling_interval_s: float) -> ReadParams:
        lookback = int(lookback_s * 1000)
        poll = int(max(polling_interval_s, 1) * 1000)
        return ReadParams(
            lookback_ms=lookback,
            overlap_ms=500,
            together_ms=500,
            idle_every_ms=3 * poll,
            retire_ms=max(3_600_000, 2 * lookback),
            window_max_ms=500,  # the overlap: settle time waits for disorder (latency, not reads)
            settle_max_ms=max(2 * poll, 5_000),  # waiting costs latency, not reads
            sweep_step_ms=max(10_000, min(60_000, lookback // 4 // BUCKET_MS * BUCKET_MS)),
            sweep_margin_ms=max(poll, 5_000),
        )


@dataclass(frozen=True, slots=True)
class Read:
    """One paginated FilterLogEvents over `names` from `start` to `end` (ms, both inclusive). With
    `prefix`, the request names no streams but the audit prefix: `names` are then the streams it covers
    (their floor is at or after `start`), and events of other streams are judged by `take`."""

    names: tuple[str, ...]
    start: int
    end: int
    prefix: bool = False
    sweep: bool = False  # the trailing sweep: every stream, judged by the ledger alone


@dataclass(slots=True)
class StreamPosition:
    name: str
    pos: int | None = None  # newest timestamp read; None: no event read yet
    floor: int = 0  # with pos: events before this are not accepted (read before)
    seen: dict[str, int] = field(default_factory=dict)  # eventId → ts of events read at or after floor
    moved: bool = True  # may have something new: new, DescribeLogStreams says so, or the last read found some
    done_ts: int | None = None  # newest delivered timestamp
    done_ids: list[str] = field(default_factory=list)  # eventIds delivered at exactly done_ts
    queued: int = 0  # events read and not yet delivered
    prune_at: int = 4096  # size of `seen` that triggers forgetting the ids before floor
    dormant: bool = False  # listed with a last event older than retire_ms: read only once it moves
    found_front: int = 0  # the group's front when this stream was found (for the checkpoint's front)
    window: int = 0  # re-read behind pos (ms): the overlap, widened to the disorder seen
    behind: int = 0  # events found behind pos since the last finished read
    # eventIds accepted behind pos (or by the sweep), not delivered yet → their timestamps
    waiting_behind: dict[str, int] = field(default_factory=dict)


class GroupPositions:
    def __init__(
        self, params: ReadParams, state: Mapping[str, Any] | None, now_ms: int, shift_ms: int
    ) -> None:
        self.params = params
        self.streams: dict[str, StreamPosition] = {}
        restored: dict[str, tuple[int, list[str]]] = {}
        if state is None:
            self.origin = now_ms - shift_ms
            self.front = self.origin
            self.ledger = Ledger(self.origin, {}, restored)
        else:
            self.origin = int(state["origin"])
            self.front = int(state["front"])
            for name, (ts, ids) in dict(state["streams"]).items():
                ts = int(ts)
                done = [str(i) for i in ids]
                self.streams[str(name)] = StreamPosition(
                    str(name), ts, ts, dict.fromkeys(done, ts), True, ts, done, 0, self.front
                )
                restored[str(name)] = (ts, done)
            counts = state.get("counts")
            if "sweep" in state:
                self.ledger = Ledger(
                    int(state["sweep"]), dict(counts or {}), restored, str(state.get("pending", ""))
                )
            else:  # written before the sweep: its streams delivered everything up to their positions
                self.ledger = Ledger(max(self.origin, self.front - params.lookback_ms), None, restored)
        # head reads end this far before now: the disorder seen lately (kept across restarts)
        self.settle_ms = float(state.get("settle", 0)) if state is not None else 0.0
        self._planned_settle = self.settle_ms  # the settle time of the poll being read
        self._head_end: int | None = None
        self._behind = 0  # events found behind since the last followed()
        self.disorder_max_ms = 0  # the largest disorder seen (ms behind the stream's position)
        self.found_behind = 0  # events found behind their stream's position (delivered)
        self.too_late: list[tuple[str, int]] = []  # (stream, ts) of events older than every read
        self.unsure_delivered = 0  # events the sweep delivered again rather than risk losing one
        self._last_idle_read = -(1 << 62)
        self._accepted = 0  # events accepted since the last followed()
        self._followed_ms: int | None = None
        self.rate_per_ms: float | None = None  # events accepted per ms of the group, None: not measured
        legacy = state.get(LEGACY_IDS) if state is not None else None
        # eventIds an earlier release delivered after its horizon (kept until the first complete poll)
        self.legacy: dict[str, int] | None = (
            {str(e): int(t) for e, t in legacy.items()} if isinstance(legacy, dict) else None
        )

    @staticmethod
    def start_state(now_ms: int, shift_ms: int) -> dict[str, Any]:
        """The state of a group never read before: its origin is now - shift, no stream known yet."""
        origin = now_ms - shift_ms
        return {
            "version": STATE_VERSION,
            "origin": origin,
            "front": origin,
            "sweep": origin,
            "streams": {},
            "counts": {},
        }

    @staticmethod
    def check_state(state: Mapping[str, Any]) -> None:
        """ValueError when a loaded state is not one this module wrote."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"version {state.get('version')!r}, expected {STATE_VERSION}")
        int(state["origin"]), int(state["front"])
        for ts, ids in dict(state["streams"]).values():
            int(ts)
            list(ids)
        if LEGACY_IDS in state:
            dict(state[LEGACY_IDS])
        if "sweep" in state:
            int(state["sweep"]), float(state.get("settle", 0))
            unpack_hashes(str(state.get("pending", "")))
            check_counts(state.get("counts") or {})

    # ------------------------------------------------------------------------------------ reading

    def new_floor(self) -> int:
        """Where a stream without any event read yet is read from."""
        return max(self.origin, self.front - self.params.lookback_ms, self.ledger.start)

    def floor_of(self, s: StreamPosition) -> int:
        # Never behind the sweep: what is there was read (and forgotten), or is too late.
        return max(s.floor, self.ledger.start) if s.pos is not None else self.new_floor()

    def found(self, name: str, last_event_ms: int | None = None) -> None:
        """A stream DescribeLogStreams listed (with its lastEventTimestamp when known)."""
        s = self.streams.get(name)
        if s is None:
            # Streams of API servers long gone stay listed forever: reading them would cost a call per
            # idle period each. lastEventTimestamp lags by up to about an hour, far less than retire_ms.
            dormant = last_event_ms is not None and last_event_ms < self.front - self.params.retire_ms
            self.streams[name] = StreamPosition(
                name, moved=not dormant, found_front=self.front, dormant=dormant
            )
        elif last_event_ms is not None and (
            last_event_ms > s.pos if s.pos is not None else last_event_ms >= self.new_floor()
        ):
            s.moved = True

    def listed_completely(self, names: Iterable[str]) -> None:
        """A complete listing: streams no longer there (deleted, expired) are forgotten unless events of
        theirs still wait for Falco."""
        present = set(names)
        for name in [n for n, s in self.streams.items() if n not in present and not s.queued]:
            del self.streams[name]

    def _retired(self, s: StreamPosition, now_ms: int) -> bool:
        return not s.moved and (s.dormant or self.floor_of(s) < now_ms - self.params.retire_ms)

    def plan(self, now_ms: int, discover: bool = False) -> list[Read]:
        """The reads of one poll. Streams that may have something new are read every poll; the others
        every `idle_every_ms` (or for free when their start is within a read already planned). With
        `discover`, the first read (the newest positions) is a prefix read, made even when no stream is
        due, and later reads are merged into it when that costs few re-read events."""
        p = self.params
        end = now_ms - int(self.settle_ms)  # the disorder seen lately: wait that long for it to settle
        self._planned_settle = self.settle_ms
        self._head_end = end
        idle_round = now_ms - self._last_idle_read >= p.idle_every_ms
        if idle_round:
            self._last_idle_read = now_ms
        live = [s for s in self.streams.values() if not self._retired(s, now_ms)]
        due = [s for s in live if s.moved or idle_round]
        rest = [s for s in live if not (s.moved or idle_round)]
        due.sort(key=self.floor_of, reverse=True)
        groups: list[list[StreamPosition]] = []
        for s in due:
            if (
                groups
                and len(groups[-1]) < MAX_NAMES
                and self.floor_of(s) >= self.floor_of(groups[-1][0]) - p.together_ms
            ):
                groups[-1].append(s)
            else:
                groups.append([s])
        if discover:
            return self._plan_discovering(end, groups, live)
        reads: list[Read] = []
        for members in groups:
            start = min(self.floor_of(s) for s in members)
            # A stream at or after the read's start costs nothing extra: it rides along.
            for s in list(rest):
                if len(members) >= MAX_NAMES:
                    break
                if self.floor_of(s) >= start:
                    members.append(s)
                    rest.remove(s)
            reads.append(Read(tuple(s.name for s in members), start, max(start, end)))
        return reads

    def _plan_discovering(
        self, end: int, groups: list[list[StreamPosition]], live: list[StreamPosition]
    ) -> list[Read]:
        # Reads that may merge into the prefix read: the due groups (read separately otherwise) and, when
        # nothing is due, the quiet streams behind the newest one (left for their idle round otherwise).
        optional: list[list[StreamPosition]] = []
        if not groups:
            ordered = sorted(live, key=self.floor_of, reverse=True)
            groups, optional = [ordered[:1]] if ordered else [], [[s] for s in ordered[1:]]
        if groups:
            head = min(self.floor_of(s) for s in groups[0])
        else:  # no live stream: ask only for what is newer than the newest position
            head = max((self.floor_of(s) for s in self.streams.values()), default=self.new_floor())
        start = head
        separate: list[list[StreamPosition]] = []
        candidates = [(g, True) for g in groups[1:]] + [(g, False) for g in optional]
        for members, must in candidates:
            own = min(self.floor_of(s) for s in members)
            if self.rate_per_ms is not None and self.rate_per_ms * (head - own) <= self.params.merge_events:
                start = min(start, own)
            elif must:
                separate.append(members)
        covered = tuple(s.name for s in self.streams.values() if self.floor_of(s) >= start)
        reads = [Read(covered, start, max(start, end), prefix=True)]
        for members in separate:
            own = min(self.floor_of(s) for s in members)
            if own < start:  # otherwise the prefix read covers them all
                reads.append(Read(tuple(s.name for s in members), own, max(own, end)))
        return reads

    def sweep_plan(self, now_ms: int) -> Read | None:
        """The trailing sweep's next read, once `sweep_step_ms` of whole 10 s buckets are `lookback` + a
        margin old: every stream of the prefix, from the sweep's position up to the newest such bucket
        (at most ten steps at once, so that a sweep catching up costs few calls). Events visible by
        then are found however far behind their stream's position CloudWatch made them visible."""
        p = self.params
        start = self.ledger.start
        eligible = (now_ms - p.lookback_ms - p.sweep_margin_ms + 1) // BUCKET_MS * BUCKET_MS - 1
        if eligible - start + 1 < p.sweep_step_ms:
            return None
        end = min(eligible, (start + 10 * p.sweep_step_ms) // BUCKET_MS * BUCKET_MS - 1)
        return Read((), start, end, prefix=True, sweep=True)

    def take(
        self, read: Read, name: str, event_id: str, ts_ms: int, ingestion_ms: int | None = None
    ) -> bool | None:
        """`accept` for an event a read returned. A prefix read returns every stream's events: a stream
        it does not cover (new, revived, or lagging) is marked to be read from its own floor instead.
        None (sweep reads only): the ledger cannot tell yet; hold it for `release`."""
        if read.sweep:
            return self._sweep_take(name, event_id, ts_ms, ingestion_ms)
        if read.prefix:
            s = self.streams.get(name)
            if s is None:
                self.found(name)
                s = self.streams[name]
            if self.floor_of(s) < read.start:
                s.moved = True
                s.dormant = False
                return False
        elif name not in read.names:
            return False
        return self.accept(name, event_id, ts_ms, ingestion_ms)

    def accept(self, name: str, event_id: str, ts_ms: int, ingestion_ms: int | None = None) -> bool:
        """True the first time an event of a known stream is read: at or after the stream's floor, or
        behind it when the ledger shows it was never seen (CloudWatch made it visible late)."""
        s = self.streams.get(name)
        if s is None or event_id in s.seen:
            return False
        if ts_ms < self.floor_of(s) and s.pos is None:
            # A stream never read: what is before its floor is the sweep's to judge, or too late.
            if ts_ms < self.ledger.start:
                self.too_late.append((name, ts_ms))
            return False
        verdict = self.ledger.verdict(name, event_id, ts_ms, ingestion_ms)
        if verdict == LATE:
            self.too_late.append((name, ts_ms))
            return False
        if verdict != NEW:
            return False
        if ts_ms >= s.floor or s.pos is None:
            s.seen[event_id] = ts_ms
        self.ledger.add(name, event_id, ts_ms, behind=s.pos is not None and ts_ms < s.pos)
        if self.legacy is not None and self.legacy.pop(event_id, None) is not None:
            # Delivered before the upgrade: not again. It counts as this stream's delivered position
            # only when nothing read before it still waits for Falco (positions only move forward).
            self._advance(s, ts_ms)
            if s.queued == 0:
                s.queued += 1
                self.delivered(name, event_id, ts_ms)
            return False
        if s.pos is not None and ts_ms < s.pos:
            self._saw_disorder(s, s.pos - ts_ms)
            s.waiting_behind[event_id] = ts_ms
        s.moved = True
        self._accepted += 1
        s.dormant = False  # it came back: from now on a quiet stream like the others
        self._advance(s, ts_ms)
        return True

    def _sweep_take(self, name: str, event_id: str, ts_ms: int, ingestion_ms: int | None) -> bool | None:
        s = self.streams.get(name)
        if s is None:  # a stream whose every event became visible behind the others
            self.found(name)
            s = self.streams[name]
        verdict = self.ledger.verdict(name, event_id, ts_ms, ingestion_ms)
        if verdict in (KNOWN, LATE):
            return False
        if verdict != NEW:
            return None
        if self.legacy is not None and self.legacy.pop(event_id, None) is not None:
            self.ledger.add(name, event_id, ts_ms)  # delivered before the upgrade
            return False
        self._sweep_accept(s, event_id, ts_ms)
        return True

    def _sweep_accept(self, s: StreamPosition, event_id: str, ts_ms: int) -> None:
        self.ledger.add(s.name, event_id, ts_ms, behind=s.pos is not None and ts_ms < s.pos)
        s.dormant = False
        s.waiting_behind[event_id] = ts_ms  # the sweep stays at it until it is delivered
        if s.pos is None:
            s.moved = True  # read it from its floor next poll
        elif ts_ms < s.pos:
            self._saw_disorder(s, s.pos - ts_ms)

    def release(self, read: Read, held: list[tuple[str, str, int, int]]) -> set[str]:
        """A sweep read finished with `held` (stream, eventId, ts, ingestionTime or 0) it could not
        place: the eventIds to
        deliver (all of a bucket's when it shows more than were delivered before the restore). The sweep
        then moves past the read."""
        by_bucket: dict[tuple[str, int], list[tuple[str, str, int, int]]] = {}
        for item in held:
            by_bucket.setdefault((item[0], item[2] // BUCKET_MS), []).append(item)
        out: set[str] = set()
        for (name, bucket), items in by_bucket.items():
            ts_of = {event_id: ts_ms for _name, event_id, ts_ms, _ingestion in items}
            ingestion_of = {event_id: ingestion for _name, event_id, _ts, ingestion in items}
            unsure = list(ts_of)
            known = all(ingestion_of.values())
            chosen, repeated = self.ledger.resolve_unsure(
                name,
                bucket,
                unsure,
                [ts_of[e] for e in unsure] if known else [],
                [ingestion_of[e] for e in unsure] if known else [],
            )
            for event_id in chosen:
                self._sweep_accept(self.streams[name], event_id, ts_of[event_id])
                out.add(event_id)
            self.unsure_delivered += repeated
        # Not past an event found behind that still waits for Falco: a checkpoint written meanwhile must
        # leave it to the next holder's sweep (its `pending` says it is new), not behind every read.
        waiting = [ts for st in self.streams.values() for ts in st.waiting_behind.values()]
        oldest = min(waiting, default=read.end + 1) // BUCKET_MS * BUCKET_MS
        self.ledger.advance(min(read.end + 1, oldest))
        return out

    def _saw_disorder(self, s: StreamPosition, behind_ms: int) -> None:
        """An event found `behind_ms` behind its stream's position: widen that stream's re-read window
        and the group's settle time to it (both capped; both narrow again while no disorder is seen)."""
        p = self.params
        self.found_behind += 1
        self._behind += 1
        s.behind += 1
        self.disorder_max_ms = max(self.disorder_max_ms, behind_ms)
        s.window = min(p.window_max_ms, max(s.window, behind_ms + p.overlap_ms))
        # Read `settle` before now, an event found `behind_ms` behind became visible about settle +
        # behind_ms after its timestamp: wait that long from now on.
        late = self._planned_settle + behind_ms
        self.settle_ms = min(float(p.settle_max_ms), max(self.settle_ms, late))

    def _advance(self, s: StreamPosition, ts_ms: int) -> None:
        if s.pos is None or ts_ms > s.pos:
            if s.pos is None:
                s.floor = self.new_floor()
            s.pos = ts_ms
            floor = ts_ms - max(s.window, self.params.overlap_ms)
            if floor > s.floor:
                s.floor = floor
                if len(s.seen) > s.prune_at:  # amortised: a dense backlog does not prune per event
                    s.seen = {e: t for e, t in s.seen.items() if t >= floor}
                    s.prune_at = max(4096, 2 * len(s.seen))

    def finished(self, read: Read, found: Mapping[str, int], now_ms: int) -> None:
        """The read was paginated to its end at wall time `now_ms`; `found` counts the new events per
        stream."""
        overlap = self.params.overlap_ms
        if read.sweep:
            self.ledger.swept(read.start, read.end, now_ms)
        else:  # a prefix read returns every stream's events from its start
            for name in self.streams if read.prefix else read.names:
                self.ledger.read_over(name, read.start, now_ms)
        for name in {*read.names, *found}:
            s = self.streams.get(name)
            if s is None:
                continue
            s.moved = found.get(name, 0) > 0
            if read.sweep:
                continue
            if s.behind:
                if s.pos is not None:  # re-read the widened window from the next poll on
                    s.floor = max(min(s.floor, s.pos - s.window), self.ledger.start)
            elif s.window > overlap:
                s.window = max(overlap, s.window * 4 // 5)
            s.behind = 0
            floor = self.floor_of(s)
            s.seen = {e: t for e, t in s.seen.items() if t >= floor}

    def followed(self, poll_ms: int) -> None:
        """Every read of the poll that started at `poll_ms` finished."""
        end = poll_ms if self._head_end is None else min(poll_ms, self._head_end)
        self._head_end = None
        self.front = max(self.front, end)
        if not self._behind:
            self.settle_ms = 0.0 if self.settle_ms < 50 else self.settle_ms * 0.95
        self._behind = 0
        # Every stream was read past the old horizon: the ids were met. (The first poll's prefix read
        # starts at the horizon, where every stream not yet read starts: it covers them all.)
        self.legacy = None
        if self._followed_ms is not None and poll_ms > self._followed_ms:
            rate = self._accepted / (poll_ms - self._followed_ms)
            self.rate_per_ms = rate if self.rate_per_ms is None else (self.rate_per_ms + rate) / 2
        self._followed_ms = poll_ms
        self._accepted = 0

    def wants_read(self) -> bool:
        """Some stream may have something new (found, revived, listed as moved)."""
        return any(s.moved and not s.dormant for s in self.streams.values())

    # ------------------------------------------------------------------------------------ delivery

    def delivered(self, name: str, event_id: str, ts_ms: int, ingestion_ms: int = 0) -> None:
        s = self.streams.get(name)
        if s is None:
            return
        s.queued -= 1
        s.waiting_behind.pop(event_id, None)
        self.ledger.delivered(name, event_id, ts_ms, ingestion_ms)
        if s.done_ts is None or ts_ms > s.done_ts:
            s.done_ts, s.done_ids = ts_ms, [event_id]
        elif ts_ms == s.done_ts:
            s.done_ids.append(event_id)
        # ts_ms < done_ts: an event found behind (window or sweep); the position stays, the ledger counts it

    def state(self, now_ms: int) -> dict[str, Any]:
        """The checkpoint: where a restart resumes so that nothing delivered comes again and nothing
        read but not yet delivered is lost."""
        p = self.params
        front = self.front
        kept: list[StreamPosition] = []
        for s in self.streams.values():
            if s.done_ts is None:
                if s.queued > 0:  # its events must be found again from the front it was found at
                    front = min(front, s.found_front)
                continue
            if s.done_ts >= now_ms - p.retire_ms or s.queued > 0:
                kept.append(s)
        kept.sort(key=lambda s: s.done_ts or 0, reverse=True)
        streams = {s.name: [s.done_ts, list(s.done_ids)] for s in kept[: p.max_streams]}
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "origin": self.origin,
            "front": front,
            "streams": streams,
            "sweep": self.ledger.start,
            "settle": int(self.settle_ms),
            # only streams with a restored position make events unsure: the others' are new anyway
            "counts": {name: per for name, per in self.ledger.counts().items() if name in streams},
        }
        pending = [e for s in self.streams.values() for e in s.waiting_behind]
        if pending:  # read behind their stream's position, not delivered: new to the next holder
            state["pending"] = pack_hashes(pending[:MAX_PENDING])
        if self.legacy is not None:
            state[LEGACY_IDS] = dict(self.legacy)
        return state
