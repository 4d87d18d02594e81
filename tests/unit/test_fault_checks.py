"""The fault-schedule invariants (tests.support.fault_checks) flag what they promise to flag, on hand-made
host outputs: a lost event, a repeat with no fault before it or beyond one batch, two replicas delivering
one unit at once; and accept what a fault allows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.fault_checks import BATCH, check
from tests.support.fault_outcome import Incident, Outcome, Replica
from tests.support.fault_schedule import Schedule
from tests.support.fault_traffic import Sent

KEY = "http://127.0.0.1:1|us-east-1|/aws/eks/c0/cluster"


@dataclass
class FakeProc:
    """What a host printed: batches of (t, event id), and its stamped `took` lines."""

    batches: list[tuple[float, list[tuple[float, str]]]] = field(default_factory=list)
    took: list[float] = field(default_factory=list)
    name: str = ""
    said: list[str] = field(default_factory=list)  # other stderr lines (stamped at 0)

    def lines(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for k, (t, events) in enumerate(self.batches):
            rows.append({"batch": k + 1, "size": len(events), "t": t})
            rows.extend({"t": te, "values": [[e], ["c0"]]} for te, e in events)
        return rows

    def stamped_stderr(self) -> list[tuple[float, str]]:
        took = [(t, f"[k8saudit-eks] info: replica {self.name} took {KEY} (free)") for t in self.took]
        return took + [(0.0, line) for line in self.said]


@dataclass
class FakeTraffic:
    sent: dict[str, Sent]


def replica(name: str, took: list[float], batches: list[tuple[float, list[tuple[float, str]]]]) -> Replica:
    return Replica(name, FakeProc(batches, took, name), None)  # type: ignore[arg-type]


def outcome(replicas: list[Replica], sent: dict[str, float]) -> Outcome:
    traffic = FakeTraffic({e: Sent("c0", t) for e, t in sent.items()})
    return Outcome(Schedule(0, "poll", 1, 0), replicas, traffic, ["c0"], [], {})  # type: ignore[arg-type]


def events(first: int, count: int, t: float) -> list[tuple[float, str]]:
    return [(t, f"a-{n}") for n in range(first, first + count)]


def test_clean_handover_passes_and_events_before_the_first_take_are_not_required() -> None:
    r0 = replica("r0", [100.0], [(101.0, events(0, 3, 101.0))])
    r1 = replica("r1", [102.0], [(103.0, events(3, 2, 103.0))])
    sent = {f"a-{n}": 100.5 for n in range(5)} | {"a-early": 99.0}
    assert check(outcome([r0, r1], sent)) == []


def test_an_event_put_after_the_first_take_and_never_delivered_is_lost() -> None:
    r0 = replica("r0", [100.0], [(101.0, events(0, 3, 101.0))])
    problems = check(outcome([r0], {f"a-{n}": 100.5 for n in range(4)}))
    assert len(problems) == 1 and problems[0].startswith("LOST 1 of 4"), problems


def test_a_repeat_needs_a_fault_of_the_replica_that_delivered_first_and_its_last_batch() -> None:
    sent = {f"a-{n}": 100.5 for n in range(6)}
    r0 = replica("r0", [100.0], [(101.0, events(0, 3, 101.0)), (102.0, events(3, 3, 102.0))])
    r1 = replica("r1", [106.0], [(107.0, events(3, 3, 107.0))])
    assert any("without a fault" in p for p in check(outcome([r0, r1], sent)))
    r0.incidents.append(Incident("kill", 102.5, 102.5))  # the batch in flight: allowed
    assert check(outcome([r0, r1], sent)) == []
    r1 = replica("r1", [106.0], [(107.0, events(0, 6, 107.0))])  # an earlier, committed batch too
    assert any("without a fault" in p for p in check(outcome([r0, r1], sent)))


def test_more_than_a_batch_repeated_after_one_fault_is_flagged() -> None:
    n = BATCH + 1
    sent = {f"a-{k}": 100.5 for k in range(n)}
    r0 = replica("r0", [100.0], [(101.0, events(0, n, 101.0))])
    r0.incidents.append(Incident("cut", 100.8, 104.0))
    r1 = replica("r1", [105.0], [(106.0, events(0, n, 106.0))])
    problems = check(outcome([r0, r1], sent))
    assert problems == [f"REPEATED {n} > {BATCH} events after r0's cut at 100.80"], problems


def test_two_replicas_delivering_one_unit_at_once_is_an_overlap() -> None:
    sent = {f"a-{n}": 100.5 for n in range(4)}
    r0 = replica("r0", [100.0], [(101.0, events(0, 1, 101.0)), (105.0, events(1, 1, 105.0))])
    r1 = replica("r1", [102.0], [(103.0, events(2, 2, 103.0))])
    problems = check(outcome([r0, r1], sent))
    assert problems and all(p.startswith("OVERLAP on c0") for p in problems), problems


def test_a_paused_replica_may_return_one_batch_on_resuming_but_not_keep_delivering() -> None:
    sent = {f"a-{n}": 100.5 for n in range(6)}
    r0 = replica("r0", [100.0], [(101.0, events(0, 2, 101.0)), (110.0, events(2, 2, 110.0))])
    r0.incidents.append(Incident("pause", 102.0, 109.0))
    r1 = replica("r1", [106.0], [(107.0, events(2, 4, 107.0))])
    assert check(outcome([r0, r1], sent)) == []
    r0.proc.batches.append((111.0, events(4, 2, 111.0)))  # type: ignore[attr-defined]
    problems = check(outcome([r0, r1], sent))
    assert any(p.startswith("OVERLAP on c0") for p in problems), problems


def test_repeats_a_replica_declared_are_accepted_and_no_more() -> None:
    """Poll mode under disorder: a sweep that cannot tell a bucket's delivered events from late ones after
    a hand-over delivers them all and says how many repeat (README's disorder row)."""
    sent = {f"a-{n}": 100.5 for n in range(6)}
    r0 = replica("r0", [100.0], [(101.0, events(0, 3, 101.0)), (102.0, events(3, 3, 102.0))])
    r1 = replica("r1", [106.0], [(107.0, events(0, 3, 107.0))])  # r0 committed those: no fault
    said = (
        "[k8saudit-eks] warning: /aws/eks/c0/cluster: {} events behind a restart's positions delivered again"
    )
    r1.proc.said.append(said.format(2))  # type: ignore[attr-defined]
    problems = check(outcome([r0, r1], sent))
    assert problems and "REPEATED without a fault before: 1" in problems[0], problems
    r1.proc.said.append(said.format(1))  # type: ignore[attr-defined]
    assert check(outcome([r0, r1], sent)) == []
    r1.proc.said[:] = [said.format(3).replace("/c0/", "/c9/")]  # type: ignore[attr-defined]
    assert check(outcome([r0, r1], sent)) != []  # declared for another cluster
