"""The CheckpointStore of a replica: each save is a DynamoDB write conditional on owner + lease counter.

A rejected write means another replica holds the unit now: the unit is dropped at once (its events must
no longer be delivered here) and CheckpointRejected names it. DynamoDB throttling or errors are retried
with jittered backoff for a bounded time (one budget for the whole save, so Falco's thread is never held
longer); a state still unsaved then stays pending and the Coordinator's thread retries it (and writes it
before handing the lease over). While a write that failed is still pending the replica delivers nothing
(Coordinator.deliverable): a replica that DynamoDB fails has at most one uncommitted batch, the one whose
write failed, and that is all a replica taking its units over can deliver again.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from k8saudit_eks_py.aws import is_aws_error
from k8saudit_eks_py.checkpoint_store import UnitState, encode_state
from k8saudit_eks_py.coordination.lease import Held, Lease
from k8saudit_eks_py.coordination.table import LeaseLost, LeaseTable
from k8saudit_eks_py.metrics import CHECKPOINT_WRITES_REJECTED

__all__ = ["CheckpointRejected", "FencedStore"]


class CheckpointRejected(Exception):
    """The lease of `unit` is no longer this replica's: its state was not written and the unit is dropped."""

    def __init__(self, unit: str, replica: str) -> None:
        super().__init__(
            f"checkpoint of {unit} rejected: replica {replica} no longer holds its lease "
            "(another replica took it over); stopped reading it"
        )
        self.unit = unit


class Holder(Protocol):
    """What the store needs from the Coordinator that owns it (the leases this replica holds)."""

    me: str
    table: LeaseTable
    interval: float
    counters: dict[str, int]
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random

    def lease_of(self, unit: str) -> Held | None: ...

    def unit_lock(self, unit: str) -> threading.Lock: ...

    def drop(self, unit: str, why: str) -> None: ...

    def committed(self, unsaved: list[str]) -> None: ...

    def wake(self) -> None: ...

    def close(self, timeout: float = 10.0) -> None: ...


class FencedStore:
    def __init__(self, coordinator: Holder, save_budget_s: float | None = None) -> None:
        self._c = coordinator
        self.writes = 0
        # How long save() keeps retrying a failing DynamoDB before leaving the state pending: short, since
        # it holds Falco's thread, and a pending state is retried by the Coordinator's thread at once.
        self.save_budget_s = (
            save_budget_s if save_budget_s is not None else min(1.0, coordinator.interval / 4)
        )
        self._pending: dict[str, UnitState] = {}  # states not written yet (being written, or failed)
        self._failed: set[str] = set()  # units of _pending whose last write attempt failed

    def load(self, unit: str) -> UnitState | None:
        """The state found in the lease when this replica took it (None: start per the source's shift)."""
        held = self._c.lease_of(unit)
        if held is not None:
            return dict(held.checkpoint) if held.checkpoint is not None else None
        return self._c.table.load_checkpoint(unit)

    def save(self, states: Mapping[str, UnitState]) -> None:
        for unit, state in states.items():
            encode_state(unit, state)  # too large is a bug: ValueError before any write
        rejected: list[str] = []
        deadline = self._c.clock() + self.save_budget_s
        for unit, state in states.items():
            with self._c.unit_lock(unit):
                self._pending[unit] = dict(state)
            delay = 0.05
            while True:
                # The unit's lock is held for one attempt at a time, never across a backoff: the lease
                # thread's renewals must not wait behind a save that retries.
                with self._c.unit_lock(unit):
                    try:
                        done = self._attempt(unit)
                    except CheckpointRejected:
                        rejected.append(unit)
                        break
                if done or self._c.clock() + delay > deadline:
                    break  # written, or left pending for the lease thread
                self._c.sleep(self._c.rng.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)
        self._c.committed(self.pending())
        if any(unit in self._failed for unit in states):
            # Nothing is delivered until these are written: the lease thread retries them now (and then
            # with its backoff), not at its next period. Only when this save failed: the empty saves that
            # follow must not wake it again and again.
            self._c.wake()
        if rejected:
            raise CheckpointRejected(", ".join(rejected), self._c.me)

    def flush(self, unit: str) -> None:
        """Try once to write the unit's pending state, if any (the caller holds the unit's lock)."""
        with contextlib.suppress(CheckpointRejected):
            self._attempt(unit)

    def _attempt(self, unit: str) -> bool:
        """One write of the unit's pending state (the caller holds the unit's lock). True: written, or
        nothing pending any more (the lease thread wrote it meanwhile); False: DynamoDB failed, it stays
        pending. CheckpointRejected: the lease is not ours, the unit is dropped."""
        if unit not in self._pending:
            return True
        held = self._c.lease_of(unit)
        if held is None:
            self._forget(unit)
            self._c.counters[CHECKPOINT_WRITES_REJECTED] += 1
            raise CheckpointRejected(unit, self._c.me)
        looked = False
        while True:
            try:
                self._c.table.save_checkpoint(unit, self._c.me, held.counter, self._pending[unit])
            except LeaseLost:
                if not looked:
                    # A renewal that DynamoDB applied but whose answer was lost leaves the lease ours with a
                    # counter we never read back: look once before giving the unit up.
                    looked = True
                    current = self._current(unit)
                    if current is not None and current.owner == self._c.me:
                        held.counter = current.counter
                        continue
                self._forget(unit)
                self._c.counters[CHECKPOINT_WRITES_REJECTED] += 1
                self._c.drop(unit, "its checkpoint write was rejected (lease moved)")
                raise CheckpointRejected(unit, self._c.me) from None
            except Exception as exc:
                if not is_aws_error(exc):
                    raise
                self._failed.add(unit)
                return False  # throttling, 5xx, network: retried, never raised into Falco
            held.checkpoint = self._forget(unit)
            self.writes += 1
            if held.draining_since is not None:
                held.saved_since_drain = True
            return True

    def _forget(self, unit: str) -> UnitState | None:
        self._failed.discard(unit)
        return self._pending.pop(unit, None)

    def _current(self, unit: str) -> Lease | None:
        try:
            return self._c.table.get(unit)
        except Exception as exc:
            if not is_aws_error(exc):
                raise
            return None  # cannot tell: treat the rejection as meant

    def pending(self) -> list[str]:
        return sorted(self._pending)

    def any_failed(self) -> bool:
        """Whether a state waits for a write that failed (cheap: asked for every batch). A write in flight
        does not count: it has not failed."""
        return bool(self._failed)

    def close(self) -> None:
        """Closing the store closes the Coordinator: leases are released after pending states are written."""
        self._c.close()
