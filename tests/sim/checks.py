"""The invariants checked after each simulated schedule (those checked as it runs are in world.py: a unit
delivered only while held, and never while another replica may deliver it).

- Nothing lost: every event of a unit put at or after the unit's origin (the first take's instant minus
  shift; for a shard born of a split or merge, the first take of any shard of its lineage minus shift,
  which is every record when it was born after that) is delivered at least once; with visibility
  disorder (poll), every such event visible within `lookback` of its timestamp.
- Repeats are bounded: an event is delivered again only by a later holding than the one that delivered
  it, and only if that earlier holding ended without committing the batch that held it (kill -9, SIGSTOP
  past the lease, DynamoDB unreachable or throttled, a rejected checkpoint), and then at most one batch
  of it (<= 128 events): the one Falco was processing, or the one whose checkpoint write failed (a
  replica delivers nothing while a write is pending).
  A holding that ends without any of these (a hand-over, a clean close) repeats nothing, unless Falco was
  still processing its last batch a whole lease_duration after the hand-over was asked (stuck): the
  Coordinator hands over without that batch's commit, and the next holder delivers it again (one batch).
- Exclusive: per unit, deliveries of two holdings never interleave.
- Order across a reshard: a child shard's events are delivered only after its parents' events.
- Balanced: after the quiet phase every running replica holds floor(M/N)..ceil(M/N) units, every unit
  held once.
- Not stuck: every running replica's lease thread and Falco loop still move, no job waits on a lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

from tests.sim.replicas import BACKOFF_MAX_S, LIST_EVERY_S
from tests.sim.world import STREAM, Event, Session, World

__all__ = ["Outcome", "check"]


@dataclass
class Outcome:
    violations: list[str] = field(default_factory=list)
    events: int = 0
    required: int = 0
    delivered: int = 0
    duplicates: int = 0
    repeated_batches_max: int = 0  # most batches one holding repeated (with DynamoDB failures)
    repeated_span_max: float = 0.0  # longest time over which they were delivered, in lease periods
    slow_falco_repeats: int = 0  # hand-overs that repeated the batch Falco was still processing
    declared_repeats: int = 0  # repeats the source declared (a restored bucket it could not resolve)
    counters: dict[str, int] = field(default_factory=dict)  # the Coordinators' lease counters, summed


def _required(world: World, event: Event) -> bool | None:
    """Whether the event must be delivered (None: its unit was never taken). Events that became readable
    too close to the end (a lagging log stream) are not required yet."""
    # readable, found by a listing (a stream behind the others), polled: with a margin
    settle = world.lease_duration + 2 * world.polling_interval + LIST_EVERY_S + BACKOFF_MAX_S + 3
    if event.visible_at > world.plan.end - settle:
        return False
    plan = world.plan
    if plan.disorder and event.unit not in world.children:
        ts = (event.ts_ms - world.epoch_ms) / 1000
        if event.visible_at - ts > plan.lookback:
            return False  # visible more than lookback after its timestamp: too late (counted)
        if ts + plan.lookback + 15 + settle > plan.end:
            return False  # the trailing sweep had no time to pass it
    if event.unit in world.children:
        # A shard born of a split or merge is read from its lineage's start: all of it when it was born
        # after that, else from the first take of its lineage minus shift, as the stream's first shards.
        takes = [world.first_take[u] for u in _lineage(world, event.unit) if u in world.first_take]
        if not takes:
            return True
        return event.ts_ms >= world.wall_ms_at(min(takes)) - world.shift * 1000
    taken = world.first_take.get(event.unit)
    if taken is None:
        return None if event.unit in world.configured else False
    origin_ms = world.wall_ms_at(taken) - world.shift * 1000
    return event.ts_ms >= origin_ms


def _lineage(world: World, unit: str) -> set[str]:
    """`unit` and all its ancestors (stream mode)."""
    found, todo = {unit}, [unit]
    while todo:
        for parent in world.children.get(todo.pop(), ()):
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


def check(world: World) -> Outcome:
    out = Outcome(violations=list(world.violations))
    v = out.violations
    v.extend(f"exception in the real code: {e}" for e in world.kernel.errors)
    untaken: set[str] = set()
    repeated: dict[int, set[int]] = defaultdict(set)  # id(session) → batches repeated from it
    repeated_at: dict[int, list[float]] = defaultdict(list)  # id(session) → when they were delivered
    sessions_by_id: dict[int, Session] = {}
    lease = world.lease_duration
    for event in world.events.values():
        out.events += 1
        need = _required(world, event)
        if need is None:
            untaken.add(event.unit)
            continue
        if event.deliveries:
            out.delivered += 1
        if need:
            out.required += 1
            if not event.deliveries:
                v.append(f"lost: e{event.n} of {event.unit} (ts {event.ts_ms - world.epoch_ms} ms)")
        ds = sorted(event.deliveries, key=lambda d: d.time)
        out.duplicates += max(0, len(ds) - 1)
        for first, again in pairwise(ds):
            s = first.session
            if s is again.session:
                v.append(
                    f"e{event.n} delivered twice by one holding of {s.owner} "
                    f"({first.time:.3f}s, {again.time:.3f}s)"
                )
                continue
            if event.n in world.declared_repeats:
                out.declared_repeats += 1  # counted and logged by the source: allowed, reported
                continue
            if first.batch <= s.committed:
                v.append(
                    f"e{event.n} delivered again at {again.time:.3f}s by {again.session.owner} although "
                    f"{s.owner} had committed its batch {first.batch}"
                )
            repeated[id(s)].add(first.batch)
            repeated_at[id(s)].append(first.time)
            sessions_by_id[id(s)] = s
    for key, batches in repeated.items():
        s = sessions_by_id[key]
        failures = [
            t
            for t in world.dynamodb_failures.get(s.replica, [])
            if s.start - lease <= t <= (s.end or world.kernel.now)
        ]
        span = max(repeated_at[key]) - min(repeated_at[key])
        end = s.end if s.end is not None else world.kernel.now
        incident = (
            failures
            or s.cause == "crash"
            or any(a <= end and b >= s.start - lease for a, b in world.paused.get(s.owner, []))
            or any(a <= end and b >= s.start - lease for a, b in world.cut.get(s.replica, []))
        )
        if not incident and len(batches) == 1:
            # Falco still busy with the batch when the hand-over went through: the Coordinator waits a
            # lease_duration for its commit, then hands over anyway.
            delivered, asked = world.batch_times[(s.owner, next(iter(batches)))]
            busy = (asked if asked is not None else world.kernel.now) - delivered
            if busy > lease:
                out.slow_falco_repeats += 1
                incident = True
        if not incident:
            v.append(
                f"holding of {s.unit} by {s.owner} ({s.start:.3f}s..{s.end}) ended without crash, pause, "
                f"cut-off or DynamoDB failure, yet {len(batches)} of its batches were delivered again"
            )
        if failures:
            out.repeated_batches_max = max(out.repeated_batches_max, len(batches))
            out.repeated_span_max = max(out.repeated_span_max, span / lease)
        if len(batches) > 1:
            v.append(
                f"holding of {s.unit} by {s.owner} ({s.start:.3f}s..{s.end}, {s.cause}) had "
                f"{len(batches)} batches delivered again: {sorted(batches)}"
            )
    for unit in sorted(untaken):
        v.append(f"{unit} was never taken by any replica")
    for replica in world.replicas.values():
        for name, value in replica.coord.counters.items():
            out.counters[name] = out.counters.get(name, 0) + value
    _exclusive(world, v)
    _reshard_order(world, v)
    _balanced(world, v)
    _moving(world, v)
    return out


def _exclusive(world: World, v: list[str]) -> None:
    by_unit: dict[str, list[tuple[float, int, Session]]] = defaultdict(list)
    for event in world.events.values():
        for d in event.deliveries:
            by_unit[event.unit].append((d.time, d.batch, d.session))
    for unit, ds in by_unit.items():
        ds.sort(key=lambda d: (d[0], d[1]))
        done: set[int] = set()
        current: Session | None = None
        for time, _, session in ds:
            if session is current:
                continue
            if id(session) in done:
                v.append(f"{unit}: {session.owner} delivered at {time:.3f}s after another holding had begun")
                return
            if current is not None:
                done.add(id(current))
            current = session


def _reshard_order(world: World, v: list[str]) -> None:
    first: dict[str, float] = {}
    last_first: dict[str, float] = {}
    for event in world.events.values():
        if not event.deliveries:
            continue
        t = min(d.time for d in event.deliveries)
        first[event.unit] = min(first.get(event.unit, t), t)
        last_first[event.unit] = max(last_first.get(event.unit, t), t)
    for child, parents in world.children.items():
        if child not in first:
            continue
        for parent in parents:
            if parent in last_first and last_first[parent] > first[child]:
                v.append(
                    f"{child} delivered from {first[child]:.3f}s before its parent {parent} was done "
                    f"({last_first[parent]:.3f}s)"
                )


def _units_now(world: World) -> set[str]:
    if world.mode == "poll":
        from tests.sim.replicas import PollReplica
        from tests.sim.world import _config_for_keys

        return set(PollReplica.groups(_config_for_keys(), world.clusters))
    from k8saudit_eks_py.sources.kinesis.shards import unit_key

    return {unit_key(STREAM, s.shard_id) for s in world.stream.open_shards()}


def _balanced(world: World, v: list[str]) -> None:
    running = [r for r in world.current.values() if r.state == "running"]
    if not running:
        v.append("no replica running at the end")
        return
    units = _units_now(world)
    n, m = len(running), len(units)
    low, high = m // n, -(-m // n)
    held = {r.owner: r.coord.held() for r in running}
    counted: dict[str, int] = defaultdict(int)
    for owned in held.values():
        for unit in owned:
            counted[unit] += 1
    missing = sorted(units - set(counted))
    twice = sorted(u for u, c in counted.items() if c > 1)
    uneven = {o: len(u) for o, u in held.items() if not low <= len(u) <= high}
    if missing or twice or uneven:
        v.append(
            f"not balanced after the quiet phase ({m} units, {n} replicas, {low}..{high} each): held "
            f"{ {o: len(u) for o, u in held.items()} }, unheld {missing}, held twice {twice}"
        )


def _moving(world: World, v: list[str]) -> None:
    now = world.kernel.now
    lease = world.lease_duration
    for r in world.current.values():
        if r.state != "running":
            continue
        if now - r.last_step_end > lease:
            v.append(f"{r.owner} stuck: its last lease round ended at {r.last_step_end:.3f}s")
        if now - r.last_ask > lease:
            v.append(f"{r.owner} stuck: Falco's last batch returned at {r.last_ask:.3f}s")
    for job, resume in world.kernel.suspended():
        if resume is None and world.current.get(job.owner.split("#")[0]) is not None:
            v.append(f"{job.owner}: job {job.name} waits on a lock since {job.started:.3f}s (deadlock)")
