"""The Coordinator: a thread that takes, renews, balances and hands over this replica's leases.

Safety rests on one rule: a replica delivers a unit's events only while its own last successful
renewal was *sent* less than lease_duration - margin ago. Another replica declares the lease expired only
after seeing the same counter for lease_duration on its own clock, which starts after that send, so the
owner has stopped delivering before anyone can take the unit. Checkpoints are conditional writes on
owner + counter (fenced_store.py), so a replica that was too slow cannot overwrite the new owner's.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from k8saudit_eks_py import log
from k8saudit_eks_py.aws import classify, describe, is_aws_error
from k8saudit_eks_py.checkpoint_store import UnitState
from k8saudit_eks_py.coordination.balance import plan
from k8saudit_eks_py.coordination.fenced_store import FencedStore
from k8saudit_eks_py.coordination.lease import PRESENCE_PREFIX, Held, Lease
from k8saudit_eks_py.coordination.table import LeaseLost, LeaseTable
from k8saudit_eks_py.metrics import (
    CALLS_DYNAMODB,
    CHECKPOINT_WRITES,
    CHECKPOINT_WRITES_REJECTED,
    LEASE_LOSSES,
    LEASE_TAKEOVERS,
    UNITS_HELD,
)

__all__ = ["Change", "Coordinator"]


@dataclass(frozen=True, slots=True)
class Change:
    """What the source learns from `changes`: it may start reading `unit` from `state`, or must stop."""

    kind: Literal["acquired", "lost"]
    unit: str
    state: UnitState | None = None


@dataclass(slots=True)
class _Seen:
    owner: str
    counter: int
    since: float  # clock() when this owner/counter was first seen


class Coordinator:
    def __init__(
        self,
        table: LeaseTable,
        replica_id: str,
        lease_duration: float,
        units: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        origin: Callable[[str], UnitState] | None = None,
    ) -> None:
        """`clock`, `sleep` and `rng` are the only sources of time and chance: a simulation passes virtual
        ones and drives `step()` itself instead of `start()`. `origin(unit)` is the state a unit starts
        from when it has never been read (now - shift): written into the lease by the first take."""
        self.table = table
        self.me = replica_id
        self.lease_duration = float(lease_duration)
        self.interval = self.lease_duration / 3  # renew and scan period
        self.margin = max(1.0, self.lease_duration / 5)  # stop delivering this long before expiry
        self.clock = clock
        self.rng = rng or random.Random()
        self.origin = origin
        self.changes: queue.Queue[Change] = queue.Queue()
        self.store = FencedStore(self)
        self.counters = {LEASE_TAKEOVERS: 0, LEASE_LOSSES: 0, CHECKPOINT_WRITES_REJECTED: 0}
        self._units: set[str] = set(units)
        self._ensured: set[str] = set()
        self._held: dict[str, Held] = {}
        self._unit_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards _held, _units, _unit_locks
        self._seen: dict[str, _Seen] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._failures = 0
        self._present: set[str] = set()  # other replicas whose presence item moved within a lease
        self._announced = False
        self._may_forget = True
        self._thread = threading.Thread(target=self._run, name=f"leases-{replica_id}", daemon=True)
        # A retry's pause: ends early when the coordinator stops (the real thread), or advances a
        # simulation's virtual clock.
        self.sleep: Callable[[float], None] = sleep or self._pause

    # ---------------------------------------------------------------- what the source asks

    def start(self) -> None:
        self._thread.start()

    def set_units(self, units: Iterable[str]) -> None:
        """The units this replica may hold (shards appear and end): leases of other units are given up."""
        with self._lock:
            self._units = set(units)
            gone = [u for u in self._held if u not in self._units]
        for unit in gone:
            self._release(unit, reason="no longer configured")
        self.wake()

    def held(self) -> list[str]:
        """Units whose events may be delivered now."""
        with self._lock:
            units = list(self._held)
        return sorted(u for u in units if self.deliverable(u))

    def deliverable(self, unit: str) -> bool:
        """Held, not being handed over, renewed recently enough, and no failed checkpoint write waiting to
        be retried: a replica that cannot write its checkpoints stops after the batch whose write failed
        (see FencedStore)."""
        if self.store.any_failed():
            return False
        with self._lock:
            h = self._held.get(unit)
            if h is None or h.draining_since is not None:
                return False
            return self.clock() < h.renewed_at + self.lease_duration - self.margin

    def metrics(self) -> dict[str, int | float]:
        with self._lock:
            held = float(len(self._held))
        return {
            **self.counters,
            UNITS_HELD: held,
            CALLS_DYNAMODB: self.table.calls,
            CHECKPOINT_WRITES: self.store.writes,
        }

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread, then hand every lease back (free), so another replica or the next instance
        of this one takes it at once instead of waiting for expiry."""
        deadline = self.clock() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            units = list(self._held)
        for unit in units:
            if self.clock() >= deadline:  # DynamoDB unreachable: the rest frees itself after expiry
                log.warning(
                    f"replica {self.me} closes without releasing {unit}; it frees itself after expiry"
                )
                with self._lock:
                    self._held.pop(unit, None)
                continue
            self._release(unit, reason="closing")
        if self._announced and self.clock() < deadline:
            try:
                self.table.withdraw(self.me)
            except Exception as exc:
                self._transient("withdraw this replica", exc)

    # ---------------------------------------------------------------- used by FencedStore

    def unit_lock(self, unit: str) -> threading.Lock:
        with self._lock:
            return self._unit_locks.setdefault(unit, threading.Lock())

    def lease_of(self, unit: str) -> Held | None:
        with self._lock:
            return self._held.get(unit)

    def committed(self, unsaved: list[str]) -> None:
        """The source committed what Falco finished with (it does so before choosing the next batch's
        events): a draining unit with nothing left unsaved can be handed over now, without waiting for
        a period to pass."""
        ready = False
        with self._lock:
            for unit, h in self._held.items():
                if h.draining_since is not None and unit not in unsaved and not h.saved_since_drain:
                    h.saved_since_drain = ready = True
        if ready:
            self.wake()  # hand it over now rather than at the next round

    def wake(self) -> None:
        """Run a round now instead of at its period."""
        self._wake.set()

    def drop(self, unit: str, why: str) -> None:
        """Forget a unit whose lease moved (a rejected write or renewal)."""
        with self._lock:
            h = self._held.pop(unit, None)
        if h is None:
            return
        self.counters[LEASE_LOSSES] += 1
        log.warning(f"replica {self.me} lost {unit}: {why}")
        self.changes.put(Change("lost", unit))

    # ---------------------------------------------------------------- the thread

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock()
            delay = self.step() - (self.clock() - started)
            self._wake.wait(max(0.0, delay))
            self._wake.clear()

    def step(self) -> float:
        """One round; the answer is how long after its start the next round should begin (a period, or
        sooner, jittered, after a failure)."""
        ok = self._round()
        self._failures = 0 if ok else self._failures + 1
        if ok:
            return self.interval
        return min(self.interval, self.rng.uniform(0.1, 0.3) * 2 ** min(self._failures, 4))

    def _round(self) -> bool:
        """One round: renew, finish hand-overs, announce, read the table and balance. False when AWS
        failed."""
        ok = self._renew_all()  # first: renewals are what keeps the right to deliver
        for unit in self.store.pending():
            with self.unit_lock(unit):
                self.store.flush(unit)
        ok = not self.store.any_failed() and ok  # still failing: the next round comes sooner
        ok = self._hand_over_drained() and ok
        ok = self._announce() and ok
        try:
            self._ensure_units()
            leases = self.table.scan()
        except Exception as exc:
            self._transient("read the lease table", exc)
            return False
        return self._balance(leases) and ok

    def _announce(self) -> bool:
        """Bump this replica's presence item. In the first round, pause a moment before reading the table,
        so that replicas started together count each other before any of them takes leases."""
        try:
            self.table.announce(self.me)
            ok = True
        except Exception as exc:
            self._transient("announce this replica", exc)
            ok = False
        if not self._announced:
            self._announced = True
            self.sleep(min(2.0, self.interval / 2))
        return ok

    def _transient(self, what: str, exc: BaseException) -> None:
        if not is_aws_error(exc):
            log.error(f"replica {self.me}: unexpected error while trying to {what}: {exc!r}", key="lease-bug")
            return
        log.warning(
            f"replica {self.me}: cannot {what} ({describe(exc)}); retrying", key=f"lease-retry:{what}"
        )

    def _ensure_units(self) -> None:
        with self._lock:
            missing = sorted(self._units - self._ensured)
        for unit in missing:
            self.table.ensure(unit)
            self._ensured.add(unit)

    def _renew_all(self) -> bool:
        """Renew every held lease. A throttled or failed renewal is retried at once with a short jittered
        backoff, for as long as it can still keep the lease (until lease_duration after the last renewal
        that got through; at least half a period), not a round later: a run of unlucky answers must not
        cost a lease. All units share the loop, and a unit's lock is held for one attempt at a time, never
        across a pause: Falco's checkpoint writes never wait behind a retrying renewal."""
        now = self.clock()
        with self._lock:
            waiting = {
                u: max(h.renewed_at + self.lease_duration, now + self.interval / 2)
                for u, h in self._held.items()
            }
        delay, longest = 0.05, max(0.05, self.interval / 8)
        gave_up = False
        while waiting:
            for unit in sorted(waiting):
                if self._renew_once(unit):
                    del waiting[unit]
            if not waiting or self._stop.is_set():
                break
            now = self.clock()
            for unit in [u for u, until in waiting.items() if now + delay > until]:
                del waiting[unit]  # too late to save: the next round tries again
                gave_up = True
            if waiting:
                self.sleep(self.rng.uniform(delay / 2, delay))
                delay = min(delay * 2, longest)
        return not gave_up and not waiting

    def _renew_once(self, unit: str) -> bool:
        """One renewal attempt; False when it failed and is worth retrying."""
        with self.unit_lock(unit):
            h = self.lease_of(unit)
            if h is None:
                return True  # released or lost meanwhile
            sent = self.clock()
            try:
                lease = self._renew(unit, h)
            except LeaseLost:
                self.drop(unit, "another replica holds it now (renewal rejected)")
                return True
            except Exception as exc:
                self._transient(f"renew {unit}", exc)
                return False
            with self._lock:
                h.counter, h.renewed_at = lease.counter, sent
                if lease.handoff_to and lease.handoff_to != self.me and h.draining_since is None:
                    h.draining_since, h.handoff_to = self.clock(), lease.handoff_to
                    log.info(f"replica {self.me} stops delivering {unit}: {lease.handoff_to} asked for it")
        return True

    def _renew(self, unit: str, h: Held) -> Lease:
        """Renew; when rejected, look once more: a renewal that timed out may have been applied, leaving
        the lease ours with a counter we never read back."""
        try:
            return self.table.renew(unit, self.me, h.counter)
        except LeaseLost:
            current = self.table.get(unit)
            if current is None or current.owner != self.me:
                raise
            return self.table.renew(unit, self.me, current.counter)

    def _hand_over_drained(self) -> bool:
        """A draining unit goes to the asker once its last batch is checkpointed. A Falco that holds a batch
        for a whole lease_duration (stuck) does not keep the unit here: it is handed over anyway, and that
        one batch may be delivered again by the next holder."""
        ok = True
        with self._lock:
            ready = [
                (u, h.handoff_to)
                for u, h in self._held.items()
                if h.draining_since is not None
                and (h.saved_since_drain or self.clock() - h.draining_since >= self.lease_duration)
            ]
        for unit, to in ready:
            ok = self._release(unit, reason=f"handed over to {to}", to=to) and ok
        return ok

    def _release(self, unit: str, reason: str, to: str = "") -> bool:
        with self.unit_lock(unit):
            h = self.lease_of(unit)
            if h is None:
                return True
            self.store.flush(unit)
            try:
                self.table.hand_over(unit, self.me, h.counter, to)
            except LeaseLost:
                self.drop(unit, "another replica holds it now (hand-over rejected)")
                return True
            except Exception as exc:
                self._transient(f"hand over {unit}", exc)
                if not self._stop.is_set():
                    return False
                log.warning(f"replica {self.me} could not release {unit}; it frees itself after expiry")
            with self._lock:
                self._held.pop(unit, None)
        log.info(f"replica {self.me} gave up {unit} ({reason})")
        self.changes.put(Change("lost", unit))
        return True

    def _observe(self, leases: list[Lease]) -> tuple[list[Lease], list[Lease], list[Lease]]:
        """(mine in the table, live leases of others, free or expired leases) among the configured units;
        updates which other replicas are present."""
        now = self.clock()
        with self._lock:
            units = set(self._units)
            held = set(self._held)
        own, live, takeable = [], [], []
        present: set[str] = set()
        for lease in leases:
            presence = lease.unit.startswith(PRESENCE_PREFIX)
            if not presence and lease.unit not in units:
                continue
            seen = self._seen.get(lease.unit)
            if seen is None or (seen.owner, seen.counter) != (lease.owner, lease.counter):
                seen = self._seen[lease.unit] = _Seen(lease.owner, lease.counter, now)
            quiet = now - seen.since
            if presence:
                if lease.owner == self.me:
                    continue
                if lease.owner and quiet < self.lease_duration:
                    present.add(lease.owner)
                elif quiet >= 5 * self.lease_duration and self._may_forget:
                    self._forget_presence(lease)
            elif lease.unit in held:
                own.append(lease)
            elif lease.free or quiet >= self.lease_duration:
                takeable.append(lease)
            else:
                live.append(lease)
        self._present = present
        return own, live, takeable

    def _forget_presence(self, lease: Lease) -> None:
        """A replica gone for five lease periods: its presence item is deleted (pods come and go)."""
        try:
            self.table.forget(lease.unit, lease.counter)
        except Exception as exc:
            if classify(exc) == "denied":  # an IAM policy from before DeleteItem was asked for
                self._may_forget = False
                log.warning(
                    f"replica {self.me}: dynamodb:DeleteItem is not allowed, so presence items of replicas "
                    "that are gone stay in the lease table (harmless; add the action to clean them up)"
                )
            else:
                self._transient(f"forget {lease.unit}", exc)
        self._seen.pop(lease.unit, None)

    def _balance(self, leases: list[Lease]) -> bool:
        own, live, takeable = self._observe(leases)
        for lease in own:
            if lease.owner != self.me:
                self.drop(lease.unit, f"the table names {lease.owner or 'nobody'} as its owner")
        adopt = [lease for lease in live if lease.owner == self.me]  # handed over to this replica
        live = [lease for lease in live if lease.owner != self.me]
        ok = True
        for lease in adopt:
            ok = self._adopt(lease) and ok
        with self._lock:
            mine = len(self._held)
        if self._stop.is_set():
            return ok
        leaving = [lease.handoff_to for lease in own if lease.owner == self.me and lease.handoff_to]
        decision = plan(self.me, mine, live, takeable, self._present, leaving)
        for lease in decision.take:
            ok = self._take(lease) and ok
        if decision.steal is not None and decision.steal.handoff_to != self.me:
            try:
                self.table.request_handoff(decision.steal, self.me)
                log.info(f"replica {self.me} asks {decision.steal.owner} to hand over {decision.steal.unit}")
            except LeaseLost:
                pass  # it moved meanwhile: the next round sees where
            except Exception as exc:
                self._transient(f"ask for {decision.steal.unit}", exc)
                ok = False
        return ok

    def _take(self, lease: Lease) -> bool:
        sent = self.clock()
        try:
            origin = self.origin(lease.unit) if self.origin is not None else None
            taken = self.table.take(lease, self.me, origin)
        except LeaseLost:
            return True  # another replica was faster
        except Exception as exc:
            self._transient(f"take {lease.unit}", exc)
            return False
        how = "free" if lease.free else f"expired, held by {lease.owner}"
        self._acquired(taken, sent, f"replica {self.me} took {lease.unit} ({how})", lease.owner_switches > 0)
        return True

    def _adopt(self, lease: Lease) -> bool:
        """A lease another replica handed to this one: renew it first, so its clock starts at our send."""
        sent = self.clock()
        try:
            renewed = self.table.renew(lease.unit, self.me, lease.counter)
        except LeaseLost:
            return True
        except Exception as exc:
            self._transient(f"adopt {lease.unit}", exc)
            return False
        self._acquired(renewed, sent, f"replica {self.me} took {lease.unit} (handed over)", True)
        return True

    def _acquired(self, lease: Lease, sent: float, message: str, takeover: bool) -> None:
        with self._lock:
            self._held[lease.unit] = Held(lease.counter, sent, checkpoint=lease.start)
        if takeover:
            self.counters[LEASE_TAKEOVERS] += 1
        log.info(message)
        self.changes.put(Change("acquired", lease.unit, lease.start))
