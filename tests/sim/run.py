"""Run one seeded schedule and check it; format a failing one as a replayable trace."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tests.sim.checks import Outcome, check
from tests.sim.schedule import Plan, generate
from tests.sim.world import World

__all__ = ["Result", "replay_command", "run_schedule"]


@dataclass
class Result:
    plan: Plan
    outcome: Outcome
    lines: list[str]
    dynamodb_calls: int
    faults: dict[str, int]
    digest: str  # of every delivery (event, instant, replica, batch): equal digests, equal runs

    @property
    def ok(self) -> bool:
        return not self.outcome.violations

    def report(self) -> str:
        o = self.outcome
        out = [
            self.plan.header(),
            f"replay: {replay_command(self.plan)}",
            "steps:",
            *(f"  {step}" for step in self.plan.steps),
            f"events {o.events}, required {o.required}, delivered {o.delivered}, repeats {o.duplicates} "
            f"(declared {o.declared_repeats}), "
            f"DynamoDB calls {self.dynamodb_calls}, faults {self.faults}, {o.counters}, digest {self.digest}",
        ]
        if o.violations:
            out.append(f"{len(o.violations)} violations:")
            out.extend(f"  {line}" for line in o.violations[:40])
        return "\n".join(out)


def replay_command(plan: Plan) -> str:
    return f"python -m tests.sim --seed {plan.seed} --mode {plan.mode} --trace"


def run_schedule(
    seed: int, mode: str, *, trace: bool = False, origin_broken: bool = False, threads: bool = False
) -> Result:
    """`origin_broken`: (poll) the replicas take units without recording their origin, as before the
    fix, to show that the checks catch it. `threads`: suspend jobs on threads instead of greenlets."""
    plan = generate(seed, mode)
    world = World(plan, trace=trace, origin_broken=origin_broken, threads=threads)
    try:
        world.run()
        outcome = check(world)
    finally:
        world.shutdown()
    return Result(
        plan, outcome, world.lines, world.network.calls, dict(world.network.fault_counts), _digest(world)
    )


def _digest(world: World) -> str:
    h = hashlib.sha256()
    for n in sorted(world.events):
        for d in world.events[n].deliveries:
            h.update(f"{n} {d.time:.6f} {d.session.owner} {d.batch}\n".encode())
    h.update(f"{world.network.calls} {sorted(world.network.fault_counts.items())}".encode())
    return h.hexdigest()[:16]
