"""python -m tests.sim --seed N --mode poll|stream [--trace] [--count K]: run schedules, print violations."""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.run import run_schedule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--count", type=int, default=1, help="how many seeds from --seed")
    parser.add_argument("--mode", choices=("poll", "stream"), default="poll")
    parser.add_argument("--trace", action="store_true", help="print the steps and every log line")
    parser.add_argument("--broken-origin", action="store_true", help="(poll) take units without an origin")
    args = parser.parse_args(argv)
    failed = 0
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.count):
        result = run_schedule(seed, args.mode, trace=args.trace, origin_broken=args.broken_origin)
        if args.trace:
            print("\n".join(result.lines))
        if not result.ok or args.trace or args.count == 1:
            print(result.report())
        failed += not result.ok
    took = time.perf_counter() - started
    print(f"{args.count} schedules ({args.mode}), {failed} with violations, {took:.1f}s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
