"""The delivery invariants of a fault schedule's run (tests.support.fault_run), from the hosts' outputs.

- Nothing lost: every event put at or after its unit's start is delivered by some replica. A unit starts at
  its first acquisition (the earliest `took` line of any replica: before it, the first holder reads from
  now - shift, which may legitimately miss older events); a shard born of a split or merge starts empty,
  so all of its events count.
- Repeats only after a fault, bounded: an event delivered again after replica R delivered it must have been
  in R's last batch before R was killed, paused or cut off from DynamoDB (or, cut off, delivered by R
  during the cut, when no checkpoint could be written); at most BATCH such events per fault.
- Never two replicas delivering one unit at overlapping times: a replica's deliveries of a unit within one
  holding (from its `took` line to its next one) span an interval; intervals of different replicas must
  not overlap. A paused process delivers nothing, so a holding it lost while paused ends at its last
  delivery before the pause; delivering after SIGCONT without taking the unit again is a violation.
- The run's own findings: balance after a quiet lease period, replicas stuck, a replica that did not stop
  cleanly (tests.support.fault_run).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from tests.support.fault_run import Incident, Outcome, Replica

__all__ = ["BATCH", "check"]

BATCH = 128  # the shim's largest batch
STAMP_SLACK_S = 0.5  # a stderr line is stamped when the runner read it, a little after it was written


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


def check(out: Outcome) -> list[str]:
    mode = out.schedule.mode
    problems = list(out.problems)
    by_replica = {r.name: r for r in out.replicas}
    deliveries = {r.name: _deliveries(r) for r in out.replicas}
    takes = {r.name: r.takes(mode) for r in out.replicas}
    sent = out.traffic.sent
    delivered: dict[str, list[Delivery]] = defaultdict(list)
    for ds in deliveries.values():
        for d in ds:
            delivered[d.event].append(d)

    # Nothing lost.
    first = out.first_takes()

    def start_of(unit: str) -> float:
        return out.start_of(unit, first)

    lost = sorted(
        (s.put_at, e, s.unit) for e, s in sent.items() if s.put_at >= start_of(s.unit) and e not in delivered
    )
    if lost:
        per_unit: dict[str, list[float]] = defaultdict(list)
        for put_at, _, unit in lost:
            per_unit[unit].append(put_at)
        where = "; ".join(
            f"{unit}: {len(ts)} put {min(ts) - start_of(unit):.1f}..{max(ts) - start_of(unit):.1f}s "
            "after its first take"
            for unit, ts in sorted(per_unit.items())
        )
        problems.append(
            f"LOST {len(lost)} of {len(sent)} events ({where}); e.g. {[e for _, e, _ in lost[:5]]}"
        )

    # Repeats only from the last batch before a fault, at most BATCH per fault.
    last_batch_before: dict[tuple[str, int], int] = {}
    for r in out.replicas:
        for k, incident in enumerate(r.incidents):
            starts = [d.batch for d in deliveries[r.name] if d.batch_t <= incident.start]
            last_batch_before[(r.name, k)] = max(starts, default=-1)
    charged: dict[tuple[str, int], set[str]] = defaultdict(set)
    unexplained: list[str] = []
    for event, ds in delivered.items():
        if len(ds) < 2:
            continue
        ds.sort(key=lambda d: d.t)
        for before, again in itertools.pairwise(ds):
            cause = _cause(by_replica[before.replica].incidents, before, again, last_batch_before)
            if cause is None:
                unexplained.append(
                    f"{event} by {before.replica} at {before.t:.2f} and {again.replica} at {again.t:.2f}"
                )
            else:
                charged[(before.replica, cause)].add(event)
    if unexplained:
        problems.append(f"REPEATED without a fault before: {len(unexplained)}, e.g. {unexplained[:3]}")
    for (name, k), events in sorted(charged.items()):
        if len(events) > BATCH:
            fault = by_replica[name].incidents[k]
            problems.append(
                f"REPEATED {len(events)} > {BATCH} events after {name}'s {fault.kind} at {fault.start:.2f}"
            )

    # Never two replicas delivering one unit at overlapping times.
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for name, ds in deliveries.items():
        per_holding: dict[tuple[str, int], list[float]] = defaultdict(list)
        for d in ds:
            if d.event not in sent:
                continue  # its put failed (as far as the traffic could tell)
            unit = sent[d.event].unit
            taken = [t for t in takes[name].get(unit, []) if t <= d.t + STAMP_SLACK_S]
            if not takes[name].get(unit):
                problems.append(f"OVERLAP: {name} delivered {d.event} of {unit} without ever taking it")
                break
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


def _cause(
    incidents: list[Incident], before: Delivery, again: Delivery, last_batch: dict[tuple[str, int], int]
) -> int | None:
    """The index of the fault of `before`'s replica that allows `again`, or None."""
    for k, incident in enumerate(incidents):
        if again.t < incident.start:
            continue
        in_last_batch = before.batch == last_batch[(before.replica, k)] and before.t <= incident.end
        during_cut = incident.kind == "cut" and incident.start <= before.t <= incident.end
        if in_last_batch or during_cut:
            return k
    return None
