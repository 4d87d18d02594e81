"""What every AWS source does between its reader thread and Falco: the one place delivery is decided.

A reader thread (CloudWatch's poller, Kinesis' shard reader) puts shaped events into a bounded queue
(`_put`: it blocks while the queue holds buffer_size events or buffer_bytes bytes). `next_batch`, on
Falco's thread, first commits the batch it returned last time — Falco asks for the next batch only once it
has processed the previous one, so only then is that batch safe to checkpoint (a kill -9 mid-batch delivers
it again after the restart instead of losing it) — then hands out the oldest queued events of the units
whose lease is safely held ("deliverable"); the others stay queued, in order, until their lease is
renewed, or are dropped with their unit when it is lost (`_drop_queued`). With no checkpoint to write,
an empty save still goes to the store: under leases it tells a unit being handed over that all is
committed. The metrics every source reports, progress and close live here too.

A source subclasses Delivery and answers a few questions about its own units (the hooks at the end).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from typing import Any, Generic, Protocol, TypeVar

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected, Coordinator
from k8saudit_eks_py.sources.types import Event

__all__ = ["COUNTERS", "Delivery", "Queued"]

# The counters every source keeps (a source adds its own: polls, reshards, calls per operation).
COUNTERS = (
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
)

_CLUSTER_MAP_MIN = 8192
_LEASE_WAIT_S = 0.05  # queued events of a lease being renewed become deliverable without a notify


class Queued(Protocol):
    """An event waiting in the queue. `unit` is the source's name for the work unit it came from."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def unit(self) -> str: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def audit_id(self) -> str | None: ...


ItemT = TypeVar("ItemT", bound=Queued)
OwnerT = TypeVar("OwnerT")  # what reads a unit (CloudWatch's _Unit, Kinesis' ShardReader)


class Delivery(ABC, Generic[ItemT, OwnerT]):
    _WORKER = "reader thread"  # how close() names the source's thread when it does not stop in time

    def __init__(
        self,
        config: PluginConfig,
        store: CheckpointStore,
        default_cluster: str | None,
        own_counters: tuple[str, ...],
        close_timeout_s: float,
    ) -> None:
        self.config = config
        self.default_cluster = default_cluster
        self._store = store
        self._counters: dict[str, int] = dict.fromkeys(COUNTERS + own_counters, 0)
        self._close_timeout_s = close_timeout_s
        self._stop = threading.Event()
        self._cond = threading.Condition()  # guards the queue and what the sources keep of their units
        self._queue: deque[ItemT] = deque()
        self._queue_bytes = 0
        self._queued: Counter[str] = Counter()  # queued events per unit
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client: Any = None
        # States of the units the batch last returned touched, saved when Falco asks for the next one.
        self._pending: dict[str, UnitState] = {}
        self._clusters_by_audit_id: dict[str, str] = {}
        self._cluster_map_cap = max(_CLUSTER_MAP_MIN, 4 * config.buffer_size)

    # -------------------------------------------------------------------------------- reader thread

    def _put(self, owner: OwnerT, item: ItemT) -> bool:
        """Queue `item`, read by `owner`, waiting while the queue is full. False: the source is stopping.
        An item whose owner stopped reading its unit meanwhile is dropped (True: not ours to deliver)."""
        size = len(item.payload)
        limit_n, limit_b = self.config.buffer_size, self.config.buffer_bytes
        with self._cond:
            while self._queue and (len(self._queue) >= limit_n or self._queue_bytes + size > limit_b):
                if self._stop.is_set():
                    return False
                if not self._owns(owner):
                    self._dropped(item)
                    return True
                self._cond.wait(1.0)
            if self._stop.is_set():
                return False
            if not self._owns(owner):
                self._dropped(item)
                return True
            self._queue.append(item)
            self._queue_bytes += size
            self._queued[item.unit] += 1
            self._on_queued(owner, item)
            self._cond.notify_all()
        return True

    def _drop_queued(self, unit: str) -> int:
        """Drop the queued events of `unit` (its lease is gone); how many (lock held)."""
        dropped = self._queued.pop(unit, 0)
        if dropped:
            kept: deque[ItemT] = deque()
            for item in self._queue:
                if item.unit != unit:
                    kept.append(item)
                else:
                    self._dropped(item)
            self._queue_bytes = sum(len(item.payload) for item in kept)
            self._queue = kept
        self._cond.notify_all()
        return dropped

    def _renew_client(self) -> str:
        """A new AWS client in place of the one whose credentials failed; the hint for the log line."""
        try:
            old, self._client = self._client, self._new_client()
            old.close()
        except Exception as rebuild:
            return f"; credentials not refreshed yet ({aws.describe(rebuild)})"
        return "; refreshing credentials"

    # -------------------------------------------------------------------------------- Falco's thread

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        self._commit_pending()
        self._apply_lease_changes()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while True:
                if self._closed:
                    return [], True
                items = self._take_deliverable(max_events)
                if items or self._finishing():
                    break  # (Kinesis: a drained closed shard is recorded now so its children can start)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Releases the GIL while waiting; short while queued events wait for their lease.
                self._cond.wait(remaining if not self._queue else min(remaining, _LEASE_WAIT_S))
            for item in items:
                self._queue_bytes -= len(item.payload)
                self._queued[item.unit] -= 1
            self._pending = self._delivered(items)
            if items:
                self._cond.notify_all()
        self._account(items)
        return [(item.ts_ns, item.payload) for item in items], False

    def _take_deliverable(self, max_events: int) -> list[ItemT]:
        """The oldest queued events, up to max_events, of units whose lease allows delivery (lock held).
        Events of a unit whose lease is not deliverable right now stay queued, in order."""
        if not self._queue:
            return []
        allowed = self._deliverable()
        if allowed is None:
            return [self._queue.popleft() for _ in range(min(max_events, len(self._queue)))]
        if not any(self._queued[unit] for unit in allowed):
            return []  # (waiting for a renewal: no walk through the queue every few ms)
        items: list[ItemT] = []
        kept: deque[ItemT] = deque()
        for item in self._queue:
            if len(items) < max_events and item.unit in allowed:
                items.append(item)
            else:
                kept.append(item)
        self._queue = kept
        return items

    def _account(self, items: list[ItemT]) -> None:
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
        self._counters[metrics.EVENTS] += len(items)
        self._counters[metrics.BYTES] += nbytes

    def _commit_pending(self) -> None:
        states, self._pending = self._pending, {}
        if not states:
            self._store.save({})  # under leases: tells a unit being handed over that all is committed
            return
        try:
            self._store.save(states)
        except CheckpointRejected as exc:  # another replica holds these units now: stop reading them
            states = self._rejected(exc, states)
        except (OSError, ValueError) as exc:  # delivery goes on; a restart may then repeat these events
            self._counters[metrics.ERRORS] += 1
            log.warning(f"checkpoint write failed: {exc}", key="checkpoint")
            return
        self._committed(states)

    def cluster_for(self, audit_id: str) -> str | None:
        """The cluster of a recently delivered event (for ka.cluster.name without the EKS annotation)."""
        if self.default_cluster is not None:
            return self.default_cluster
        return self._clusters_by_audit_id.get(audit_id)

    def progress(self) -> tuple[int, str]:
        behind = self._behind_text()
        return 0, f"{self._counters[metrics.EVENTS]} events, {behind}" if behind else "waiting"

    def _delivery_metrics(self, out: dict[str, int | float]) -> dict[str, int | float]:
        """`out` (the source's own counters and gauges) with those every source reports."""
        out[metrics.CHECKPOINT_WRITES] = self._store.writes
        coordinator = self._coordinator()
        if coordinator is not None:  # units_held, takeovers, losses, rejected writes, DynamoDB calls
            out.update(coordinator.metrics())
            out[metrics.API_CALLS] += int(out.get(metrics.CALLS_DYNAMODB, 0))
        out[metrics.QUEUE_DEPTH] = len(self._queue)
        out[metrics.QUEUE_BYTES] = self._queue_bytes
        return out

    def close(self, commit: bool = True) -> None:
        """Stop the reader thread; with `commit`, save what Falco was handed (Falco closes after processing
        everything returned: all of it is delivered). Idempotent."""
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(self._close_timeout_s)
            if thread.is_alive():
                log.info(f"{self._WORKER} still in an HTTP call at close; it exits when the call returns")
        try:
            if commit:
                self._final_commit()
        finally:
            try:
                self._store.close()
            except OSError as exc:
                log.info(f"checkpoint compaction at close failed: {exc}")
            if self._client is not None:
                self._client.close()
        if commit:
            log.info(f"closed after {self._counters[metrics.EVENTS]} events")

    # -------------------------------------------------------------------------------- the source's part

    @abstractmethod
    def _new_client(self) -> Any:
        """The AWS client the reader thread calls."""

    @abstractmethod
    def _owns(self, owner: OwnerT) -> bool:
        """Whether `owner` still reads its unit (lock held)."""

    def _on_queued(self, owner: OwnerT, item: ItemT) -> None:
        """Bookkeeping of a queued event (lock held)."""

    def _dropped(self, item: ItemT) -> None:
        """An event dropped before delivery (lock held)."""

    def _apply_lease_changes(self) -> None:
        """Take the units acquired since the last call, drop the lost ones (Falco's thread)."""

    def _deliverable(self) -> set[str] | None:
        """The units whose events may be handed to Falco now; None: all of them (lock held)."""
        return None

    def _finishing(self) -> bool:
        """True: return now although nothing is deliverable, a checkpoint is to be written (lock held)."""
        return False

    @abstractmethod
    def _delivered(self, items: list[ItemT]) -> dict[str, UnitState]:
        """Record `items` as handed to Falco; the states to save when Falco asks again (lock held)."""

    @abstractmethod
    def _rejected(self, exc: CheckpointRejected, states: dict[str, UnitState]) -> dict[str, UnitState]:
        """The lease table refused `states` (another replica holds some of them); what was saved."""

    def _committed(self, states: dict[str, UnitState]) -> None:
        """`states` are saved."""

    def _final_commit(self) -> None:
        """Save at close what Falco was handed."""
        self._commit_pending()

    def _coordinator(self) -> Coordinator | None:
        return None

    @abstractmethod
    def _behind_text(self) -> str | None:
        """How far behind the source is, for progress (None: nothing read yet)."""
