"""The Kinesis source's reader thread: list the shards, read the eligible ones (shards.py decides) with
GetShardIterator/GetRecords within the per-shard limits, decode each record (subscription.py) and pass each
log event through stream_events.py (which clusters, duplicates, shaping) into the queue (delivery.py).
Run-time failures are retried with jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import UnitState
from k8saudit_eks_py.sources.delivery import Delivery
from k8saudit_eks_py.sources.kinesis.shard_leases import ShardLeases
from k8saudit_eks_py.sources.kinesis.shard_reader import ReaderPacing, ShardReader
from k8saudit_eks_py.sources.kinesis.shards import (
    Position,
    ShardInfo,
    eligible,
    parse_shards,
    start_since,
    unit_key,
)
from k8saudit_eks_py.sources.kinesis.stream_errors import classify, open_failure
from k8saudit_eks_py.sources.kinesis.stream_events import EventGate
from k8saudit_eks_py.sources.subscription import Bad, Control, decode_record

__all__ = ["IncompleteResponse", "ShardReading", "StreamEvent", "StreamTuning"]


@dataclass(frozen=True, slots=True)
class StreamTuning:
    """Internals that are not user configuration; tests shrink them."""

    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    pacing: ReaderPacing = field(default_factory=ReaderPacing)
    list_every_s: float = 30.0  # ListShards again to find new shards (children are looked for at once)
    dedup_window: int = 100_000  # eventIds remembered against the subscription's duplicate deliveries
    preflight_attempts: int = 3
    close_timeout_s: float = 10.0


class IncompleteResponse(Exception):
    """A 200 answer missing its fields (cut short on the way): retried, never taken as the shard's end."""


class StreamEvent(NamedTuple):
    ts_ns: int
    payload: bytes
    unit: str  # the shard id
    after: Position  # the shard's position once this event is delivered
    cluster: str | None
    audit_id: str | None
    seen: tuple[str, str] | None = None  # its key in the eventId window (forgotten if it is dropped)


class ShardReading(Delivery[StreamEvent, ShardReader]):
    """The reading half of KinesisSource (source.py sets these up and answers delivery's questions)."""

    _WORKER = "Kinesis reader"
    region: str
    stream: str
    tuning: StreamTuning
    _stream_request: dict[str, str]
    _clock: Callable[[], float]
    _leases: ShardLeases | None
    _listed: dict[str, ShardInfo]
    _readers: dict[str, ShardReader]
    _saved: dict[str, UnitState | None]
    _list_due: float
    _list_failures: int
    _retention_ms: int
    _start_ms: int
    _gate: EventGate

    def _new_client(self) -> Any:
        return aws.make_client(
            "kinesis",
            self.config,
            self.region,
            endpoint_url=self.config.kinesis_endpoint_url,
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
        )

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.tuning.backoff_max_s, self.tuning.backoff_min_s * 2 ** min(failures, 30))
        return ceiling * random.uniform(0.5, 1.0)

    def _run(self) -> None:
        # With leases, shards are acquired and lost between reads: look at the changes often.
        longest_wait = 1.0 if self._leases is None else 0.1
        while not self._stop.is_set():
            try:
                self._apply_lease_changes()
                if time.monotonic() >= self._list_due:
                    self._list_shards()
                with self._cond:
                    readers = [r for r in self._readers.values() if not r.end_read]
                nxt = min(readers, key=lambda r: r.due) if readers else None
                due = min(self._list_due, nxt.due if nxt else self._list_due)
                wait = due - time.monotonic()
                if wait > 0:
                    self._stop.wait(min(wait, longest_wait))
                    continue
                if nxt is not None and nxt.due <= time.monotonic():
                    self._read(nxt)
            except aws.Cancelled:
                break
            except Exception as exc:  # a bug must not end the stream: report, back off, go on
                self._counters[metrics.ERRORS] += 1
                log.warning(f"internal error reading {self.stream}: {exc!r}", key="internal")
                self._stop.wait(self._backoff(0))

    def _list_shards(self) -> None:
        listed: list[dict[str, Any]] = []
        request: dict[str, Any] = dict(self._stream_request)
        try:
            while True:
                self._counters[metrics.CALLS_LIST_SHARDS] += 1
                page = self._client.list_shards(**request)
                listed.extend(page.get("Shards", []))
                token = page.get("NextToken")
                if not token:
                    break
                request = {"NextToken": token}
        except aws.Cancelled:
            raise
        except Exception as exc:
            self._failed("ListShards", None, exc)
            self._list_due = time.monotonic() + self._backoff(self._list_failures)
            self._list_failures += 1
            return
        self._list_failures = 0
        self._list_due = time.monotonic() + self.tuning.list_every_s
        self._plan(parse_shards(listed))

    def _plan(self, shards: list[ShardInfo]) -> None:
        """Start a reader for every eligible shard not read yet (the one place deciding what is read).
        With leases the eligible shards are offered to the Coordinator instead; readers start when their
        lease is acquired (_apply_lease_changes)."""
        if self._leases is not None:
            with self._cond:
                self._listed = {s.shard_id: s for s in shards}
                reading = set(self._readers)
            self._leases.refresh_states(shards, self._saved, reading)
            self._leases.offer(shards, self._saved, self._start_ms)
            return
        for s in shards:
            if s.shard_id not in self._saved:
                self._saved[s.shard_id] = self._store.load(unit_key(self.stream, s.shard_id))
        with self._cond:
            states = dict(self._saved)
            for s in eligible(shards, states):
                if s.shard_id in self._readers:
                    continue
                self._start_reader(s, states.get(s.shard_id), states)

    def _start_reader(
        self, s: ShardInfo, saved: UnitState | None, states: dict[str, UnitState | None]
    ) -> None:
        """A reader for `s` from its saved state (the lineage's start time kept), else from its parents' start
        time or now - shift (called with the lock held)."""
        own = saved.get("since") if saved else None
        since = own if isinstance(own, int) else start_since(s, states, self._start_ms)
        self._readers[s.shard_id] = ShardReader(s, unit_key(self.stream, s.shard_id), since, saved)
        where = "checkpoint" if saved else f"{_iso(since)}"
        log.info(f"stream {self.stream}: reading shard {s.shard_id} from {where}")

    def _read(self, r: ShardReader) -> None:
        try:
            if r.iterator is None:
                self._counters[metrics.CALLS_GET_SHARD_ITERATOR] += 1
                request = r.iterator_request()
                try:
                    answer = self._client.get_shard_iterator(
                        **self._stream_request, ShardId=r.info.shard_id, **request
                    )
                except Exception as exc:
                    if "StartingSequenceNumber" in request and classify(exc) == "invalid":
                        self._past_retention(r, request["StartingSequenceNumber"], aws.describe(exc))
                        return
                    raise
                r.iterator = answer["ShardIterator"]
            self._counters[metrics.CALLS_GET_RECORDS] += 1
            page = self._client.get_records(
                ShardIterator=r.iterator,
                Limit=self.tuning.pacing.records_limit,
                **{k: v for k, v in self._stream_request.items() if k == "StreamARN"},  # cross-account
            )
            if not isinstance(page.get("Records"), list) or "MillisBehindLatest" not in page:
                # A 200 answer cut short parses as {}: without this it would read as "shard closed".
                raise IncompleteResponse("GetRecords answer without Records/MillisBehindLatest")
        except aws.Cancelled:
            raise
        except Exception as exc:
            self._failed("GetRecords", r, exc)
            return
        if r.failures:
            log.info(f"stream {self.stream}: shard {r.info.shard_id} reads again after {r.failures} failures")
        r.failures = 0
        records = page.get("Records", [])
        nbytes = 0
        for record in records:
            data = record["Data"]
            nbytes += len(data)
            self._take(r, str(record["SequenceNumber"]), data)
        r.millis_behind = int(page.get("MillisBehindLatest") or 0)
        if (
            not records
            and r.ordinal == 0
            and r.resumed_from is not None
            and r.millis_behind >= self._retention_ms
        ):
            # Kinesis may also accept the trimmed position and then answer empty pages, a whole retention
            # behind the newest record, without ever reaching it.
            behind_h = r.millis_behind / 3_600_000
            self._past_retention(r, r.resumed_from, f"GetRecords answers nothing, {behind_h:.1f} h behind")
            return
        nxt = page.get("NextShardIterator")
        if nxt:
            r.iterator = nxt
            r.pace(len(records), nbytes, r.millis_behind, self.tuning.pacing)
            return
        with self._cond:  # closed and read to its end: finished once its events are delivered
            r.end_read = True
            self._cond.notify_all()
        log.info(f"stream {self.stream}: shard {r.info.shard_id} closed and read to its end")

    def _past_retention(self, r: ShardReader, seq: str, cause: str) -> None:
        """Kinesis refuses the sequence number to resume from: its record is gone (older than the stream's
        retention) or of another stream (deleted and created again). Retrying cannot help: read from the
        oldest record kept."""
        self._counters[metrics.ERRORS] += 1
        r.from_trim_horizon = True
        r.iterator = r.resumed_from = r.last_read_seq = r.skip_seq = None
        r.skip_n = 0
        r.due = time.monotonic()
        log.warning(
            f"stream {self.stream}: shard {r.info.shard_id}: cannot resume after sequence number {seq} "
            f"({cause}): it is past the stream's retention. Reading from the oldest record kept "
            "(TRIM_HORIZON): events may have been lost while Falco was down longer than the retention",
            key=f"trimmed:{self.stream}:{r.info.shard_id}",
        )

    def _failed(self, operation: str, r: ShardReader | None, exc: BaseException) -> None:
        kind = "incomplete" if isinstance(exc, IncompleteResponse) else classify(exc)
        self._counters[metrics.THROTTLES if kind == "throttle" else metrics.ERRORS] += 1
        self._counters[metrics.RETRIES] += 1
        where = f"shard {r.info.shard_id}" if r else "shards"
        hint = ""
        if r is not None:
            if kind == "expired":
                r.iterator = None  # a fresh one from the newest record read (or the checkpoint)
                r.due = time.monotonic()
                log.info(f"stream {self.stream}: {where}: iterator expired, asking for a new one")
                return
            delay = self._backoff(r.failures)
            r.failures += 1
            r.due = time.monotonic() + delay
            if kind == "invalid":
                r.iterator = None
        else:
            delay = self._backoff(self._list_failures)
        if kind == "credentials":
            hint = self._renew_client()
        elif kind in ("denied", "not_found"):
            fix = open_failure(exc, stream=self.stream, region=self.region)
            hint = f". {fix}" if fix else ""
        log.warning(
            f"stream {self.stream}: {where}: {operation} failed: {aws.describe(exc)}{hint}; "
            f"retry in {delay:.1f}s",
            key=f"fail:{where}:{kind}",
        )

    def _take(self, r: ShardReader, seq: str, data: bytes) -> None:
        """One record's log events into the queue, then the shard's read position past the record."""
        decoded = decode_record(data)
        ordinal = r.ordinal
        if isinstance(decoded, Bad):
            self._counters[metrics.MALFORMED] += 1
            log.warning(
                f"stream {self.stream}: shard {r.info.shard_id}: record {seq} skipped: {decoded.reason}",
                key="badrecord",
            )
        elif not isinstance(decoded, Control) and self._gate.wanted(
            decoded.log_group, decoded.log_stream, decoded.owner
        ):
            cluster = self._gate.label(decoded.owner, decoded.log_group)
            # eventIds are unique within a log group: two accounts' /aws/eks/prod/cluster are two groups
            group = f"{decoded.owner}:{decoded.log_group}" if decoded.owner else decoded.log_group
            last = len(decoded.events) - 1
            skip = r.skip_n if r.skip_seq == seq else 0
            for index, ev in enumerate(decoded.events):
                if index < skip:
                    continue
                self._counters[metrics.EVENTS_READ] += 1
                after = Position(seq, 0 if index == last else index + 1, ordinal)
                shaped = self._gate.event(group, ev.event_id, ev.timestamp_ms, ev.message)
                if shaped is None:
                    continue
                ts_ns, payload, audit_id = shaped
                seen = (group, ev.event_id) if ev.event_id is not None else None
                item = StreamEvent(ts_ns, payload, r.info.shard_id, after, cluster, audit_id, seen)
                if not self._put(r, item):
                    raise aws.Cancelled()
        with self._cond:
            r.read_pos = Position(seq, 0, ordinal)
            r.ordinal += 1
            r.last_read_seq = seq
            r.skip_seq = None


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
