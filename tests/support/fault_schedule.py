"""Seeded random fault schedules for replicas of the real plugin (run by tests.support.fault_run).

A schedule is a list of timed steps drawn from one seed: replicas started together while events flow, then
at random a replica started, stopped cleanly (SIGTERM), killed (-9), paused (SIGSTOP, sometimes longer than
the lease, then SIGCONT), cut off from DynamoDB or throttled by it; the CloudWatch Logs / Kinesis reads of
every replica throttled (they share one endpoint: poll mode's checkpoint keys name it); a Kinesis shard
split or two merged; a cluster added to the open params (the config rewritten,
every replica reloading it); the event rate changed (10-500/s). Poll-mode schedules also get visibility
disorder for the whole run (the read proxy keeps each PutLogEvents batch out of FilterLogEvents for a seeded
delay: 0..HOLD s, and for a share of batches 2-8 s) with a short `lookback`, so that the trailing sweep and
the checkpointed ledger take part in every hand-over. The same seed gives the same steps: a
violation is replayed with its seed. A fault on one replica always ends with its own step (resume, uncut,
unthrottle), and that replica gets no other step meanwhile.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["LEASE_S", "Schedule", "Step", "generate"]

LEASE_S = 3
DISORDER_LOOKBACK_S = 15  # poll: the sweep re-reads 15 + 5 s behind, so a run's late events come out in it
MAX_REPLICAS = 4

# (action, weight): replica steps name the replica in `replica`; `arg` is the fault's length or the rate.
_ACTIONS = (
    ("start", 3),
    ("term", 2),
    ("kill", 3),
    ("pause", 3),
    ("cut", 2),
    ("ddb_throttle", 2),
    ("read_throttle", 2),
    ("split", 2),
    ("merge", 1),
    ("add_cluster", 2),
    ("rate", 2),
)
_ENDS = {"pause": "resume", "cut": "uncut", "ddb_throttle": "ddb_unthrottle"}


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the schedule started
    action: str
    replica: str = ""
    arg: float = 0.0

    def __str__(self) -> str:
        who = f" {self.replica}" if self.replica else ""
        arg = f" {self.arg:g}" if self.arg else ""
        return f"+{self.at:5.1f}s {self.action}{who}{arg}"


@dataclass
class Schedule:
    seed: int
    mode: str  # "poll" or "stream"
    units: int  # clusters (poll) or shards (stream) at the start
    spare_clusters: int  # poll: clusters that add_cluster steps may add, in order
    steps: list[Step] = field(default_factory=list)
    duration: float = 0.0
    # poll: (hold_s, tail share, tail low s, tail high s) for the read proxy, and the plugin's lookback
    disorder: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    lookback: int = 0

    def trace(self) -> str:
        head = f"seed {self.seed} mode {self.mode} units {self.units} spare {self.spare_clusters}"
        if self.lookback:
            head += f" disorder {self.disorder} lookback {self.lookback}"
        return "\n".join([head, *(str(s) for s in self.steps)])


def generate(seed: int, mode: str, duration: float = 24.0) -> Schedule:
    if mode not in ("poll", "stream"):
        raise ValueError(f"mode must be poll or stream, not {mode!r}")
    rng = random.Random(f"{mode}:{seed}")
    units = rng.randint(2, 3) if mode == "poll" else rng.randint(2, 4)
    sched = Schedule(seed, mode, units, spare_clusters=1 if mode == "poll" else 0, duration=duration)
    if mode == "poll":  # its own generator: the steps of a seed stay what they were
        draw = random.Random(f"disorder:{seed}")
        sched.disorder = (draw.choice((0.5, 1.0, 2.0)), draw.choice((0.0, 0.02, 0.05)), 2.0, 8.0)
        sched.lookback = DISORDER_LOOKBACK_S
    steps = sched.steps
    steps.append(Step(0.0, "rate", arg=float(rng.choice((20, 50, 100, 200)))))
    live: list[str] = []
    busy_until: dict[str, float] = {}
    born = 0
    for _ in range(rng.randint(2, 3)):  # started together while events flow
        name = f"r{born}"
        born += 1
        steps.append(Step(round(rng.uniform(0.3, 0.8), 2), "start", name))
        live.append(name)
    open_shards, added = units, 0
    reads_throttled_until = 0.0
    t = 2.0
    while True:
        t += rng.uniform(1.0, 3.0)
        if t >= duration:
            break
        free = [r for r in live if busy_until.get(r, 0.0) <= t]
        valid = []
        for action, weight in _ACTIONS:
            if action == "start" and len(live) >= MAX_REPLICAS:
                continue
            if action in ("term", "kill") and (not free or len(live) < 2):
                continue
            if action in _ENDS and not free:
                continue
            if action == "read_throttle" and reads_throttled_until > t:
                continue
            if action == "split" and (mode != "stream" or open_shards >= 6 or t < 5):
                continue
            if action == "merge" and (mode != "stream" or open_shards < 2 or t < 5):
                continue
            if action == "add_cluster" and (mode != "poll" or added >= sched.spare_clusters or t < 4):
                continue
            valid.append((action, weight))
        action = rng.choices([a for a, _ in valid], [w for _, w in valid])[0]
        at = round(t, 2)
        if action == "start":
            name = f"r{born}"
            born += 1
            live.append(name)
            steps.append(Step(at, "start", name))
        elif action in ("term", "kill"):
            victim = rng.choice(free)
            live.remove(victim)
            steps.append(Step(at, action, victim))
        elif action in _ENDS:
            who = rng.choice(free)
            if action == "pause" and rng.random() < 0.5:
                length = rng.uniform(LEASE_S + 1.0, LEASE_S + 4.0)  # the lease expires meanwhile
            elif action == "pause":
                length = rng.uniform(0.3, LEASE_S / 2)
            else:
                length = rng.uniform(2.0, 6.0)
            length = round(length, 2)
            busy_until[who] = at + length + 0.5
            steps.append(Step(at, action, who, length))
            steps.append(Step(round(at + length, 2), _ENDS[action], who))
        elif action == "read_throttle":
            length = round(rng.uniform(2.0, 6.0), 2)
            reads_throttled_until = at + length + 0.5
            steps.append(Step(at, "read_throttle", arg=length))
            steps.append(Step(round(at + length, 2), "read_unthrottle"))
        elif action == "split":
            open_shards += 1
            steps.append(Step(at, "split"))
        elif action == "merge":
            open_shards -= 1
            steps.append(Step(at, "merge"))
        elif action == "add_cluster":
            added += 1
            steps.append(Step(at, "add_cluster"))
        else:
            steps.append(Step(at, "rate", arg=float(rng.choice((10, 30, 100, 250, 500)))))
    steps.sort(key=lambda s: s.at)
    return sched
