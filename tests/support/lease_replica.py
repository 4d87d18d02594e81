"""One replica in its own process, for kill -9 tests and the lease benchmark.

    python -m tests.support.lease_replica URL TABLE REPLICA LEASE_SECONDS UNIT...

Prints a JSON line each time the set of deliverable units changes ({"t": wall clock, "held": [...]})
and once a second the DynamoDB calls made so far ({"t": ..., "calls": n}).
"""

from __future__ import annotations

import sys
import time

import orjson

from tests.support.leases import coordinator


def main(argv: list[str]) -> None:
    url, table, replica, lease_s, *units = argv
    c = coordinator(url, table, replica, units, float(lease_s))
    last: list[str] | None = None
    next_report = 0.0
    while True:
        held = c.held()
        now = time.time()
        if held != last:
            sys.stdout.write(orjson.dumps({"t": now, "held": held}).decode() + "\n")
            last = held
        if now >= next_report:
            sys.stdout.write(
                orjson.dumps({"t": now, "calls": c.metrics()["api_calls_dynamodb"]}).decode() + "\n"
            )
            next_report = now + 1.0
        sys.stdout.flush()
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1:])
