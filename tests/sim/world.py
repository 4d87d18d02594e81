"""One simulated run: the kernel, the lease table, the log groups or the stream, the replicas, the events,
and the ledger the checkers read (which event was delivered by whom, when, in which batch and holding).

The world plays the schedule's steps and produces the events; everything else is the replicas' real code.
A holding ("session") of a unit by a replica begins at the Coordinator's `acquired` and ends at its
`lost` (or the process's crash). A checkpoint write the table applies is matched to the batch whose state
it carries, so the checkers know what each holding had committed when it ended.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import ClientError

from k8saudit_eks_py import log
from k8saudit_eks_py.coordination import Change
from k8saudit_eks_py.coordination.lease import CHECKPOINT, OWNER, PRESENCE_PREFIX
from k8saudit_eks_py.sources.cloudwatch import unit_key as group_key
from k8saudit_eks_py.sources.cloudwatch.ledger import Ledger
from k8saudit_eks_py.sources.kinesis.shards import unit_key as shard_key
from tests.sim.dynamodb import Faults, Network, Table, Write
from tests.sim.kernel import Kernel
from tests.sim.kinesis import SimKinesisClient, SimStream, subscription_record
from tests.sim.logs import LogEvent, SimLogGroup, SimLogsClient
from tests.sim.replicas import REGION, TABLE, PollReplica, Replica, StreamReplica
from tests.sim.schedule import Plan, Step

__all__ = ["Delivery", "Event", "Session", "World"]

EPOCH_MS = 1_767_225_600_000  # virtual time 0 is 2026-01-01T00:00:00Z
MONOTONIC_BASE = 10_000.0
STREAM = "audit"
LOG_STREAM_PREFIX = "kube-apiserver-audit-"


@dataclass(slots=True)
class Session:
    owner: str
    replica: str
    unit: str
    start: float
    end: float | None = None
    cause: str = ""
    committed: int = 0  # the newest batch whose state the table holds from this holding


@dataclass(slots=True)
class Delivery:
    time: float
    session: Session
    batch: int


@dataclass(slots=True)
class Event:
    n: int
    unit: str
    ts_ms: int  # poll: the event's timestamp; stream: the record's arrival
    visible_at: float  # virtual time from which it can be read
    deliveries: list[Delivery] = field(default_factory=list)


class World:
    def __init__(
        self, plan: Plan, trace: bool = False, origin_broken: bool = False, threads: bool = False
    ) -> None:
        self.plan = plan
        self.mode = plan.mode
        self.rng = random.Random(f"world:{plan.mode}:{plan.seed}")
        self.event_rng = random.Random(f"events:{plan.mode}:{plan.seed}")
        self.backoff_rng = random.Random(f"backoff:{plan.mode}:{plan.seed}")  # the sources' jitter
        self.kernel = Kernel(threads=threads)
        # Most schedules read the table in one Scan page (DynamoDB's are 1 MB); some in pages of two items,
        # so that a scan is several reads at different instants.
        self.table = Table(TABLE, page_items=self.rng.choice((2, 100, 100)))
        self.table.on_write = self._written
        self.network = Network(self.kernel, self.table, random.Random(f"net:{plan.mode}:{plan.seed}"))
        self.network.on_failure = self._dynamodb_failed
        self.lease_duration = plan.lease_duration
        self.shift = plan.shift
        self.polling_interval = plan.polling_interval
        self.list_every = max(2.0, plan.lease_duration / 2)
        self.origin_broken = origin_broken
        self.trace = trace
        self.lines: list[str] = []
        # events the sources delivered again, saying so, because a restored bucket could not tell the
        # delivered ones from those CloudWatch made visible late (Ledger.resolve_unsure's fallback)
        self.declared_repeats: set[int] = set()
        self.violations: list[str] = []
        self.replicas: dict[str, Replica] = {}  # owner → replica, every incarnation
        self.current: dict[str, Replica] = {}  # replica id → its running incarnation
        self.incarnations: dict[str, int] = {}
        self.sessions: list[Session] = []
        self.open_sessions: dict[tuple[str, str], Session] = {}
        self.events: dict[int, Event] = {}
        self.by_payload: dict[bytes, Event] = {}
        self.first_take: dict[str, float] = {}
        self.dynamodb_failures: dict[str, list[float]] = {}
        self.paused: dict[str, list[tuple[float, float]]] = {}  # owner → SIGSTOP..SIGCONT
        self.cut: dict[str, list[tuple[float, float]]] = {}  # replica id → cut off from DynamoDB
        self._tags: dict[tuple[str, str, str], int] = {}
        # (owner, batch) → (when Falco got it, when it asked for the next one: the batch's commit)
        self.batch_times: dict[tuple[str, int], tuple[float, float | None]] = {}
        self._n = 0
        self._batches: dict[
            tuple[str, str], tuple[int, int, int]
        ] = {}  # disorder: (window, visible, ingestion)
        self.logs: dict[str, SimLogGroup] = {}
        self.aws_throttle = 0.0  # probability that a Logs or Kinesis call is throttled
        self.logs_client = SimLogsClient(self.logs, self.wall_ms, fault=self._aws_fault)
        self.stream = SimStream(STREAM, plan.units if plan.mode == "stream" else 1)
        self.kinesis_client = SimKinesisClient(self.stream, self.wall_ms, fault=self._aws_fault)
        self.clusters: list[str] = []  # configured (poll)
        self.all_clusters = [f"c{i}" for i in range(plan.units + 4)]
        self.children: dict[str, tuple[str, ...]] = {}  # stream: child unit → parent units
        self.configured: set[str] = set()  # units some replica was configured with
        self._setup_sources()

    # ------------------------------------------------------------------ time

    epoch_ms = EPOCH_MS

    def wall_ms(self) -> int:
        return self.wall_ms_at(self.kernel.now)

    @staticmethod
    def wall_ms_at(t: float) -> int:
        return EPOCH_MS + int(t * 1000)

    def monotonic(self) -> float:
        """The CloudWatch sources' monotonic clock (their poll scheduling and backoff)."""
        return MONOTONIC_BASE + self.kernel.now

    def wall_seconds(self) -> float:
        return EPOCH_MS / 1000 + self.kernel.now

    def note(self, text: str) -> None:
        if self.trace:
            self.lines.append(f"{self.kernel.now:9.3f}s {text}")

    # ------------------------------------------------------------------ events

    def _setup_sources(self) -> None:
        if self.mode == "poll":
            for cluster in self.all_clusters:
                self.logs[f"/aws/eks/{cluster}/cluster"] = SimLogGroup(f"/aws/eks/{cluster}/cluster")
            for cluster in self.all_clusters[: self.plan.units]:
                self._add_cluster(cluster)
        else:
            for cluster in self.all_clusters[: self.plan.units]:
                self.clusters.append(cluster)
            self.kernel.at(0.0, "world", self._put_record)

    def _add_cluster(self, cluster: str) -> None:
        """A cluster whose audit log Falco is told to read: its API servers write from now on."""
        self.clusters.append(cluster)
        for _ in range(self.plan.streams_per_unit):
            self._new_log_stream(cluster, lag_ms=self.event_rng.choice((0, 200, 1500)))

    def _new_log_stream(self, cluster: str, lag_ms: int) -> None:
        group = self.logs[f"/aws/eks/{cluster}/cluster"]
        name = f"{LOG_STREAM_PREFIX}{len(group.streams)}"
        group.add_stream(name, self.wall_ms())
        unit = group_key(_config_for_keys(), REGION, group.name)
        rate = self.plan.rate / self.plan.streams_per_unit
        self._write_ahead(group, name, unit, lag_ms, rate, self.kernel.now)

    def _message(self, unit: str, ts_ms: int, visible_at: float) -> tuple[int, str]:
        self._n += 1
        message = orjson.dumps({"kind": "Event", "auditID": f"e{self._n}", "n": self._n}).decode()
        event = Event(self._n, unit, ts_ms, visible_at)
        self.events[self._n] = event
        self.by_payload[message.encode()] = event
        return self._n, message

    def _put_log_event(self, group: SimLogGroup, stream: str, unit: str, lag_ms: int, at: float) -> None:
        """An event stamped `at` (virtual; may be ahead of now: it is readable only once ingested)."""
        last = group.streams[stream].keys[-1][0] if group.streams[stream].events else 0
        ts = max(self.wall_ms_at(at), last)
        p = self.plan
        ingestion = 0
        if p.disorder:
            visible, ingestion = self._disorder(group.name, stream, ts, lag_ms)
            lag_ms = visible - ts
        n, message = self._message(unit, ts, (ts - EPOCH_MS + lag_ms) / 1000)
        group.put(stream, LogEvent(ts, f"{n:020d}", message, ts + lag_ms, ingestion))

    def _disorder(self, group: str, stream: str, ts: int, lag_ms: int) -> tuple[int, int]:
        """(visible, ingestionTime) of an event under visibility disorder: its stream's PutLogEvents batch
        (one per 500 ms of timestamps) is delayed as a whole, ingested late or ingested on time and
        searchable late (half of each); one event in 50 is delayed on its own, ingested late."""
        p = self.plan

        def delay() -> int:
            late = p.tail_every and self.event_rng.randrange(p.tail_every) == 0
            return int(
                1000 * (self.event_rng.uniform(*p.tail) if late else self.event_rng.uniform(0, p.disorder))
            )

        if self.event_rng.randrange(50) == 0:
            alone = ts + lag_ms + delay()
            return alone, alone
        window = ts // 500
        batch = self._batches.get((group, stream))
        if batch is None or batch[0] != window:
            put = (window + 1) * 500 + lag_ms
            d = delay()
            batch = (window, put + d, put if self.event_rng.random() < 0.5 else put + d)
            self._batches[(group, stream)] = batch
        return batch[1], batch[2]

    def _write_ahead(
        self, group: SimLogGroup, stream: str, unit: str, lag_ms: int, rate: float, at: float
    ) -> None:
        """The stream's events of the next second, written now (fewer callbacks than one per event)."""
        k = self.kernel
        horizon = k.now + 1.0
        while at < horizon and at <= self.plan.events_until:
            self._put_log_event(group, stream, unit, lag_ms, at)
            at += self.event_rng.expovariate(rate)
        if at <= self.plan.events_until:
            k.at(horizon, "world", lambda: self._write_ahead(group, stream, unit, lag_ms, rate, at))

    def _put_record(self, repeat: bool = True) -> None:
        k = self.kernel
        if k.now > self.plan.events_until:
            return
        cluster = self.event_rng.choice(self.clusters)
        hash_key = self.event_rng.getrandbits(128)
        shard = next(s for s in self.stream.open_shards() if s.lo <= hash_key <= s.hi)
        unit = shard_key(STREAM, shard.shard_id)
        ts = self.wall_ms()
        events = []
        for _ in range(self.event_rng.randint(1, 3)):
            n, message = self._message(unit, ts, k.now)
            events.append((f"{n:020d}", ts, message))
        data = subscription_record(f"/aws/eks/{cluster}/cluster", f"{LOG_STREAM_PREFIX}0", events)
        self.stream.put(hash_key, data, ts)
        self.configured.add(unit)
        if repeat:
            rate = self.plan.rate * len(self.stream.open_shards())
            k.at(k.now + self.event_rng.expovariate(rate), "world", self._put_record)

    def _burst(self, count: int) -> None:
        if self.mode == "poll":
            cluster = self.event_rng.choice(self.clusters)
            group = self.logs[f"/aws/eks/{cluster}/cluster"]
            stream = self.event_rng.choice(sorted(group.streams))
            s = group.streams[stream]
            lag = s.visible[-1] - s.keys[-1][0] if s.events else 0
            unit = group_key(_config_for_keys(), REGION, group.name)
            for _ in range(count):
                self._put_log_event(group, stream, unit, lag, self.kernel.now)
        else:
            for _ in range(count // 2):
                self._put_record(repeat=False)

    # ------------------------------------------------------------------ what replicas report

    def changed(self, replica: Replica, change: Change) -> None:
        key = (replica.owner, change.unit)
        if change.kind == "acquired":
            if key in self.open_sessions:
                self.violations.append(f"{self.kernel.now:.3f}s {replica.owner} acquired {change.unit} twice")
            session = Session(replica.owner, replica.id, change.unit, self.kernel.now)
            self.sessions.append(session)
            self.open_sessions[key] = session
            self.note(f"{replica.owner} acquired {change.unit} state {change.state}")
        else:
            self._end_session(key, "lost")
            self.note(f"{replica.owner} lost {change.unit}")

    def _end_session(self, key: tuple[str, str], cause: str) -> None:
        session = self.open_sessions.pop(key, None)
        if session is not None:
            session.end, session.cause = self.kernel.now, cause

    def committing(self, replica: Replica, states: dict[str, Any], final: bool = False) -> None:
        """States about to be saved: a write of one of them commits batch `replica.batches`."""
        for unit, state in states.items():
            text = orjson.dumps(state).decode()
            self._tags[(replica.id, unit, text)] = replica.batches

    def _written(self, write: Write) -> None:
        if write.key.startswith(PRESENCE_PREFIX) or write.after is None:
            return
        before = write.before or {}
        owner_before = before.get(OWNER, {}).get("S", "")
        owner_after = write.after.get(OWNER, {}).get("S", "")
        if owner_after and not owner_before and write.key not in self.first_take:
            self.first_take[write.key] = write.time
        checkpoint = write.after.get(CHECKPOINT)
        if checkpoint is not None and checkpoint != before.get(CHECKPOINT):
            tag = self._tags.get((write.replica, write.key, checkpoint["S"]))
            replica = self.current.get(write.replica)
            session = self.open_sessions.get((replica.owner, write.key)) if replica else None
            if tag is not None and session is not None:
                session.committed = max(session.committed, tag)

    def _dynamodb_failed(self, replica: str) -> None:
        self.dynamodb_failures.setdefault(replica, []).append(self.kernel.now)

    def asked(self, replica: Replica) -> None:
        """Falco asks for the next batch: it is done with the previous one, which gets committed now."""
        key = (replica.owner, replica.batches)
        if key in self.batch_times and self.batch_times[key][1] is None:
            self.batch_times[key] = (self.batch_times[key][0], self.kernel.now)

    def delivered(self, replica: Replica, batch: int, events: list[tuple[int, bytes]]) -> None:
        now = self.kernel.now
        self.batch_times[(replica.owner, batch)] = (now, None)
        units = set()
        for _, payload in events:
            event = self.by_payload.get(payload)
            if event is None:
                self.violations.append(
                    f"{now:.3f}s {replica.owner} delivered an unknown payload {payload[:60]!r}"
                )
                continue
            session = self.open_sessions.get((replica.owner, event.unit))
            if session is None:
                self.violations.append(
                    f"{now:.3f}s {replica.owner} delivered e{event.n} of {event.unit} without holding it"
                )
                session = Session(replica.owner, replica.id, event.unit, now, now, "not held")
            event.deliveries.append(Delivery(now, session, batch))
            units.add(event.unit)
        for unit in sorted(units):
            for other in self.current.values():
                if other is not replica and other.alive and other.coord.deliverable(unit):
                    self.violations.append(
                        f"{now:.3f}s {replica.owner} delivered {unit} while {other.owner} may deliver it too"
                    )
        self.note(f"{replica.owner} batch {batch}: {len(events)} events of {', '.join(sorted(units))}")

    # ------------------------------------------------------------------ the schedule's steps

    def play(self, step: Step) -> None:
        self.note(f"step: {step}")
        action = step.action
        k = self.kernel
        if action == "start":
            self._start(step.target)
        elif action == "close":
            replica = self.current.get(step.target)
            if replica is not None and replica.state == "running":
                replica.close()
        elif action == "crash":
            replica = self.current.get(step.target)
            if replica is not None and replica.alive:
                replica.crash()
                for key in [key for key in self.open_sessions if key[0] == replica.owner]:
                    self._end_session(key, "crash")
        elif action == "pause":
            replica = self.current.get(step.target)
            if replica is not None and replica.alive:
                k.pause(replica.owner)
                self.paused.setdefault(replica.owner, []).append((k.now, k.now + step.value))
                k.at(k.now + step.value, "world", lambda: k.resume(replica.owner))
        elif action == "cut":
            self.network.cut.add(step.target)
            self.cut.setdefault(step.target, []).append((k.now, k.now + step.value))
            k.at(k.now + step.value, "world", lambda: self.network.cut.discard(step.target))
        elif action.startswith("table-"):
            level = action.removeprefix("table-")
            faults = {
                "throttle": Faults(throttle=0.4, server_error=0.05),
                "lost": Faults(lost_request=0.1, lost_answer=0.2),
                "mixed": Faults(throttle=0.2, server_error=0.05, lost_request=0.05, lost_answer=0.1),
            }[level]
            self.network.faults = faults
            k.at(k.now + step.value, "world", self._calm)
        elif action == "aws-throttle":
            self.aws_throttle = 0.5
            k.at(k.now + step.value, "world", self._calm)
        elif action == "burst":
            self._burst(int(step.value))
        elif action == "logstream":
            cluster = self.event_rng.choice(self.clusters)
            self._new_log_stream(cluster, lag_ms=self.event_rng.choice((0, 500, 5000, 30000)))
        elif action == "reload":
            self._reload()
        elif action == "split":
            shard = self.event_rng.choice(self.stream.open_shards())
            for child in self.stream.split(shard.shard_id):
                self.children[shard_key(STREAM, child.shard_id)] = (shard_key(STREAM, shard.shard_id),)
        elif action == "merge":
            shards = self.stream.open_shards()
            if len(shards) >= 2:
                i = self.event_rng.randrange(len(shards) - 1)
                left, right = shards[i], shards[i + 1]
                child = self.stream.merge(left.shard_id, right.shard_id)
                self.children[shard_key(STREAM, child.shard_id)] = (
                    shard_key(STREAM, left.shard_id),
                    shard_key(STREAM, right.shard_id),
                )

    def _calm(self) -> None:
        self.network.faults = Faults()
        self.aws_throttle = 0.0

    def _aws_fault(self, operation: str) -> None:
        if self.aws_throttle and self.rng.random() < self.aws_throttle:
            code = "ThrottlingException" if self.mode == "poll" else "ProvisionedThroughputExceededException"
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                operation,
            )

    def _start(self, rid: str) -> None:
        incarnation = self.incarnations.get(rid, 0) + 1
        self.incarnations[rid] = incarnation
        if self.mode == "poll":
            groups = PollReplica.groups(_config_for_keys(), self.clusters)
            self.configured |= set(groups)
            replica: Replica = PollReplica(self, rid, incarnation, groups)
            if self.origin_broken:
                replica.coord.origin = None
        else:
            replica = StreamReplica(self, rid, incarnation)
        self.replicas[replica.owner] = replica
        self.current[rid] = replica
        replica.start()

    def _reload(self) -> None:
        """A cluster added to open_params: every running replica closes and opens again (same id)."""
        if len(self.clusters) >= len(self.all_clusters):
            return
        self._add_cluster(self.all_clusters[len(self.clusters)])
        k = self.kernel
        for rid, replica in sorted(self.current.items()):
            if replica.state != "running":
                continue
            k.at(k.now + self.rng.uniform(0, 2), "world", lambda r=replica, i=rid: self._restart(r, i))

    def _restart(self, replica: Replica, rid: str) -> None:
        if replica.state != "running" or self.current.get(rid) is not replica:
            return
        replica.close()

        def reopen() -> None:
            if replica.state == "closed" and self.current.get(rid) is replica:
                self._start(rid)
            elif replica.state == "closing":
                self.kernel.at(self.kernel.now + 0.1, "world", reopen)

        self.kernel.at(self.kernel.now + 0.1, "world", reopen)

    # ------------------------------------------------------------------ running

    def run(self, sample: Callable[[World], None] | None = None, every: float = 0.0) -> None:
        k = self.kernel
        for step in self.plan.steps:
            k.at(step.at, "world", lambda s=step: self.play(s))
        if sample is not None:
            t = 0.0
            while t <= self.plan.end:
                k.at(t, "world", lambda: sample(self))
                t += every
        saved = log.logger
        log.logger = log.Logger(stream=lambda: _Lines(self), clock=lambda: k.now)
        resolve = Ledger.resolve_unsure

        def declaring(
            ledger: Ledger,
            stream: str,
            bucket: int,
            unsure: Sequence[str],
            ts: Sequence[int] = (),
            ingestion: Sequence[int] = (),
        ) -> tuple[list[str], int]:
            chosen, repeated = resolve(ledger, stream, bucket, unsure, ts, ingestion)
            if repeated:
                self.declared_repeats.update(int(event_id) for event_id in chosen)
            return chosen, repeated

        Ledger.resolve_unsure = declaring  # type: ignore[method-assign]
        try:
            k.run(self.plan.end)
        finally:
            log.logger = saved
            Ledger.resolve_unsure = resolve  # type: ignore[method-assign]

    def shutdown(self) -> None:
        self.kernel.shutdown()


class _Lines:
    """The plugin's log lines, kept (with their virtual time) only when tracing."""

    def __init__(self, world: World) -> None:
        self.world = world

    def write(self, line: str) -> None:
        if self.world.trace:
            self.world.lines.append(f"{self.world.kernel.now:9.3f}s   {line.rstrip()}")

    def flush(self) -> None:
        pass


_KEYS_CONFIG: Any = None


def _config_for_keys() -> Any:
    """The unit keys of log groups depend on endpoint_url only: the replicas' configs all agree."""
    global _KEYS_CONFIG
    if _KEYS_CONFIG is None:
        from k8saudit_eks_py.config import PluginConfig

        _KEYS_CONFIG = PluginConfig()
    return _KEYS_CONFIG
