"""Random fault schedules against real processes (tests.support.fault_schedule / fault_run / fault_checks):
replicas of the real library in C host processes, moto (Logs, DynamoDB, Kinesis) behind fault proxies.
Runs N seeds (or one given seed), prints every violation with its seed and step trace, then a summary line.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_fault_schedules.py --mode poll|stream --seeds N [--seed S]

Each schedule takes about a minute (24 s of faults, then quiescing and delivery checks).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import _setup

from tests.support.fault_checks import check
from tests.support.fault_run import run
from tests.support.fault_schedule import generate


def main() -> None:
    parser = argparse.ArgumentParser(description="random fault schedules against real replica processes")
    parser.add_argument("--mode", choices=("poll", "stream"), required=True)
    parser.add_argument("--seeds", type=int, default=1, help="how many schedules")
    parser.add_argument("--seed", type=int, help="the first seed (default: random); seeds follow it")
    parser.add_argument("--duration", type=float, default=24.0, help="seconds of faults per schedule")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    host = _setup.c_host()
    first = args.seed if args.seed is not None else random.randrange(1_000_000)
    failed = 0
    with _setup.local_aws(aws_resharding=True) as moto, tempfile.TemporaryDirectory() as tmp:
        for seed in range(first, first + args.seeds):
            sched = generate(seed, args.mode, args.duration)
            started = time.monotonic()
            moto.reset()  # each schedule makes its own groups, stream and table: keep moto small
            try:
                outcome = run(sched, host, moto.url, Path(tmp) / f"{args.mode}-{seed}")
                violations, events = check(outcome), len(outcome.traffic.sent)
            except Exception as exc:  # the harness failed (e.g. moto refused a step): report, go on
                violations, events = [f"ERROR running the schedule: {exc!r}"], 0
            took = time.monotonic() - started
            print(f"seed {seed}: {len(violations)} violations, {events} events, {took:.0f}s", flush=True)
            if violations:
                failed += 1
                print("  " + "\n  ".join(violations))
                print(
                    f"  trace (replay: --seed {seed} --seeds 1):\n    "
                    + sched.trace().replace("\n", "\n    ")
                )
            sys.stdout.flush()
    last = first + args.seeds - 1
    print(f"mode {args.mode}: {args.seeds} schedules run, {failed} with violations (seeds {first}..{last})")


if __name__ == "__main__":
    main()
