"""Kinesis source (stream mode): `kinesis://<stream name or ARN>` → a reader thread → a queue → next_batch.

A CloudWatch Logs subscription filter pushes the EKS audit log groups into the stream. The reader thread
lists the shards, reads the eligible ones (shards.py decides) with GetShardIterator/GetRecords within the
per-shard limits, decodes each record (subscription.py), passes each log event through stream_events.py
(which clusters, duplicates, shaping) and blocks while the queue is full (buffer_size events AND
buffer_bytes). The shard positions of a batch next_batch
returned are saved through the CheckpointStore when Falco asks for the next batch (or at close), so a
restart resumes at the batch boundary, inside a record if the batch ended there. Run-time failures are
retried with jittered backoff; only open fails.

With coordination_table set, replicas share the shards through DynamoDB leases (shard_leases.py): a shard
is read here between its lease's `acquired` and `lost`, its events reach Falco only while the lease is
deliverable, and its checkpoint is a write fenced by the lease.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources import Event
from k8saudit_eks_py.sources.shard_leases import ShardLeases
from k8saudit_eks_py.sources.shard_reader import ReaderPacing, ShardReader, after_key
from k8saudit_eks_py.sources.shards import Position, ShardInfo, eligible, parse_shards, start_since, unit_key
from k8saudit_eks_py.sources.stream_errors import classify, open_failure, parse_stream
from k8saudit_eks_py.sources.stream_events import EventGate
from k8saudit_eks_py.sources.subscription import Bad, Control, cluster_of, decode_record

__all__ = ["KinesisSource", "StreamTuning", "open_kinesis"]

_CLUSTER_MAP_MIN = 8192


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


class _Item(NamedTuple):
    ts_ns: int
    payload: bytes
    shard: str
    after: Position  # the shard's position once this event is delivered
    cluster: str | None
    audit_id: str | None
    seen: tuple[str, str] | None = None  # its key in the eventId window (forgotten if it is dropped)


def open_kinesis(
    params: str,
    config: PluginConfig,
    *,
    tuning: StreamTuning | None = None,
    store: CheckpointStore | None = None,
    clock: Callable[[], float] = time.time,
) -> KinesisSource:
    """`params` is what follows kinesis://. `store` replaces the checkpoint_file/in-process store. With
    coordination_table set, the shards are shared with the other replicas through the lease table."""
    tuning = tuning or StreamTuning()
    stream = parse_stream(params)
    region = stream.region or aws.resolve_region(config)
    clusters = [c.strip() for c in config.stream_clusters.split(",") if c.strip()]
    leases: ShardLeases | None = None
    if store is None and config.coordination_table:
        from k8saudit_eks_py.coordination.start import start_coordinator

        if config.checkpoint_file:
            log.info("checkpoint_file is not used with coordination_table: checkpoints live in the table")
        coordinator = start_coordinator(config, region, ())  # units come from ListShards
        leases = ShardLeases(coordinator, stream.ident)
        store = coordinator.store
    elif store is None:
        store = FileStore(config.checkpoint_file) if config.checkpoint_file else MemoryStore()
    try:
        source = KinesisSource(
            stream.ident, stream.request, config, region, clusters, tuning, store, clock, leases
        )
    except BaseException:
        store.close()
        raise
    try:
        source._preflight()
    except BaseException:
        source.close(commit=False)
        raise
    source._start()
    return source


class KinesisSource:
    def __init__(
        self,
        stream: str,
        stream_request: dict[str, str],
        config: PluginConfig,
        region: str,
        clusters: list[str],
        tuning: StreamTuning,
        store: CheckpointStore,
        clock: Callable[[], float],
        leases: ShardLeases | None = None,
    ) -> None:
        self.config = config
        self.region = region
        self.stream = stream
        self.tuning = tuning
        self._stream_request = stream_request  # {"StreamName": ...} or {"StreamARN": ...}
        self.default_cluster: str | None = clusters[0] if len(clusters) == 1 else None
        self._clock = clock
        self._store = store
        self._leases = leases  # None: this process reads every shard
        self._listed: dict[str, ShardInfo] = {}
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queue_bytes = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._readers: dict[str, ShardReader] = {}
        self._saved: dict[str, UnitState | None] = {}  # shard id → committed state (None: never saved)
        self._pending: dict[str, UnitState] = {}  # states of the batch last returned, saved on the next call
        self._list_due = 0.0
        self._list_failures = 0
        self._retention_ms = 24 * 3_600_000  # the stream's, read at open
        self._clusters_by_audit_id: dict[str, str] = {}
        self._cluster_map_cap = max(_CLUSTER_MAP_MIN, 4 * config.buffer_size)
        self._start_ms = int(clock() * 1000) - config.shift * 1000
        self._counters: dict[str, int] = dict.fromkeys(
            (
                metrics.EVENTS,
                metrics.BYTES,
                metrics.EVENTS_READ,
                metrics.THROTTLES,
                metrics.ERRORS,
                metrics.RETRIES,
                metrics.DUPLICATES_SUPPRESSED,
                metrics.TRUNCATED_RECOVERED,
                metrics.OVERSIZE,
                metrics.MALFORMED,
                metrics.RESHARDS,
                metrics.CALLS_GET_RECORDS,
                metrics.CALLS_GET_SHARD_ITERATOR,
                metrics.CALLS_LIST_SHARDS,
            ),
            0,
        )
        self._gate = EventGate(
            self._counters,
            clusters=frozenset(clusters),
            log_stream_prefix=config.log_stream_prefix,
            max_event_size=config.max_event_size,
            dedup_window=tuning.dedup_window,
        )
        self._client: Any = None
        try:
            self._client = self._new_client()
        except Exception as exc:
            text = open_failure(exc, stream=stream, region=region)
            raise OpenError(text or f"cannot create the Kinesis client: {aws.describe(exc)}") from None
        kept = ", ".join(sorted(clusters)) or "all clusters"
        log.info(f"open: reading Kinesis stream {stream} in {region} ({kept}), shift {config.shift}s")

    def _new_client(self) -> Any:
        return aws.make_client(
            "kinesis",
            self.config,
            self.region,
            endpoint_url=self.config.kinesis_endpoint_url,
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
        )

    # -------------------------------------------------------------------------------- open-time checks

    def _preflight(self) -> None:
        """DescribeStreamSummary: a missing stream, a denied action or bad credentials fail open with the
        fix; transient failures are logged and retried by the reader."""
        for attempt in range(self.tuning.preflight_attempts):
            try:
                summary = self._client.describe_stream_summary(**self._stream_request)
                status = summary.get("StreamDescriptionSummary", {}).get("StreamStatus")
                hours = summary.get("StreamDescriptionSummary", {}).get("RetentionPeriodHours")
                if isinstance(hours, int) and hours > 0:
                    self._retention_ms = hours * 3_600_000
                if status not in (None, "ACTIVE", "UPDATING"):
                    log.info(f"open: stream {self.stream} is {status}; reading starts once it is ACTIVE")
                return
            except aws.Cancelled:
                raise
            except Exception as exc:
                if not aws.is_aws_error(exc):
                    raise
                text = open_failure(exc, stream=self.stream, region=self.region)
                if text is not None:
                    raise OpenError(text) from None
                if attempt + 1 == self.tuning.preflight_attempts:
                    log.warning(f"open: stream {self.stream}: {aws.describe(exc)}; starting anyway")
                else:
                    self._stop.wait(self._backoff(attempt))

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8saudit-eks-kinesis", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------------------- reader thread

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

    def _apply_lease_changes(self) -> None:
        """Start reading the shards whose lease was acquired; forget the lost ones and their queued events
        (the new owner reads them again from the last checkpoint)."""
        if self._leases is None:
            return
        relist = False
        with self._cond:  # drained under the lock: both threads apply changes, in the order they came
            changes = self._leases.changes()
            if not changes:
                return
            for change in changes:
                if not change.acquired:
                    self._forget(change.shard_id)
                    continue
                info = self._listed.get(change.shard_id)
                if change.state and change.state.get("finished"):
                    self._saved[change.shard_id] = change.state  # finished elsewhere: its children next
                    relist = True
                elif info is not None:
                    self._saved[change.shard_id] = change.state
                    self._start_reader(info, change.state, dict(self._saved))
            self._cond.notify_all()
        if relist:
            self._list_due = 0.0

    def _forget(self, shard_id: str) -> None:
        """Stop reading a shard whose lease is gone and drop its queued events (lock held)."""
        r = self._readers.pop(shard_id, None)
        if r is None:
            return
        key = r.key
        self._pending.pop(key, None)
        if r.queued:
            kept: deque[_Item] = deque()
            for item in self._queue:
                if item.shard != shard_id:
                    kept.append(item)
                else:
                    self._gate.forget(item.seen)  # read again by the next owner, maybe this replica
            self._queue_bytes = sum(len(item.payload) for item in kept)
            self._queue = kept
        log.info(f"stream {self.stream}: stopped reading shard {shard_id} ({r.queued} queued events dropped)")

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
            hint = "; refreshing credentials"
            try:
                old, self._client = self._client, self._new_client()
                old.close()
            except Exception as rebuild:
                hint = f"; credentials not refreshed yet ({aws.describe(rebuild)})"
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
        elif not isinstance(decoded, Control) and self._gate.wanted(decoded.log_group, decoded.log_stream):
            cluster = cluster_of(decoded.log_group)
            last = len(decoded.events) - 1
            skip = r.skip_n if r.skip_seq == seq else 0
            for index, ev in enumerate(decoded.events):
                if index < skip:
                    continue
                self._counters[metrics.EVENTS_READ] += 1
                after = Position(seq, 0 if index == last else index + 1, ordinal)
                shaped = self._gate.event(decoded.log_group, ev.event_id, ev.timestamp_ms, ev.message)
                if shaped is None:
                    continue
                ts_ns, payload, audit_id = shaped
                seen = (decoded.log_group, ev.event_id) if ev.event_id is not None else None
                item = _Item(ts_ns, payload, r.info.shard_id, after, cluster, audit_id, seen)
                if not self._put(r, item):
                    raise aws.Cancelled()
        with self._cond:
            r.read_pos = Position(seq, 0, ordinal)
            r.ordinal += 1
            r.last_read_seq = seq
            r.skip_seq = None

    def _put(self, r: ShardReader, item: _Item) -> bool:
        size = len(item.payload)
        limit_n, limit_b = self.config.buffer_size, self.config.buffer_bytes
        with self._cond:
            while self._queue and (len(self._queue) >= limit_n or self._queue_bytes + size > limit_b):
                if self._stop.is_set():
                    return False
                if self._readers.get(r.info.shard_id) is not r:
                    self._gate.forget(item.seen)  # its lease was lost meanwhile: not ours to deliver
                    return True
                self._cond.wait(1.0)
            if self._stop.is_set():
                return False
            if self._readers.get(r.info.shard_id) is not r:
                self._gate.forget(item.seen)
                return True
            self._queue.append(item)
            self._queue_bytes += size
            r.queued += 1
            self._cond.notify_all()
        return True

    # -------------------------------------------------------------------------------- Falco's thread

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        # Falco asks for the next batch once it has processed the previous one: only then are the
        # previous batch's shard positions safe to save (a kill -9 mid-batch re-delivers that batch).
        self._commit_pending()
        self._apply_lease_changes()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while True:
                if self._closed:
                    return [], True
                items = self._take_deliverable(max_events)
                if items or self._finishing():
                    break  # (a drained closed shard: record it now so its children can start)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Releases the GIL while waiting. Queued events of a lease being renewed become
                # deliverable without a notify: look again soon.
                self._cond.wait(remaining if not self._queue else min(remaining, 0.05))
            for item in items:
                self._queue_bytes -= len(item.payload)
                r = self._readers[item.shard]
                r.queued -= 1
                if after_key(item.after) > after_key(r.delivered_pos):
                    r.delivered_pos = item.after
            self._pending = self._positions(touched={item.shard for item in items})
            if items:
                self._cond.notify_all()
        self._account(items)
        return [(item.ts_ns, item.payload) for item in items], False

    def _take_deliverable(self, max_events: int) -> list[_Item]:
        """The oldest queued events, up to max_events, of shards whose lease allows delivery (lock held).
        Events of a shard whose lease is not deliverable right now stay queued, in order."""
        if not self._queue:
            return []
        if self._leases is None:
            return [self._queue.popleft() for _ in range(min(max_events, len(self._queue)))]
        leases = self._leases
        allowed = {sid for sid, r in self._readers.items() if leases.deliverable(r.key)}
        if len(allowed) == len(self._readers):
            return [self._queue.popleft() for _ in range(min(max_events, len(self._queue)))]
        if not any(self._readers[sid].queued for sid in allowed):
            return []  # (waiting for a renewal: no walk through the queue every few ms)
        items: list[_Item] = []
        kept: deque[_Item] = deque()
        for item in self._queue:
            if len(items) < max_events and item.shard in allowed:
                items.append(item)
            else:
                kept.append(item)
        self._queue = kept
        return items

    def _finishing(self) -> bool:
        return any(r.end_read and not r.queued and not r.finished_sent for r in self._readers.values())

    def _positions(self, touched: set[str]) -> dict[str, UnitState]:
        """States to save for the shards whose delivered position moved (called with the lock held)."""
        states: dict[str, UnitState] = {}
        for shard_id, r in self._readers.items():
            if r.queued == 0 and after_key(r.read_pos) > after_key(r.delivered_pos):
                r.delivered_pos = r.read_pos  # records with nothing to deliver (control, other clusters)
                touched.add(shard_id)
            if r.queued == 0 and r.end_read and not r.finished_sent:
                r.finished_sent = True
                states[r.key] = r.finished_state()
            elif shard_id in touched and r.delivered_pos.seq is not None:
                states[r.key] = r.state(r.delivered_pos)
        return states

    def _account(self, items: list[_Item]) -> None:
        multi = self.default_cluster is None
        nbytes = 0
        for item in items:
            nbytes += len(item.payload)
            if multi and item.audit_id and item.cluster:
                m = self._clusters_by_audit_id
                m.pop(item.audit_id, None)
                m[item.audit_id] = item.cluster
                if len(m) > self._cluster_map_cap:
                    del m[next(iter(m))]
            r = self._readers[item.shard]
            if not r.first_delivered:
                r.first_delivered = True
                log.info(f"first event delivered from stream {self.stream} shard {item.shard}")
        self._counters[metrics.EVENTS] += len(items)
        self._counters[metrics.BYTES] += nbytes

    def _commit_pending(self) -> None:
        states, self._pending = self._pending, {}
        if not states:
            self._store.save({})  # under leases: tells a unit being handed over that all is committed
            return
        try:
            self._store.save(states)
        except CheckpointRejected as exc:  # another replica holds these shards now: stop reading them
            rejected = set(exc.unit.split(", "))
            log.warning(f"stream {self.stream}: {exc}", key="checkpoint-rejected")
            self._apply_lease_changes()
            states = {unit: state for unit, state in states.items() if unit not in rejected}
        except (OSError, ValueError) as exc:  # delivery goes on; a restart may then repeat these events
            self._counters[metrics.ERRORS] += 1
            log.warning(f"checkpoint write failed: {exc}", key="checkpoint")
            return
        finished = False
        with self._cond:
            for r in list(self._readers.values()):
                state = states.get(r.key)
                if state is None:
                    continue
                self._saved[r.info.shard_id] = state
                if state.get("finished"):
                    finished = True
                    del self._readers[r.info.shard_id]
                    if r.info.closed or r.end_read:
                        self._counters[metrics.RESHARDS] += 1
                    log.info(f"stream {self.stream}: shard {r.info.shard_id} finished; children next")
        if finished:
            self._list_due = 0.0  # look for the children now

    def cluster_for(self, audit_id: str) -> str | None:
        """The cluster of a recently delivered event (for ka.cluster.name without the EKS annotation)."""
        if self.default_cluster is not None:
            return self.default_cluster
        return self._clusters_by_audit_id.get(audit_id)

    def progress(self) -> tuple[int, str]:
        behind = self._behind_ms()
        return 0, f"{self._counters[metrics.EVENTS]} events, {behind} ms behind"

    def _behind_ms(self) -> int:
        return max((r.millis_behind for r in list(self._readers.values())), default=0)

    def metrics(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self._counters)
        out[metrics.API_CALLS] = (
            self._counters[metrics.CALLS_GET_RECORDS]
            + self._counters[metrics.CALLS_GET_SHARD_ITERATOR]
            + self._counters[metrics.CALLS_LIST_SHARDS]
        )
        out[metrics.CHECKPOINT_WRITES] = self._store.writes
        if self._leases is not None:  # units_held, takeovers, losses, rejected writes, DynamoDB calls
            out.update(self._leases.coordinator.metrics())
            out[metrics.API_CALLS] += int(out.get(metrics.CALLS_DYNAMODB, 0))
        out[metrics.SHARDS_HELD] = float(len(self._readers))
        out[metrics.MILLIS_BEHIND_LATEST] = float(self._behind_ms())
        out[metrics.LAG_SECONDS] = self._behind_ms() / 1000
        out[metrics.QUEUE_DEPTH] = len(self._queue)
        out[metrics.QUEUE_BYTES] = self._queue_bytes
        return out

    def close(self, commit: bool = True) -> None:
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(self.tuning.close_timeout_s)
            if thread.is_alive():
                log.info("Kinesis reader still in an HTTP call at close; it exits when the call returns")
        try:
            if commit:  # Falco closes after processing everything returned: all of it is delivered
                self._commit_pending()
        finally:
            self._store.close()
            if self._client is not None:
                self._client.close()
        if commit:
            log.info(f"closed after {self._counters[metrics.EVENTS]} events")


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
