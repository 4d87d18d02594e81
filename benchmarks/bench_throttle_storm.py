"""How fast poll mode recovers from a FilterLogEvents throttling storm. Prints numbers; asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_throttle_storm.py [--burst 8] [--share 0.4] \
        [--storm-s 20] [--during 300] [--after 50] [--polling 1] [--runs 3]

The source reads one cluster (3 streams) through the fault proxy at `polling_interval` --polling and the
default cap. The storm: the next --burst FilterLogEvents answers are throttled, then --share of them for
--storm-s seconds while --during events are written; then --after events are written in a clean period.
Printed per run: events delivered 12 s after the storm ended, and the time from the storm's end to the
last event delivered (the recovery time), beside the calls and throttles seen.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import _setup

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.moto_server import audit_event, audit_ids, create_group, logs_client, put_events

STREAMS = [f"kube-apiserver-audit-{n}" for n in range(3)]


def run(url: str, seed: int, args: argparse.Namespace) -> None:
    client = logs_client(url)
    cluster = f"storm-{seed}-{int(time.time())}"
    group = f"/aws/eks/{cluster}/cluster"
    create_group(client, group, STREAMS)
    total = args.during + args.after
    got: dict[str, float] = {}
    with FaultProxy(url, Faults(seed=seed)) as proxy:
        config = parse_config(json.dumps({"endpoint_url": proxy.url, "polling_interval": args.polling}))
        clear_memory()
        source = open_cloudwatch(cluster, config)
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                batch, _ = source.next_batch(512, 0.2)
                now = time.monotonic()
                for audit_id in audit_ids(batch):
                    got.setdefault(audit_id, now)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            # the burst: every FilterLogEvents answer throttled until --burst of them were
            proxy.faults = Faults(throttle=1.0, seed=seed)
            while proxy.stats.injected.get("ThrottlingException", 0) < args.burst:
                time.sleep(0.05)
            proxy.faults = Faults(throttle=args.share, seed=seed)
            _write(client, group, 0, args.during, args.storm_s)
            proxy.faults = Faults(seed=seed)
            storm_end = time.monotonic()
            throttles = proxy.stats.injected.get("ThrottlingException", 0)
            _write(client, group, args.during, total, 5.0)
            deadline = storm_end + args.wait
            while time.monotonic() < deadline and len(got) < total:
                time.sleep(0.1)
            by_12s = sum(1 for t in got.values() if t <= storm_end + 12)
            last = max(got.values(), default=storm_end)
            metrics = source.metrics()
        finally:
            stop.set()
            thread.join()
            source.close()
    recovered = f"{last - storm_end:.1f}s" if len(got) == total else f"not within {args.wait:.0f}s"
    print(
        f"seed {seed}: delivered {len(got)}/{total}, {by_12s} of them within 12 s of the storm's end; "
        f"storm end -> last event delivered {recovered}; {throttles} throttled answers, "
        f"{int(metrics.get('api_calls_filter_log_events', 0))} FilterLogEvents calls",
        flush=True,
    )


def _write(client: object, group: str, first: int, last: int, seconds: float) -> None:
    """Events first..last-1 spread evenly over `seconds`, round-robin over the streams."""
    began = time.monotonic()
    for n in range(first, last):
        due = began + seconds * (n - first) / max(last - first, 1)
        time.sleep(max(0.0, due - time.monotonic()))
        now = int(time.time() * 1000)
        put_events(client, group, STREAMS[n % 3], [(now, audit_event(n, now))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burst", type=int, default=8, help="throttled answers in a row to start the storm")
    ap.add_argument("--share", type=float, default=0.4, help="share of answers throttled during the storm")
    ap.add_argument("--storm-s", type=float, default=20.0, help="storm length, events written meanwhile")
    ap.add_argument("--during", type=int, default=300, help="events written during the storm")
    ap.add_argument("--after", type=int, default=50, help="events written after it, over 5 s")
    ap.add_argument("--polling", type=int, default=1, help="polling_interval")
    ap.add_argument("--wait", type=float, default=120.0, help="seconds to wait after the storm at most")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with _setup.local_aws(clear_environ=True) as server:
        for seed in range(1, args.runs + 1):
            run(server.url, seed, args)


if __name__ == "__main__":
    main()
