"""Leases among replica processes on a local moto DynamoDB: failover time (kill -9 of an owner → a survivor
holding its unit) and DynamoDB calls per minute per replica at steady state. Prints numbers; asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_leases.py [--lease 5] [--kills 3] [--steady 30]

Calls per minute scale with 1/lease_duration (one scan plus one renewal per held unit every
lease_duration/3): the projection to the default lease_duration (20 s) is printed beside the measure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _setup

from tests.support.leases import new_table, wait_for
from tests.support.replica_procs import Replica


def steady_calls(replicas: list[Replica], seconds: float) -> list[float]:
    """DynamoDB calls per minute of each replica over the last `seconds` of its reports."""
    time.sleep(seconds)
    rates = []
    for r in replicas:
        calls = r.calls()
        end_t, end_n = calls[-1]
        start_t, start_n = next((t, n) for t, n in calls if t >= end_t - seconds)
        rates.append((end_n - start_n) / (end_t - start_t) * 60)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease", type=float, default=5.0, help="lease_duration in seconds")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--steady", type=float, default=30.0, help="seconds of steady state measured")
    args = parser.parse_args()
    units = [f"/aws/eks/c{i}/cluster" for i in range(3)]
    with _setup.local_aws() as moto, tempfile.TemporaryDirectory() as tmp:
        table = new_table(moto.url)
        replicas = [
            Replica(Path(tmp) / f"r{i}.jsonl", moto.url, table, f"r{i}", args.lease, units) for i in range(3)
        ]
        try:
            if not wait_for(lambda: [len(r.held()) for r in replicas] == [1, 1, 1], 60):
                print("replicas did not balance", [r.held() for r in replicas])
                return
            rates = steady_calls(replicas, args.steady)
            projected = 60 / (20 / 3) * 2  # one scan + one renewal per period, one unit held
            print(f"lease_duration {args.lease:g}s, 3 replicas x 3 units (one each)")
            print(
                "dynamodb calls/min per replica at steady state: "
                + ", ".join(f"{r:.1f}" for r in rates)
                + f" (projected at lease_duration 20s: {projected:.1f})"
            )
            failovers = []
            for k in range(args.kills):
                victim = next(r for r in replicas if r.held())
                unit = victim.held()[0]
                killed = time.time()
                victim.kill9()
                replicas.remove(victim)
                if not wait_for(lambda u=unit: any(u in r.held() for r in replicas), 6 * args.lease):
                    print(f"kill {k + 1}: {unit} not taken over")
                    break
                taken = min(t for r in replicas if (t := r.first_holding(unit, after=killed)) is not None)
                failovers.append(taken - killed)
                replacement = Replica(Path(tmp) / f"n{k}.jsonl", moto.url, table, f"n{k}", args.lease, units)
                replicas.append(replacement)
                wait_for(lambda: [len(r.held()) for r in replicas] == [1, 1, 1], 60)
            if failovers:
                print(
                    "failover kill -9 -> new owner holding the unit: "
                    + ", ".join(f"{f:.2f}s" for f in failovers)
                    + f" (median {statistics.median(failovers):.2f}s; bound lease_duration + one period = "
                    f"{args.lease * 4 / 3:.2f}s)"
                )
        finally:
            for r in replicas:
                r.stop()


if __name__ == "__main__":
    main()
