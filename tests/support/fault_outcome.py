"""What a fault schedule's run leaves behind (tests.support.fault_run), for tests.support.fault_checks: each
replica with its faults and its lease log, the events put, the units at the end."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tests.support.fault_schedule import Schedule
from tests.support.fault_traffic import Traffic
from tests.support.faultproxy import FaultProxy
from tests.support.host_procs import HostProc

__all__ = ["Incident", "Outcome", "Replica", "end_incident"]

TOOK = re.compile(r"replica (\S+) took (\S+) \(")


@dataclass
class Incident:
    kind: str  # kill, pause, cut, throttle (of DynamoDB): the faults after which a repeat is allowed
    start: float
    end: float


@dataclass
class Replica:
    name: str
    proc: HostProc
    proxy: FaultProxy
    incidents: list[Incident] = field(default_factory=list)
    stopped: bool = False  # SIGTERM sent
    killed: bool = False

    @property
    def live(self) -> bool:
        return not self.stopped and not self.killed

    def opens(self) -> list[float]:
        """When this replica's host called open (its first open and each reload's)."""
        return [float(r["t"]) for r in self.proc.lines() if "opened" in r or ("reopened" in r and "t" in r)]

    def takes(self, mode: str) -> dict[str, list[float]]:
        """unit → when this replica took it (its `took` log lines, as stamped when read)."""
        takes: dict[str, list[float]] = {}
        for t, line in self.proc.stamped_stderr():
            m = TOOK.search(line)
            if m and m.group(1) == self.name:
                key = m.group(2)
                unit = key.rsplit("|", 1)[-1] if mode == "stream" else key.rstrip("/").split("/")[-2]
                takes.setdefault(unit, []).append(t)
        return takes


@dataclass
class Outcome:
    schedule: Schedule
    replicas: list[Replica]
    traffic: Traffic
    units: list[str]  # the units at the end (clusters, or open shards)
    problems: list[str]  # violations seen while running (balance, stuck, exit codes)
    shard_parents: dict[str, list[str]]  # stream: shard → its parents (none for the stream's first shards)

    def first_takes(self) -> dict[str, float]:
        """unit → from when its events must all be delivered. Stream mode: the first time any replica took
        it (the first holder reads from then). Poll mode: when the first taker (re)opened before taking it,
        since the first holder reads from its open time - shift (an event written after Falco opened is
        never lost to start-up)."""
        first: dict[str, float] = {}
        for r in self.replicas:
            opens = r.opens()
            for unit, ts in r.takes(self.schedule.mode).items():
                t = min(ts)
                if self.schedule.mode == "poll":
                    t = max((o for o in opens if o <= t), default=t)
                first[unit] = min(first.get(unit, math.inf), t)
        return first

    def start_of(self, unit: str, first_takes: dict[str, float]) -> float:
        """From when every event put into `unit` must be delivered: its first acquisition (the first holder
        reads from then - shift); for a shard born of a split or merge, the first acquisition of any shard
        of its lineage (all of it when it was born after that: it starts empty)."""
        lineage, todo = {unit}, [unit]
        while todo:
            for parent in self.shard_parents.get(todo.pop(), []):
                if parent not in lineage:
                    lineage.add(parent)
                    todo.append(parent)
        return min((first_takes[u] for u in lineage if u in first_takes), default=-math.inf)

    def required(self) -> set[str]:
        first = self.first_takes()
        return {e for e, s in self.traffic.sent.items() if s.put_at >= self.start_of(s.unit, first)}


def end_incident(r: Replica, kind: str, at: float) -> None:
    for incident in r.incidents:
        if incident.kind == kind and incident.end == math.inf:
            incident.end = at
