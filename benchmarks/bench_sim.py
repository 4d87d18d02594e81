"""Simulated replica schedules: how many per second, with how many violations; and how fast replicas started
together balance their units (tests/sim, virtual time: no AWS, no processes).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sim.py [--schedules 500] [--convergence-seeds 200]

Prints, per mode, schedules/s of CPU and the seeds with violations (each replays alone with
`python -m tests.sim --seed N --mode M --trace`); then, per (replicas, units, lease), the time from the
last start until every unit is held once and each replica holds floor(M/N)..ceil(M/N): median, p99 and max
in lease periods over the seeds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _setup  # noqa: F401 - the checkout on sys.path

from tests.sim.converge import convergence
from tests.sim.run import run_schedule

SHAPES = [(2, 2, 6), (2, 5, 6), (3, 3, 6), (3, 10, 6), (3, 10, 20), (4, 7, 3), (5, 20, 6), (8, 30, 6)]


def schedules(mode: str, count: int, first: int) -> None:
    failed: list[int] = []
    events = repeats = calls = most_batches = 0
    longest = 0.0
    slow_falco = 0
    disordered = 0  # poll schedules whose simulated CloudWatch makes events visible out of order
    counters: dict[str, int] = {}
    started = time.process_time()
    for seed in range(first, first + count):
        result = run_schedule(seed, mode)
        events += result.outcome.events
        repeats += result.outcome.duplicates
        calls += result.dynamodb_calls
        most_batches = max(most_batches, result.outcome.repeated_batches_max)
        longest = max(longest, result.outcome.repeated_span_max)
        slow_falco += result.outcome.slow_falco_repeats
        disordered += bool(result.plan.disorder)
        for name, value in result.outcome.counters.items():
            counters[name] = counters.get(name, 0) + value
        if not result.ok:
            failed.append(seed)
            print(result.report())
    took = time.process_time() - started
    print(
        f"{mode}: {count} schedules in {took:.1f} s CPU ({count / took:.1f}/s), {events} events, "
        f"{repeats} repeated deliveries, {calls} DynamoDB calls, violations in {len(failed)}: {failed[:20]}; "
        f"{disordered} with visibility disorder"
    )
    print(
        f"  {counters}; with DynamoDB failing, one holding repeated at most {most_batches} batches, "
        f"delivered within {longest:.2f} lease periods; {slow_falco} hand-overs repeated the batch a slow "
        "Falco was still processing"
    )


def converging(seeds: int, apart: bool) -> None:
    when = "over four lease periods" if apart else "together (within 0.3 s)"
    print(f"replicas started {when}, {seeds} seeds each: lease periods from the last start until balanced")
    for replicas, units, lease in SHAPES:
        found = [
            convergence(seed, replicas, units, lease, periods=10, spread=4 * lease if apart else 0.3).periods
            for seed in range(seeds)
        ]
        never = sum(p is None for p in found)
        times = sorted(p for p in found if p is not None)
        if not times:
            print(f"  N={replicas} M={units:2d} lease {lease:2d}s: never balanced in {never} seeds")
            continue
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(
            f"  N={replicas} M={units:2d} lease {lease:2d}s: median {statistics.median(times):.2f}  "
            f"p99 {p99:.2f}  max {times[-1]:.2f}  never {never}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=500, help="per mode")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--convergence-seeds", type=int, default=200, help="0: schedules only")
    args = parser.parse_args()
    for mode in ("poll", "stream"):
        schedules(mode, args.schedules, args.first_seed)
    if args.convergence_seeds > 0:
        converging(args.convergence_seeds, apart=False)
        converging(args.convergence_seeds, apart=True)


if __name__ == "__main__":
    main()
