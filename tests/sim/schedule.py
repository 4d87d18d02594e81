"""Seeded schedules: what happens to the replicas, the table and the units, and when.

A schedule is a pure function of (seed, mode): the same seed always gives the same steps, which is what
makes a failing run replayable. It has an active phase (replicas start, leave cleanly, crash, pause,
lose DynamoDB; the table throttles and loses answers; units appear), then a quiet phase without faults or
membership changes, long enough to hand every unit over and deliver everything (events stop before its
end), after which the invariants are checked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Plan", "Step", "generate"]


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    action: str
    target: str = ""
    value: float = 0.0

    def __str__(self) -> str:
        value = f" {self.value:g}" if self.value else ""
        return f"{self.at:9.3f}s {self.action} {self.target}{value}".rstrip()


@dataclass
class Plan:
    seed: int
    mode: str  # poll | stream
    lease_duration: int
    shift: int
    polling_interval: int
    units: int  # clusters (poll) or shards (stream) at the start
    streams_per_unit: int
    rate: float  # events/s per log group (poll) or records/s per shard (stream)
    falco_busy: tuple[float, float]  # how long Falco takes with a batch before asking for the next, s
    active_until: float
    events_until: float
    end: float
    steps: list[Step] = field(default_factory=list)
    # poll mode: CloudWatch makes events visible out of order: each event's extra delay is 0-`disorder`
    # s, and one in `tail_every` gets `tail` s instead (0: in order); `lookback` is the plugin's
    disorder: float = 0.0
    tail: tuple[float, float] = (0.0, 0.0)
    tail_every: int = 0
    lookback: int = 600

    def header(self) -> str:
        return (
            f"seed {self.seed} mode {self.mode}: lease {self.lease_duration}s, shift {self.shift}s, "
            f"{self.units} {'clusters' if self.mode == 'poll' else 'shards'}, rate {self.rate:.1f}/s, "
            + (
                f"disorder 0-{self.disorder:g}s, "
                f"1 in {self.tail_every} at {self.tail[0]:g}-{self.tail[1]:g}s, "
                f"lookback {self.lookback}s, "
                if self.disorder
                else ""
            )
            + f"faults until {self.active_until:.1f}s, events until {self.events_until:.1f}s, "
            f"end {self.end:.1f}s"
        )


def generate(seed: int, mode: str, faults: bool = True) -> Plan:
    rng = random.Random(f"{mode}:{seed}")
    lease = rng.choice((3, 3, 3, 4, 4, 6, 10, 20))
    plan = Plan(
        seed=seed,
        mode=mode,
        lease_duration=lease,
        shift=rng.choice((0, 1, 2)),
        polling_interval=rng.choice((1, 1, 2)),
        units=rng.randint(1, 5) if mode == "poll" else rng.randint(1, 4),
        streams_per_unit=rng.randint(1, 3),
        rate=rng.uniform(0.3, 1.5),
        falco_busy=rng.choice(((0.005, 0.1), (0.005, 0.1), (0.005, 0.1), (0.2, 2.0))),
        active_until=0.0,
        events_until=0.0,
        end=0.0,
    )
    steps = plan.steps
    replicas = 0
    live: list[str] = []

    def new_replica(at: float) -> None:
        nonlocal replicas
        replicas += 1
        rid = f"r{replicas}"
        live.append(rid)
        steps.append(Step(at, "start", rid))

    together = rng.random() < 0.6
    for _ in range(rng.randint(1, 4)):
        new_replica(rng.uniform(0, 0.3) if together else rng.uniform(0, 2 * lease))
    active = lease * rng.uniform(4, 7) if faults else 0.0
    t = 2 * lease
    busy: dict[str, float] = {}  # replica → end of its pause or cut-off
    while faults and t < active:
        t += rng.expovariate(1 / (1.2 * lease))
        if t >= active:
            break
        kinds = ["join", "leave", "crash", "pause", "cut", "table", "burst", "aws-throttle"]
        kinds += ["reload", "logstream"] if mode == "poll" else ["split", "merge"]
        kind = rng.choice(kinds)
        free = [r for r in live if busy.get(r, 0) < t]
        if kind == "join" or (kind in ("leave", "crash", "pause", "cut") and not free):
            new_replica(t)
        elif kind in ("leave", "crash"):
            rid = rng.choice(free)
            live.remove(rid)
            steps.append(Step(t, "close" if kind == "leave" else "crash", rid))
        elif kind in ("pause", "cut"):
            rid = rng.choice(free)
            length = lease * rng.choice((0.3, 0.8, 1.5, 3.0))
            length = min(length, active - t)
            busy[rid] = t + length
            steps.append(Step(t, "pause" if kind == "pause" else "cut", rid, round(length, 3)))
        elif kind == "table":
            length = min(lease * rng.uniform(0.5, 3), active - t)
            level = rng.choice(("throttle", "lost", "mixed"))
            steps.append(Step(t, f"table-{level}", "", round(length, 3)))
        elif kind == "aws-throttle":  # Logs (poll) or Kinesis (stream) throttled
            steps.append(Step(t, kind, "", round(min(lease * rng.uniform(0.5, 2), active - t), 3)))
        elif kind == "burst":
            steps.append(Step(t, "burst", "", rng.choice((40, 140, 260))))
        else:
            steps.append(Step(t, kind))
    t = max(t, active)
    if not live:
        new_replica(active)
    lasting = [
        s.at + s.value
        for s in steps
        if s.action in ("pause", "cut", "aws-throttle") or s.action.startswith("table")
    ]
    plan.active_until = max([active, *lasting])
    # Poll mode: a stream behind the others is found by a listing, every few seconds (replicas.py).
    plan.end = plan.active_until + 4 * lease + (12 if mode == "poll" else 4)
    plan.events_until = plan.end - 2 * lease - 3
    # Half the poll schedules: visibility disorder, with a lookback short enough for the trailing sweep
    # to pass every event within the schedule (it reads a timestamp lookback + its step + margin later).
    shuffle = random.Random(f"disorder:{mode}:{seed}")
    if mode == "poll" and shuffle.random() < 0.5:
        plan.lookback = shuffle.choice((15, 20, 30))
        plan.disorder = shuffle.choice((0.5, 2.0, 4.0))
        plan.tail = (3.0, plan.lookback * 0.9)
        plan.tail_every = shuffle.choice((20, 100))
        plan.end += plan.lookback + 25
    steps.sort(key=lambda s: s.at)
    return plan
