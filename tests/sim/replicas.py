"""One simulated replica: the real Coordinator, FencedStore and source class, driven in virtual time.

Nothing of the protocol is re-implemented here. The replica builds what open() builds (a Coordinator on a
LeaseTable, UnitLeases or ShardLeases, CloudWatchSource or KinesisSource following the leases) with three
substitutions: the DynamoDB, Logs and Kinesis clients are the simulated ones, the clocks and sleep are
virtual, and the Coordinator's per-unit locks are SimLocks (a real lock contended between two jobs would
block the whole simulation). Then it plays the threads the plugin would run:

- the lease thread: `Coordinator.step()` as a job, the next one when step() asks (sooner on set_units);
- the poller / reader thread: CloudWatchSource._step per unit each polling interval, or
  KinesisSource._apply_lease_changes / _list_shards / _read each tick (the sources' own loop bodies);
- Falco: `next_batch(128, 0)` after processing the previous batch, committing it (as a job when that
  commit talks to DynamoDB); what it returns is recorded as delivered at that instant.
"""

from __future__ import annotations

import queue
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from k8saudit_eks_py import aws
from k8saudit_eks_py.checkpoint_store import MemoryStore
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import Change, Coordinator, LeaseTable
from k8saudit_eks_py.sources.cloudwatch import CloudWatchSource, Tuning, unit_key
from k8saudit_eks_py.sources.cloudwatch.unit_leases import LogGroup, UnitLeases
from k8saudit_eks_py.sources.kinesis import KinesisSource, StreamTuning
from k8saudit_eks_py.sources.kinesis.shard_leases import ShardLeases
from tests.sim.dynamodb import SimDynamoClient
from tests.sim.kernel import Job, SimLock

if TYPE_CHECKING:
    from tests.sim.world import World

__all__ = ["PollReplica", "Replica", "StreamReplica"]

TABLE = "leases"
REGION = "us-east-1"
MAX_EVENTS = 128  # what Falco asks for per batch
LIST_EVERY_S = 5.0  # poll mode: DescribeLogStreams of the recent streams
BACKOFF_MAX_S = 3.0  # poll mode: the longest wait after failed calls


class _Changes(queue.Queue[Change]):
    """The Coordinator's `changes`, telling the world when a holding begins and ends."""

    def __init__(self, seen: Callable[[Change], None]) -> None:
        super().__init__()
        self._seen = seen

    def put(self, item: Change, block: bool = True, timeout: float | None = None) -> None:
        self._seen(item)
        super().put(item, block, timeout)


class SimCoordinator(Coordinator):
    """The real Coordinator; only its per-unit locks are SimLocks and its changes are observed."""

    def __init__(self, sim_lock: Callable[[], SimLock], seen: Callable[[Change], None], *a: Any, **kw: Any):
        super().__init__(*a, **kw)
        self._sim_lock = sim_lock
        self._sim_locks: dict[str, SimLock] = {}
        self.changes = _Changes(seen)
        self.on_wake: Callable[[], None] = lambda: None

    def wake(self) -> None:
        self.on_wake()

    def unit_lock(self, unit: str) -> Any:
        with self._lock:
            lock = self._sim_locks.get(unit)
            if lock is None:
                lock = self._sim_locks[unit] = self._sim_lock()
            return lock


class SimCloudWatchSource(CloudWatchSource):
    def __init__(self, client: Any, *a: Any, **kw: Any) -> None:
        self._sim_client = client
        super().__init__(*a, **kw)

    def _new_client(self) -> Any:
        return self._sim_client


class SimKinesisSource(KinesisSource):
    def __init__(self, client: Any, *a: Any, **kw: Any) -> None:
        self._sim_client = client
        super().__init__(*a, **kw)

    def _new_client(self) -> Any:
        return self._sim_client


class Replica:
    """What both modes share: the lease thread, Falco, and the bookkeeping the checkers read."""

    def __init__(self, world: World, rid: str, incarnation: int) -> None:
        self.world = world
        self.id = rid
        self.owner = f"{rid}#{incarnation}"  # the kernel's name for this process
        self.state = "running"  # running | closing | closed | crashed
        self.batches = 0
        self.last_step_end = world.kernel.now
        self.last_ask = world.kernel.now
        self._step_job: Job | None = None
        self._woken = False
        self._offset = world.rng.uniform(0, 1000)  # monotonic clocks of processes differ
        k = world.kernel
        self.clock: Callable[[], float] = lambda: k.now + self._offset
        self.client = SimDynamoClient(world.network, rid, timeout=max(1.0, world.lease_duration / 6))
        self.config = PluginConfig(
            shift=world.shift,
            polling_interval=world.polling_interval,
            lookback=world.plan.lookback,
            lease_duration=world.lease_duration,
            coordination_table=TABLE,
            buffer_size=1_000_000,  # the simulated poller never blocks on a full queue
            buffer_bytes=1 << 40,
            replica_id=rid,
        )

    def coordinator(self, units: Iterable[str], origin: Callable[[str], Any] | None) -> SimCoordinator:
        k = self.world.kernel
        coord = SimCoordinator(
            lambda: SimLock(k),
            lambda change: self.world.changed(self, change),
            LeaseTable(self.client, TABLE),
            self.id,
            self.world.lease_duration,
            units,
            clock=self.clock,
            sleep=k.sleep,
            rng=random.Random(self.world.rng.getrandbits(64)),
            origin=origin,
        )
        coord.on_wake = self.wake
        return coord

    # ------------------------------------------------------------------ the plugin's threads

    source: Any
    coord: SimCoordinator

    def start(self) -> None:
        k = self.world.kernel
        self._step_job = k.spawn(k.now, self.owner, "lease round", self._round, self._after_round)
        k.at(k.now + self.world.rng.uniform(0, 0.2), self.owner, self._ask)
        self.start_reader()

    def start_reader(self) -> None:
        raise NotImplementedError

    def _round(self) -> float:
        started = self.clock()
        delay = self.coord.step()
        return delay - (self.clock() - started)

    def _after_round(self, delay: float) -> None:
        k = self.world.kernel
        self.last_step_end = k.now
        if self.state == "running":
            if self._woken:
                delay, self._woken = 0.0, False
            self._step_job = k.spawn(
                k.now + max(0.0, delay), self.owner, "lease round", self._round, self._after_round
            )

    def wake(self) -> None:
        """The lease thread's _wake: a round now instead of at its period (set_units, a commit that
        finished a hand-over or left a write pending); during a round, another one right after it."""
        k = self.world.kernel
        if self._step_job is None:
            return
        if k.cancel(self._step_job):
            self._step_job = k.spawn(k.now, self.owner, "lease round", self._round, self._after_round)
        else:
            self._woken = True

    def _ask(self) -> None:
        if self.state != "running":
            return
        k = self.world.kernel
        if self.source._pending:  # the commit talks to DynamoDB: a job that may block
            k.spawn(k.now, self.owner, "next_batch", self._next_batch, self._delivered)
        else:
            self._delivered(self._next_batch())

    def _next_batch(self) -> list[tuple[int, bytes]]:
        self.world.asked(self)
        self.world.committing(self, dict(self.source._pending))
        events, _ = self.source.next_batch(MAX_EVENTS, 0.0)
        return events

    def _delivered(self, events: list[tuple[int, bytes]]) -> None:
        k = self.world.kernel
        self.last_ask = k.now
        if events:
            self.batches += 1
            self.world.delivered(self, self.batches, events)
        if self.state == "running":
            # Busy: the time Falco takes to process a batch; idle: next_batch's wait for events.
            busy = self.world.plan.falco_busy
            pause = self.world.rng.uniform(*busy) if events else self.world.rng.uniform(0.3, 1.0)
            k.at(k.now + pause, self.owner, self._ask)

    # ------------------------------------------------------------------ the process's end

    def close(self) -> None:
        """Falco stops asking, then closes the source: it commits and releases its leases."""
        self.state = "closing"
        k = self.world.kernel
        k.spawn(k.now, self.owner, "close", self._close, self._closed)

    def _close(self) -> None:
        self.world.committing(self, self.final_states(), final=True)
        self.source.close()

    def final_states(self) -> dict[str, Any]:
        """What the source's close() writes."""
        return dict(self.source._pending)

    def _closed(self, _: object) -> None:
        self.state = "closed"
        k = self.world.kernel
        k.at(k.now, "world", lambda: k.kill(self.owner))

    def crash(self) -> None:
        self.state = "crashed"
        self.world.kernel.kill(self.owner)

    @property
    def alive(self) -> bool:
        return self.state in ("running", "closing")


class PollReplica(Replica):
    def __init__(self, world: World, rid: str, incarnation: int, groups: dict[str, LogGroup]) -> None:
        super().__init__(world, rid, incarnation)
        # Listings and backoff shrunk as the integration tests do (a schedule lasts a minute or two: a 60 s
        # backoff after a throttled spell would outlast it; it delays reading, it does not change what
        # is delivered).
        tuning = Tuning(list_every_s=LIST_EVERY_S, full_list_every_s=60.0, backoff_max_s=BACKOFF_MAX_S)
        self.source = SimCloudWatchSource(
            world.logs_client,
            self.config,
            REGION,
            tuning,
            MemoryStore(),
            world.wall_seconds,
            None,
            monotonic=world.monotonic,
            rng=world.backoff_rng,
        )
        self.coord = self.coordinator(groups, self.source.origin_state)
        self.source.follow_leases(UnitLeases(self.coord, dict(groups)))

    @staticmethod
    def groups(config: PluginConfig, clusters: Iterable[str]) -> dict[str, LogGroup]:
        out = {}
        for cluster in clusters:
            group = f"/aws/eks/{cluster}/cluster"
            out[unit_key(config, REGION, group)] = LogGroup(cluster, group)
        return out

    def start_reader(self) -> None:
        k = self.world.kernel
        k.at(k.now + self.world.rng.uniform(0, 1), self.owner, self._poll)

    def final_states(self) -> dict[str, Any]:
        return dict(self.source.checkpoint_states())

    def _poll(self) -> None:
        """The poller thread's loop body (CloudWatchSource._run): the call due the longest, when it is due;
        the source's own due times decide, on the virtual monotonic clock (world.py)."""
        if self.state != "running":
            return
        k = self.world.kernel
        source = self.source
        for _ in range(1000):  # calls at this instant (the simulated Logs answers at once)
            with source._cond:
                job = source._next_job()
            if job is None:
                k.at(k.now + 0.2, self.owner, self._poll)
                return
            at, unit, listing = job
            wait = at - self.world.monotonic()
            if wait > 0:
                k.at(k.now + min(wait, 0.5), self.owner, self._poll)
                return
            try:
                if listing:
                    source._list_step(unit)
                else:
                    source._step(unit)
            except aws.Cancelled:
                return
            except Exception as exc:  # the real loop logs and backs off; here it fails the run
                k.errors.append(f"{self.owner} poller: {exc!r}")
                k.at(k.now + 1.0, self.owner, self._poll)
                return
            source._report_lag()
        k.errors.append(f"{self.owner} poller: 1000 calls due at one instant")


class StreamReplica(Replica):
    def __init__(self, world: World, rid: str, incarnation: int) -> None:
        super().__init__(world, rid, incarnation)
        self.coord = self.coordinator((), None)
        leases = ShardLeases(self.coord, world.stream.name)
        tuning = StreamTuning(list_every_s=world.list_every)
        self.source = SimKinesisSource(
            world.kinesis_client,
            world.stream.name,
            {"StreamName": world.stream.name},
            self.config,
            REGION,
            [],
            tuning,
            self.coord.store,
            world.wall_seconds,
            leases,
        )
        self._next_list = 0.0

    def start_reader(self) -> None:
        k = self.world.kernel
        k.at(k.now + self.world.rng.uniform(0, 0.3), self.owner, self._tick)

    def _tick(self) -> None:
        """The reader thread's loop body: lease changes, ListShards when due, one GetRecords per shard."""
        if self.state != "running":
            return
        k = self.world.kernel
        if k.now >= self._next_list or self.source._list_due == 0.0:
            # Offering shards reads their states from the table: a job that may block.
            k.spawn(k.now, self.owner, "list shards", self._list, lambda _: self._read_all())
            return
        self._read_all()

    def _list(self) -> None:
        self.source._apply_lease_changes()
        self.source._list_shards()
        self._next_list = self.world.kernel.now + self.world.list_every

    def _read_all(self) -> None:
        if self.state != "running":
            return
        k = self.world.kernel
        self.source._apply_lease_changes()
        busy = False
        for reader in list(self.source._readers.values()):
            if not reader.end_read and reader.info.shard_id in self.source._readers:
                before = reader.ordinal
                self.source._read(reader)
                busy = busy or reader.ordinal != before
        if self.state == "running":
            # The reader's pacing: 5 GetRecords/s while records come, ReaderPacing.idle_s when caught up.
            k.at(k.now + (0.2 if busy else 0.5), self.owner, self._tick)
