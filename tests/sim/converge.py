"""How fast replicas started together balance their units: the real Coordinators on the simulated table.

N replicas start within 0.3 s of each other on M free units (no faults, DynamoDB latency as in the other
schedules), each with a Falco that asks for batches and has nothing to deliver. The answer is the time,
in lease periods after the last start, from which every unit is held by exactly one replica and each
replica holds floor(M/N)..ceil(M/N), and stays so until the end (None: never, or it did not stay).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from k8saudit_eks_py import log
from k8saudit_eks_py.coordination import LeaseTable
from tests.sim.dynamodb import Network, SimDynamoClient, Table
from tests.sim.kernel import Kernel, SimLock
from tests.sim.replicas import TABLE, SimCoordinator

__all__ = ["Convergence", "convergence"]


@dataclass(frozen=True, slots=True)
class Convergence:
    seed: int
    replicas: int
    units: int
    lease: int
    periods: float | None  # lease periods after the last start until balanced for good


class _Null:
    def write(self, _: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _Into:
    def __init__(self, lines: list[str], k: Kernel) -> None:
        self.lines, self.k = lines, k

    def write(self, line: str) -> None:
        self.lines.append(f"{self.k.now:8.3f}s   {line.rstrip()}")

    def flush(self) -> None:
        pass


def convergence(
    seed: int,
    replicas: int,
    units: int,
    lease: int = 6,
    periods: float = 8.0,
    trace: list[str] | None = None,
    spread: float = 0.3,
) -> Convergence:
    """`trace`: gets the plugin's log lines and every change of the holdings, with their virtual time.
    `spread`: the replicas start within this many seconds (0.3: together)."""
    rng = random.Random(f"converge:{seed}:{replicas}:{units}:{lease}")
    k = Kernel()
    table = Table(TABLE)
    network = Network(k, table, random.Random(rng.getrandbits(64)))
    names = [f"unit-{i}" for i in range(units)]
    coordinators: list[SimCoordinator] = []
    starts: list[float] = []

    def start(rid: str, at: float) -> None:
        offset = rng.uniform(0, 1000)
        c = SimCoordinator(
            lambda: SimLock(k),
            lambda _: None,
            LeaseTable(SimDynamoClient(network, rid, max(1.0, lease / 6)), TABLE),
            rid,
            lease,
            names,
            clock=lambda: k.now + offset,
            sleep=k.sleep,
            rng=random.Random(rng.getrandbits(64)),
        )
        coordinators.append(c)
        starts.append(at)

        def round_() -> float:
            began = c.clock()
            return c.step() - (c.clock() - began)

        def again(delay: float) -> None:
            k.spawn(k.now + max(0.0, delay), rid, "lease round", round_, again)

        k.spawn(at, rid, "lease round", round_, again)

        def falco() -> None:
            # Falco asks for a batch every ~0.1 s with nothing to deliver: the source commits an empty
            # batch each time (what tells a unit being handed over that nothing of it is uncommitted).
            c.store.save({})
            k.at(k.now + 0.1, f"{rid} falco", falco)

        k.at(at, f"{rid} falco", falco)

    for i in range(replicas):
        start(f"replica-{i}", rng.uniform(0, spread))
    low, high = units // replicas, -(-units // replicas)
    balanced_since: list[float | None] = [None]

    last: list[list[int]] = [[]]

    def sample() -> None:
        held = [c.held() for c in coordinators]
        if trace is not None and [len(h) for h in held] != last[0]:
            last[0] = [len(h) for h in held]
            trace.append(f"{k.now:8.3f}s held {last[0]}")
        every = [u for h in held for u in h]
        ok = len(every) == len(set(every)) == units and all(low <= len(h) <= high for h in held)
        if not ok:
            balanced_since[0] = None
        elif balanced_since[0] is None:
            balanced_since[0] = k.now
        k.at(k.now + 0.05, "sampler", sample)

    k.at(0.0, "sampler", sample)
    saved = log.logger
    log.logger = log.Logger(stream=_Null if trace is None else lambda: _Into(trace, k))
    try:
        k.run(max(starts) + periods * lease)
    finally:
        log.logger = saved
        k.shutdown()
    since = balanced_since[0]
    return Convergence(seed, replicas, units, lease, None if since is None else (since - max(starts)) / lease)
