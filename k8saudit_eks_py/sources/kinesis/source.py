"""Kinesis source (stream mode): `kinesis://<stream name or ARN>` → a reader thread (reading.py) → the
bounded queue (delivery.py) → next_batch.

A CloudWatch Logs subscription filter pushes the EKS audit log groups into the stream. The shard positions
of a batch next_batch returned are saved through the CheckpointStore when Falco asks for the next batch (or
at close), so a restart resumes at the batch boundary, inside a record if the batch ended there. Run-time
failures are retried with jittered backoff; only open fails.

With coordination_table set, replicas share the shards through DynamoDB leases (shard_leases.py): a shard
is read here between its lease's `acquired` and `lost`, its events reach Falco only while the lease is
deliverable, and its checkpoint is a write fenced by the lease.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected, Coordinator
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.kinesis.reading import ShardReading, StreamEvent, StreamTuning
from k8saudit_eks_py.sources.kinesis.shard_leases import ShardLeases
from k8saudit_eks_py.sources.kinesis.shard_reader import ShardReader, after_key
from k8saudit_eks_py.sources.kinesis.shards import ShardInfo
from k8saudit_eks_py.sources.kinesis.stream_errors import open_failure, parse_stream
from k8saudit_eks_py.sources.kinesis.stream_events import EventGate

__all__ = ["KinesisSource", "StreamTuning", "open_kinesis"]


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


class KinesisSource(ShardReading):
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
        default_cluster = clusters[0] if len(clusters) == 1 else None
        super().__init__(config, store, default_cluster, _COUNTERS, tuning.close_timeout_s)
        self.region = region
        self.stream = stream
        self.tuning = tuning
        self._stream_request = stream_request  # {"StreamName": ...} or {"StreamARN": ...}
        self._clock = clock
        self._leases = leases  # None: this process reads every shard
        self._listed: dict[str, ShardInfo] = {}
        self._readers: dict[str, ShardReader] = {}
        self._saved: dict[str, UnitState | None] = {}  # shard id → committed state (None: never saved)
        self._list_due = 0.0
        self._list_failures = 0
        self._retention_ms = 24 * 3_600_000  # the stream's, read at open
        self._start_ms = int(clock() * 1000) - config.shift * 1000
        self._gate = EventGate(
            self._counters,
            clusters=frozenset(clusters),
            log_stream_prefix=config.log_stream_prefix,
            max_event_size=config.max_event_size,
            dedup_window=tuning.dedup_window,
        )
        arn = stream_request.get("StreamARN", "")
        if arn.count(":") >= 5:
            self._gate.home = arn.split(":")[4]  # else from DescribeStreamSummary at open
        try:
            self._client = self._new_client()
        except Exception as exc:
            text = open_failure(exc, stream=stream, region=region)
            raise OpenError(text or f"cannot create the Kinesis client: {aws.describe(exc)}") from None
        kept = ", ".join(sorted(clusters)) or "all clusters"
        log.info(f"open: reading Kinesis stream {stream} in {region} ({kept}), shift {config.shift}s")

    # -------------------------------------------------------------------------------- open-time checks

    def _preflight(self) -> None:
        """DescribeStreamSummary: a missing stream, a denied action or bad credentials fail open with the
        fix; transient failures are logged and retried by the reader."""
        for attempt in range(self.tuning.preflight_attempts):
            try:
                summary = self._client.describe_stream_summary(**self._stream_request)
                status = summary.get("StreamDescriptionSummary", {}).get("StreamStatus")
                arn = summary.get("StreamDescriptionSummary", {}).get("StreamARN")
                if isinstance(arn, str) and arn.count(":") >= 5:
                    self._gate.home = arn.split(":")[4]  # arn:aws:kinesis:REGION:ACCOUNT:stream/NAME
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

    # -------------------------------------------------------------------------------- leases

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
        """Stop reading a shard whose lease is gone and drop its queued events (lock held): the next owner,
        maybe this replica, reads them again from the last checkpoint."""
        r = self._readers.pop(shard_id, None)
        if r is None:
            return
        self._pending.pop(r.key, None)
        dropped = self._drop_queued(shard_id)
        log.info(f"stream {self.stream}: stopped reading shard {shard_id} ({dropped} queued events dropped)")

    # -------------------------------------------------------------------------------- delivery's questions

    def _owns(self, owner: ShardReader) -> bool:
        return self._readers.get(owner.info.shard_id) is owner  # (else its lease was lost meanwhile)

    def _dropped(self, item: StreamEvent) -> None:
        self._gate.forget(item.seen)  # not ours to deliver: read again by the shard's next owner

    def _deliverable(self) -> set[str] | None:
        if self._leases is None:
            return None
        leases = self._leases
        allowed = {sid for sid, r in self._readers.items() if leases.deliverable(r.key)}
        return None if len(allowed) == len(self._readers) else allowed

    def _finishing(self) -> bool:
        return any(
            r.end_read and not self._queued[sid] and not r.finished_sent for sid, r in self._readers.items()
        )

    def _delivered(self, items: list[StreamEvent]) -> dict[str, UnitState]:
        for item in items:
            r = self._readers[item.unit]
            if after_key(item.after) > after_key(r.delivered_pos):
                r.delivered_pos = item.after
            if not r.first_delivered:
                r.first_delivered = True
                log.info(f"first event delivered from stream {self.stream} shard {item.unit}")
        return self._positions(touched={item.unit for item in items})

    def _positions(self, touched: set[str]) -> dict[str, UnitState]:
        """States to save for the shards whose delivered position moved (called with the lock held)."""
        states: dict[str, UnitState] = {}
        for shard_id, r in self._readers.items():
            if not self._queued[shard_id] and after_key(r.read_pos) > after_key(r.delivered_pos):
                r.delivered_pos = r.read_pos  # records with nothing to deliver (control, other clusters)
                touched.add(shard_id)
            if not self._queued[shard_id] and r.end_read and not r.finished_sent:
                r.finished_sent = True
                states[r.key] = r.finished_state()
            elif shard_id in touched and r.delivered_pos.seq is not None:
                states[r.key] = r.state(r.delivered_pos)
        return states

    def _rejected(self, exc: CheckpointRejected, states: dict[str, UnitState]) -> dict[str, UnitState]:
        rejected = set(exc.unit.split(", "))  # another replica holds these shards now: stop reading them
        log.warning(f"stream {self.stream}: {exc}", key="checkpoint-rejected")
        self._apply_lease_changes()
        return {unit: state for unit, state in states.items() if unit not in rejected}

    def _committed(self, states: dict[str, UnitState]) -> None:
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

    def _coordinator(self) -> Coordinator | None:
        return None if self._leases is None else self._leases.coordinator

    def _behind_text(self) -> str | None:
        return f"{self._behind_ms()} ms behind"

    def _behind_ms(self) -> int:
        return max((r.millis_behind for r in list(self._readers.values())), default=0)

    def metrics(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self._counters)
        out[metrics.API_CALLS] = (
            self._counters[metrics.CALLS_GET_RECORDS]
            + self._counters[metrics.CALLS_GET_SHARD_ITERATOR]
            + self._counters[metrics.CALLS_LIST_SHARDS]
        )
        out = self._delivery_metrics(out)
        out[metrics.SHARDS_HELD] = float(len(self._readers))
        out[metrics.MILLIS_BEHIND_LATEST] = float(self._behind_ms())
        out[metrics.LAG_SECONDS] = self._behind_ms() / 1000
        return out


_COUNTERS = (  # besides delivery's
    metrics.RESHARDS,
    metrics.CALLS_GET_RECORDS,
    metrics.CALLS_GET_SHARD_ITERATOR,
    metrics.CALLS_LIST_SHARDS,
)
