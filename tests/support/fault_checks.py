"""The delivery invariants of a fault schedule's run (tests.support.fault_outcome), from the hosts' outputs.

- Nothing lost: every event put at or after its unit's start is delivered by some replica. A log group
  starts when its first holder opened (or reopened) before taking it: it reads from that open time - shift,
  so an event written after Falco opened is never lost to start-up, visibility disorder included. A shard
  starts at its first acquisition (the earliest `took` line of any replica); a shard born of a split or
  merge starts empty, so all of its events count.
- Repeats only after a fault, at most BATCH per fault (README, "what can repeat"): an event delivered by
  replica R and again later must have been in R's last batch before R was killed, paused, cut off from
  DynamoDB or throttled by it (cut off or throttled: or delivered during that window, when its checkpoint
  could not be written); or the later delivery is the batch a paused replica returned when it resumed
  (its next_batch call spanned the pause: no fencing can stop a frozen process).
- Or declared (poll mode, README's disorder row): a replica whose sweep could not tell, after a restart or
  hand-over, which of a bucket's events its predecessor had delivered, delivers them all and says how many
  repeat in a log line; that many repeats of that replica and unit are accepted, no more.
- Never two replicas delivering one unit at overlapping times: a replica's deliveries of a unit within one
  holding (from its `took` line to its next one) span an interval; intervals of different replicas must
  not overlap. A paused process delivers nothing, so a holding it lost while paused ends at its last
  delivery before the pause; delivering after SIGCONT (beyond the batch returned on resuming) without
  taking the unit again is a violation.
- The run's own findings: balance after a quiet lease period, replicas stuck, a replica that did not stop
  cleanly (tests.support.fault_run).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from tests.support.fault_outcome import Outcome, Replica

__all__ = ["BATCH", "check"]

BATCH = 128  # the shim's largest batch
STAMP_SLACK_S = 0.5  # a stderr line is stamped when the runner read it, a little after it was written
WINDOWED = ("cut", "throttle")  # faults during which checkpoints may fail to be written


_DECLARED = re.compile(
    r"warning: /aws/eks/([^/]+)/cluster: (\d+) events behind a restart's positions delivered again"
)


def _declared(r: Replica) -> Counter[str]:
    """Unit → the repeats replica `r` declared (rate-limited lines undercount: never too lenient)."""
    out: Counter[str] = Counter()
    for _, line in r.proc.stamped_stderr():
        m = _DECLARED.search(line)
        if m:
            out[m.group(1)] += int(m.group(2))
    return out


@dataclass(frozen=True, slots=True)
class Delivery:
    t: float
    event: str
    replica: str
    batch: int  # index of the batch in the replica's output
    batch_t: float


def _deliveries(r: Replica) -> list[Delivery]:
    out: list[Delivery] = []
    batch, batch_t = -1, 0.0
    for row in r.proc.lines():
        if "batch" in row:
            batch, batch_t = batch + 1, float(row["t"])
        elif "values" in row:
            out.append(Delivery(float(row["t"]), row["values"][0][0], r.name, batch, batch_t))
    return out


@dataclass
class _Faults:
    """Per replica and fault (by index in Replica.incidents): its last batch before the fault and, for a
    pause, the batch it returned on resuming."""

    replicas: dict[str, Replica]
    last_before: dict[tuple[str, int], int]
    on_resume: dict[tuple[str, int], int]

    @classmethod
    def of(cls, out: Outcome, deliveries: dict[str, list[Delivery]]) -> _Faults:
        last_before, on_resume = {}, {}
        for r in out.replicas:
            for k, fault in enumerate(r.incidents):
                ds = deliveries[r.name]
                last_before[(r.name, k)] = max((d.batch for d in ds if d.batch_t <= fault.start), default=-1)
                if fault.kind == "pause":
                    on_resume[(r.name, k)] = min((d.batch for d in ds if d.batch_t >= fault.end), default=-1)
        return cls({r.name: r for r in out.replicas}, last_before, on_resume)

    def cause(self, before: Delivery, again: Delivery) -> tuple[str, int] | None:
        """The fault that allows `again` to repeat `before`, or None."""
        for k, fault in enumerate(self.replicas[before.replica].incidents):
            if again.t < fault.start:
                continue
            in_last_batch = before.batch == self.last_before[(before.replica, k)] and before.t <= fault.end
            in_window = fault.kind in WINDOWED and fault.start <= before.t <= fault.end
            if in_last_batch or in_window:
                return (before.replica, k)
        for k, fault in enumerate(self.replicas[again.replica].incidents):
            if fault.kind == "pause" and again.batch == self.on_resume[(again.replica, k)]:
                return (again.replica, k)
        return None

    def resumed_batches(self, name: str) -> set[int]:
        return {b for (r, _), b in self.on_resume.items() if r == name}


def check(out: Outcome) -> list[str]:
    mode = out.schedule.mode
    problems = list(out.problems)
    deliveries = {r.name: _deliveries(r) for r in out.replicas}
    takes = {r.name: r.takes(mode) for r in out.replicas}
    faults = _Faults.of(out, deliveries)
    sent = out.traffic.sent
    delivered: dict[str, list[Delivery]] = defaultdict(list)
    for ds in deliveries.values():
        for d in ds:
            delivered[d.event].append(d)

    # Nothing lost.
    first = out.first_takes()
    required = out.required()
    lost = sorted((s.put_at, e, s.unit) for e, s in sent.items() if e in required and e not in delivered)
    if lost:
        per_unit: dict[str, list[float]] = defaultdict(list)
        for put_at, _, unit in lost:
            per_unit[unit].append(put_at - out.start_of(unit, first))
        where = "; ".join(
            f"{unit}: {len(ts)} put {min(ts):.1f}..{max(ts):.1f}s after its first take"
            for unit, ts in sorted(per_unit.items())
        )
        problems.append(
            f"LOST {len(lost)} of {len(sent)} events ({where}); e.g. {[e for _, e, _ in lost[:5]]}"
        )

    # Repeats only after a fault, at most BATCH per fault.
    charged: dict[tuple[str, int], set[str]] = defaultdict(set)
    unexplained: list[str] = []
    declared = {r.name: _declared(r) for r in out.replicas}
    for event, ds in delivered.items():
        ds.sort(key=lambda d: d.t)
        for before, again in itertools.pairwise(ds):
            unit = sent[event].unit if event in sent else ""
            if declared[again.replica][unit] > 0:
                declared[again.replica][unit] -= 1
                continue
            cause = faults.cause(before, again)
            if cause is None:
                unexplained.append(
                    f"{event} by {before.replica} at {before.t:.2f} and {again.replica} at {again.t:.2f}"
                )
            else:
                charged[cause].add(event)
    if unexplained:
        problems.append(f"REPEATED without a fault before: {len(unexplained)}, e.g. {unexplained[:3]}")
    for (name, k), events in sorted(charged.items()):
        if len(events) > BATCH:
            fault = faults.replicas[name].incidents[k]
            problems.append(
                f"REPEATED {len(events)} > {BATCH} events after {name}'s {fault.kind} at {fault.start:.2f}"
            )

    # Never two replicas delivering one unit at overlapping times.
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for name, ds in deliveries.items():
        resumed = faults.resumed_batches(name)
        per_holding: dict[tuple[str, int], list[float]] = defaultdict(list)
        for d in ds:
            if d.event not in sent or d.batch in resumed:
                continue  # a put that failed as far as the traffic could tell; the batch of a frozen call
            unit = sent[d.event].unit
            if not takes[name].get(unit):
                problems.append(f"OVERLAP: {name} delivered {d.event} of {unit} without ever taking it")
                break
            taken = [t for t in takes[name][unit] if t <= d.t + STAMP_SLACK_S]
            per_holding[(unit, max(len(taken) - 1, 0))].append(d.t)
        for (unit, _), ts in per_holding.items():
            spans[unit].append((min(ts), max(ts), name))
    for unit, intervals in spans.items():
        intervals.sort()
        for i, (a0, a1, ra) in enumerate(intervals):
            for b0, b1, rb in intervals[i + 1 :]:
                if rb != ra and b0 < a1:
                    problems.append(
                        f"OVERLAP on {unit}: {ra} delivered {a0:.2f}..{a1:.2f}, {rb} {b0:.2f}..{b1:.2f}"
                    )
    return problems
