"""Leases among several Coordinators in threads, on the moto server's DynamoDB (through the fault proxy
where DynamoDB must misbehave)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from k8saudit_eks_py.checkpoint_store import MAX_STATE_BYTES
from k8saudit_eks_py.coordination import CheckpointRejected, Coordinator, LeaseTable
from k8saudit_eks_py.coordination.lease import Lease
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.leases import coordinator, dynamodb, new_table, owners, wait_for
from tests.support.moto_server import (
    MotoServer,
    aws_env,  # noqa: F401
)

UNITS = ["/aws/eks/a/cluster", "/aws/eks/b/cluster", "/aws/eks/c/cluster"]


@pytest.fixture
def running() -> Iterator[list[Coordinator]]:
    """Coordinators a test starts; closed at the end whatever happens."""
    started: list[Coordinator] = []
    yield started
    for c in started:
        c.close()


def start(
    running: list[Coordinator], url: str, table: str, replica: str, units: list[str], lease_s: float = 3
):
    c = coordinator(url, table, replica, units, lease_s)
    running.append(c)
    return c


def counts(cs: list[Coordinator]) -> list[int]:
    return [len(c.held()) for c in cs]


def test_three_replicas_three_units_hold_one_each(moto: MotoServer, running: list[Coordinator]) -> None:
    table = new_table(moto.url)
    cs = [start(running, moto.url, table, f"r{i}", UNITS) for i in range(3)]
    assert wait_for(lambda: counts(cs) == [1, 1, 1], 20), counts(cs)
    held = sorted(u for c in cs for u in c.held())
    assert held == sorted(UNITS)
    assert owners(moto.url, table) == {u: c.me for c in cs for u in c.held()}
    time.sleep(3)  # stable: nobody takes from anybody once balanced
    assert counts(cs) == [1, 1, 1]
    assert all(c.metrics()["units_held"] == 1.0 for c in cs)


def test_join_and_clean_leave_rebalance_within_bounds(moto: MotoServer, running: list[Coordinator]) -> None:
    table = new_table(moto.url)
    units = [f"u{i}" for i in range(5)]
    cs = [start(running, moto.url, table, f"r{i}", units) for i in range(2)]
    assert wait_for(lambda: sorted(counts(cs)) == [2, 3], 20), counts(cs)
    cs.append(start(running, moto.url, table, "r2", units))
    assert wait_for(lambda: sorted(counts(cs)) == [1, 2, 2], 20), counts(cs)
    cs.append(start(running, moto.url, table, "r3", units))  # 5 over 4: between 1 and 2 each
    assert wait_for(lambda: sorted(counts(cs)) == [1, 1, 1, 2], 20), counts(cs)
    leaving = max(cs, key=lambda c: len(c.held()))
    gone = leaving.held()
    left_at = time.monotonic()
    leaving.close()
    rest = [c for c in cs if c is not leaving]
    # Released leases are free at once: taken well before they could have expired.
    assert wait_for(lambda: sorted(counts(rest)) == [1, 2, 2], 20), counts(rest)
    assert time.monotonic() - left_at < 3, "a clean leave must not wait for lease expiry"
    assert set(gone) <= {u for c in rest for u in c.held()}
    assert sum(c.metrics()["lease_takeovers"] for c in rest) >= len(gone)


def test_hot_reload_releases_and_the_reopened_instance_takes_at_once(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    first = start(running, moto.url, table, "falco-0-42", UNITS, lease_s=30)
    assert wait_for(lambda: len(first.held()) == 3, 10)
    first.store.save({UNITS[0]: {"streams": {"s1": 17}}})
    first.close()
    reopened_at = time.monotonic()
    second = start(running, moto.url, table, "falco-0-42", UNITS, lease_s=30)
    assert wait_for(lambda: len(second.held()) == 3, 10)
    assert time.monotonic() - reopened_at < 5, "must not wait for the 30 s lease to expire"
    acquired = {}
    while not second.changes.empty():
        change = second.changes.get()
        acquired[change.unit] = change.state
    assert acquired[UNITS[0]] == {"streams": {"s1": 17}}
    assert second.store.load(UNITS[0]) == {"streams": {"s1": 17}}


def test_cut_off_replica_stops_delivering_before_anyone_else_can_take_over(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    unit = ["/aws/eks/solo/cluster"]
    with FaultProxy(moto.url) as proxy:
        a = start(running, proxy.url, table, "a", unit)
        assert wait_for(lambda: a.held() == unit, 10)
        b = start(running, moto.url, table, "b", unit)
        time.sleep(1.5)
        assert b.held() == []
        a_last = b_first = 0.0
        proxy.faults.dynamodb_cut = True
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < 12 and not b_first:
            now = time.monotonic()
            if a.deliverable(unit[0]):
                a_last = now
            if b.deliverable(unit[0]):
                b_first = now
            time.sleep(0.005)
        assert b_first, "the survivor never took the unit"
        assert a_last < b_first, (
            f"both delivered: a until {a_last - cut_at:.2f}s, b from {b_first - cut_at:.2f}s"
        )
        assert b_first - cut_at <= 3 + 1 + 1.5  # lease duration + one renewal period (+ request time)
        assert proxy.stats.injected["dynamodb_cut"] > 0
        # Reconnected, the old owner learns it lost the unit and never delivers it again.
        proxy.faults.dynamodb_cut = False
        assert wait_for(lambda: a.metrics()["lease_losses"] == 1, 10)
        assert not a.deliverable(unit[0])
        kinds = []
        while not a.changes.empty():
            kinds.append(a.changes.get().kind)
        assert kinds == ["acquired", "lost"]


def test_stale_owner_checkpoint_write_is_rejected_and_the_unit_dropped(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    unit = "/aws/eks/fenced/cluster"
    a = start(running, moto.url, table, "a", [unit], lease_s=60)  # renews only every 20 s
    assert wait_for(lambda: a.held() == [unit], 10)
    a.store.save({unit: {"pos": 1}})
    # Another replica takes the lease (as it would after seeing it expire).
    thief = LeaseTable(dynamodb(moto.url), table)
    current = next(lease for lease in thief.scan() if lease.unit == unit)
    taken = thief.take(current, "b")
    thief.save_checkpoint(unit, "b", taken.counter, {"pos": 2})
    with pytest.raises(CheckpointRejected, match=f"checkpoint of {unit} rejected: replica a no longer holds"):
        a.store.save({unit: {"pos": 99}})
    assert not a.deliverable(unit) and a.held() == []
    assert a.metrics()["checkpoint_writes_rejected"] == 1
    assert a.metrics()["lease_losses"] == 1
    assert thief.load_checkpoint(unit) == {"pos": 2}  # the stale write changed nothing


def test_a_checkpoint_too_large_for_an_item_is_refused_before_any_write(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    a = start(running, moto.url, table, "a", ["u"], lease_s=30)
    assert wait_for(lambda: a.held() == ["u"], 10)
    a.store.save({"u": {"pos": 1}})
    with pytest.raises(ValueError, match="checkpoint state of u is"):
        a.store.save({"u": {"blob": "x" * MAX_STATE_BYTES}})
    assert LeaseTable(dynamodb(moto.url), table).load_checkpoint("u") == {"pos": 1}
    assert a.held() == ["u"]


def test_throttled_and_failing_dynamodb_only_delays(moto: MotoServer, running: list[Coordinator]) -> None:
    table = new_table(moto.url)
    faults = Faults(dynamodb_throttle=0.2, dynamodb_server_error=0.1, seed=7)
    with FaultProxy(moto.url, faults) as proxy:
        cs = [start(running, proxy.url, table, f"r{i}", UNITS, lease_s=6) for i in range(3)]
        assert wait_for(lambda: counts(cs) == [1, 1, 1], 60), counts(cs)
        assignment = {c: c.held()[0] for c in cs}
        errors: list[BaseException] = []

        def commit(c: Coordinator) -> None:
            try:
                for n in range(20):
                    c.store.save({assignment[c]: {"pos": n}})  # back to back: Falco at its fastest
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=commit, args=(c,)) for c in cs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert proxy.stats.injected.get(
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
        )
        assert proxy.stats.injected.get("com.amazonaws.dynamodb.v20120810#InternalServerError")
        faults.dynamodb_throttle = faults.dynamodb_server_error = 0.0
        assert wait_for(lambda: not any(c.store.pending() for c in cs), 10)  # left pending, then written
        assert wait_for(lambda: [c.held() for c in cs] == [[assignment[c]] for c in cs], 10)
        assert all(c.metrics()["lease_losses"] == 0 for c in cs)
    reader = LeaseTable(dynamodb(moto.url), table)
    assert [reader.load_checkpoint(u) for u in UNITS] == [{"pos": 19}] * 3


def test_a_replica_whose_checkpoint_write_fails_delivers_nothing_until_it_gets_through(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    """The batch whose write failed is the only one another replica may deliver again: while it is pending,
    none of the replica's units is deliverable, even with time left on their leases."""
    table = new_table(moto.url)
    faults = Faults()
    with FaultProxy(moto.url, faults) as proxy:
        c = start(running, proxy.url, table, "r", ["u", "v"], lease_s=30)
        assert wait_for(lambda: c.held() == ["u", "v"], 20)
        faults.dynamodb_cut = True
        began = time.monotonic()
        c.store.save({"u": {"pos": 1}})
        assert time.monotonic() - began < 2.0  # Falco's thread is not held for long
        assert c.store.pending() == ["u"]
        assert not c.deliverable("u") and not c.deliverable("v")
        assert c.held() == []
        faults.dynamodb_cut = False
        assert wait_for(lambda: c.held() == ["u", "v"], 20)  # the lease thread wrote it, delivery goes on
        assert c.store.pending() == []
    assert LeaseTable(dynamodb(moto.url), table).load_checkpoint("u") == {"pos": 1}


THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"


def test_a_checkpoint_write_does_not_wait_behind_a_retrying_renewal(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    """Every DynamoDB call throttled: the lease thread retries its renewal for seconds, but Falco's thread,
    saving a checkpoint meanwhile, is held for its own short budget only, not for the renewal's retries."""
    table = new_table(moto.url)
    faults = Faults()
    with FaultProxy(moto.url, faults) as proxy:
        c = start(running, proxy.url, table, "r", ["u"], lease_s=30)
        assert wait_for(lambda: c.held() == ["u"], 20)
        faults.dynamodb_throttle = 1.0
        c.wake()  # a round now: its renewal of u is throttled and retried
        assert wait_for(lambda: proxy.stats.injected.get(THROTTLED, 0) >= 3, 10)
        for _ in range(3):
            began = time.monotonic()
            c.store.save({"u": {"pos": 1}})
            assert time.monotonic() - began < c.store.save_budget_s + 0.5
        assert c.store.pending() == ["u"] and c.held() == []  # left for the lease thread; nothing delivered
        faults.dynamodb_throttle = 0.0
        assert wait_for(lambda: c.held() == ["u"] and c.store.pending() == [], 20)
    assert LeaseTable(dynamodb(moto.url), table).load_checkpoint("u") == {"pos": 1}


def test_a_throttled_renewal_is_retried_within_the_period(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    """70% of the holder's DynamoDB calls throttled: its renewals are retried at once with a short backoff
    until the lease would expire (some 20 tries), so it keeps the lease for three lease durations while a
    healthy replica waits for it to expire."""
    table = new_table(moto.url)
    with FaultProxy(moto.url, Faults(dynamodb_throttle=0.7, seed=3)) as proxy:
        holder = start(running, proxy.url, table, "throttled", ["u"], lease_s=6)
        assert wait_for(lambda: holder.held() == ["u"], 30)
        waiting = start(running, moto.url, table, "healthy", ["u"], lease_s=6)
        time.sleep(18)
        assert proxy.stats.injected.get(THROTTLED, 0) > 10
        assert holder.metrics()["lease_losses"] == 0
        assert waiting.metrics()["lease_takeovers"] == 0 and waiting.held() == []
        # Closed while its DynamoDB (the proxy) is still there: after it, a close would wait out its timeout.
        running.remove(holder)
        holder.close()


def test_units_added_later_are_taken_and_removed_ones_given_up(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    a = start(running, moto.url, table, "a", ["shard-0"])
    assert wait_for(lambda: a.held() == ["shard-0"], 10)
    a.set_units(["shard-0", "shard-1", "shard-2"])
    assert wait_for(lambda: a.held() == ["shard-0", "shard-1", "shard-2"], 10)
    a.set_units(["shard-1", "shard-2"])
    assert a.held() == ["shard-1", "shard-2"]
    assert owners(moto.url, table)["shard-0"] == ""


def test_renewals_keep_a_lease_far_beyond_its_duration(moto: MotoServer, running: list[Coordinator]) -> None:
    table = new_table(moto.url)
    a = start(running, moto.url, table, "a", ["u"])
    b = start(running, moto.url, table, "b", ["u"])
    assert wait_for(lambda: len(a.held()) + len(b.held()) == 1, 10)
    holder = a if a.held() else b
    end = time.monotonic() + 8  # almost three lease durations
    while time.monotonic() < end:
        assert holder.deliverable("u")
        time.sleep(0.05)
    assert holder.metrics()["lease_losses"] == 0
    assert (a if holder is b else b).metrics()["lease_takeovers"] == 0


def test_lease_parsing_ignores_units_of_other_configurations(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    other = LeaseTable(dynamodb(moto.url), table)
    other.ensure("someone-elses-unit")
    a = start(running, moto.url, table, "a", ["mine"])
    assert wait_for(lambda: a.held() == ["mine"], 10)
    time.sleep(1.5)
    assert a.held() == ["mine"]
    assert isinstance(other.scan()[0], Lease)


def test_close_with_dynamodb_unreachable_returns_and_the_lease_expires_for_others(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    with FaultProxy(moto.url) as proxy:
        a = coordinator(proxy.url, table, "a", ["u"])
        assert wait_for(lambda: a.held() == ["u"], 10)
        proxy.faults.dynamodb_cut = True
        began = time.monotonic()
        a.close(timeout=2)
        assert time.monotonic() - began < 5
        assert a.held() == []
        b_started = time.monotonic()
        b = start(running, moto.url, table, "b", ["u"])
        assert wait_for(lambda: b.held() == ["u"], 3 + 1 + 2)
        # Not released: a newcomer waits a whole lease duration on its own clock before taking it.
        assert time.monotonic() - b_started >= 3


def test_a_renewal_applied_but_unanswered_does_not_lose_the_lease(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    with FaultProxy(moto.url) as proxy:
        a = start(running, proxy.url, table, "a", ["u"])
        assert wait_for(lambda: a.held() == ["u"], 10)
        proxy.faults.dynamodb_lose_answer = 1.0
        assert wait_for(lambda: proxy.stats.injected.get("dynamodb_lost_answer", 0) >= 2, 5)
        proxy.faults.dynamodb_lose_answer = 0.0
        lost = proxy.stats.injected["dynamodb_lost_answer"]
        assert wait_for(lambda: a.deliverable("u"), 3)
        time.sleep(2)
        assert a.held() == ["u"]
        assert a.metrics()["lease_losses"] == 0, f"{lost} unanswered calls made the lease look lost"
        assert owners(moto.url, table) == {"u": "a"}


def test_a_checkpoint_after_a_renewal_applied_but_unanswered_is_kept(
    moto: MotoServer, running: list[Coordinator]
) -> None:
    table = new_table(moto.url)
    unit = "/aws/eks/unanswered/cluster"
    a = start(running, moto.url, table, "a", [unit], lease_s=60)  # renews only every 20 s
    assert wait_for(lambda: a.held() == [unit], 10)
    held = a.lease_of(unit)
    assert held is not None
    # The renewal reached DynamoDB but its answer never came back: the table's counter moved on, a's did not.
    LeaseTable(dynamodb(moto.url), table).renew(unit, "a", held.counter)
    a.store.save({unit: {"pos": 7}})
    assert a.held() == [unit] and a.deliverable(unit)
    assert a.metrics()["checkpoint_writes_rejected"] == 0
    assert a.metrics()["lease_losses"] == 0
    assert LeaseTable(dynamodb(moto.url), table).load_checkpoint(unit) == {"pos": 7}
