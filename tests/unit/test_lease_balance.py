"""The balancing rule (KCL style): from any assignment, repeated plans reach floor(M/N)..ceil(M/N)."""

from __future__ import annotations

import os
import socket

import pytest

from k8saudit_eks_py.coordination.balance import Plan, plan
from k8saudit_eks_py.coordination.lease import Lease
from k8saudit_eks_py.coordination.replica import default_replica_id


def settle(owner_of: dict[str, str], replicas: list[str], rounds: int = 50) -> dict[str, str]:
    """Apply each replica's plan in turn (a take or a granted hand-over) until nothing changes."""
    for _ in range(rounds):
        changed = False
        for me in replicas:
            mine = sum(o == me for o in owner_of.values())
            live = [Lease(u, o, 1) for u, o in owner_of.items() if o and o != me]
            free = [Lease(u, "", 1) for u, o in owner_of.items() if not o]
            decision = plan(me, mine, live, free)
            for lease in decision.take:
                owner_of[lease.unit] = me
                changed = True
            if decision.steal is not None:
                owner_of[decision.steal.unit] = me
                changed = True
        if not changed:
            return owner_of
    raise AssertionError(f"no fixed point: {owner_of}")


@pytest.mark.parametrize(("units", "replicas"), [(3, 3), (5, 2), (5, 4), (4, 3), (10, 3), (2, 4), (7, 7)])
def test_any_start_ends_between_floor_and_ceil(units: int, replicas: int) -> None:
    names = [f"r{i}" for i in range(replicas)]
    for start in ("free", "one-owner"):
        owner_of = {f"u{i}": ("" if start == "free" else "r0") for i in range(units)}
        final = settle(owner_of, names)
        counts = sorted(sum(o == r for o in final.values()) for r in names)
        assert all(final.values()), final
        assert counts[0] >= units // replicas and counts[-1] <= -(-units // replicas), counts


def test_free_leases_are_taken_before_expired_ones_and_only_up_to_ceil() -> None:
    expired = Lease("a", "dead", 4)
    free = Lease("b", "", 0)
    live = [Lease("c", "r1", 9)]
    decision = plan("r0", 0, live, [expired, free])
    assert [lease.unit for lease in decision.take] == ["b", "a"]  # ceil(3/2) = 2
    assert plan("r0", 1, live, [expired, free]).take == [free]


def test_nothing_is_stolen_from_a_replica_within_bounds() -> None:
    live = [Lease("a", "r1", 1), Lease("b", "r1", 1), Lease("c", "r2", 1), Lease("d", "r2", 1)]
    assert plan("r0", 1, live, []).steal is None  # 2, 2, 1 for 5 over 3


def test_a_lease_being_handed_over_counts_as_the_askers() -> None:
    """r1 is handing b over to r2: r1 will hold one, r2 two, so r0 asks r2, not r1 (asking r1 too would
    leave it with nothing, and it would ask back: hand-overs going round for ever)."""
    live = [Lease("a", "r1", 1), Lease("b", "r1", 1, handoff_to="r2"), Lease("c", "r2", 1)]
    decision = plan("r0", 0, live, [], present={"r1", "r2"})
    assert decision.steal is not None and decision.steal.unit == "c"
    # From r2's side: b is coming, so it holds two and asks for nothing; r1 gives b away and takes nothing.
    assert (
        plan("r2", 1, [Lease("a", "r1", 1), Lease("b", "r1", 1, handoff_to="r2")], [], {"r1", "r0"}) == Plan()
    )
    assert plan("r1", 2, [Lease("c", "r2", 1)], [], {"r0", "r2"}, leaving=["r2"]) == Plan()


def test_replica_id_is_the_pod_name_or_hostname_plus_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "falco-7d9c-abcde")
    assert default_replica_id() == f"falco-7d9c-abcde-{os.getpid()}"
    monkeypatch.delenv("POD_NAME")
    assert default_replica_id() == f"{socket.gethostname()}-{os.getpid()}"
