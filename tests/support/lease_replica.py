"""One replica in its own process, for kill -9 tests and the lease benchmark.

    python -m tests.support.lease_replica [--save-every S] URL TABLE REPLICA LEASE_SECONDS UNIT...

Prints JSON lines: each time the set of deliverable units changes ({"t": wall clock, "held": [...]}),
once a second the DynamoDB calls made so far ({"t", "calls"}), each unit acquired with the checkpoint
found in its lease ({"t", "acquired", "state"}), and with --save-every, after each checkpoint save of a
held unit returned ({"t", "saved", "n"}: n counts up per process) or was rejected ({"t", "rejected"}).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from k8saudit_eks_py.coordination import CheckpointRejected
from tests.support.leases import coordinator


def emit(**fields: Any) -> None:
    sys.stdout.write(orjson.dumps({"t": time.time(), **fields}).decode() + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--save-every", type=float, default=0.0)
    parser.add_argument("url")
    parser.add_argument("table")
    parser.add_argument("replica")
    parser.add_argument("lease_s", type=float)
    parser.add_argument("units", nargs="+")
    args = parser.parse_args(argv)
    c = coordinator(args.url, args.table, args.replica, args.units, args.lease_s)
    last: list[str] | None = None
    next_report = next_save = 0.0
    n = 0
    while True:
        while not c.changes.empty():
            change = c.changes.get()
            if change.kind == "acquired":
                emit(acquired=change.unit, state=change.state)
        held = c.held()
        now = time.time()
        if held != last:
            emit(held=held)
            last = held
        if now >= next_report:
            emit(calls=c.metrics()["api_calls_dynamodb"])
            next_report = now + 1.0
        if args.save_every and now >= next_save:
            for unit in held:
                n += 1
                try:
                    c.store.save({unit: {"n": n, "by": args.replica}})
                    emit(saved=unit, n=n)
                except CheckpointRejected:
                    emit(rejected=unit)
            next_save = now + args.save_every
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1:])
