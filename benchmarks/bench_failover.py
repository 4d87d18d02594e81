"""Failover through the plugin: 3 C host processes (Falco replicas, same config) reading 3 clusters with
steady traffic through the DynamoDB lease table (moto); kill -9 of one host → the first event of its
cluster delivered by a survivor. Also the DynamoDB calls per minute each replica spends (leases and
checkpoints). Prints numbers; asserts nothing.

    .venv/bin/pip install -q . && PYTHONPATH=. .venv/bin/python benchmarks/bench_failover.py \
        [--lease 20] [--polling-interval 5] [--run 150] [--kill-at 60]

The defaults are the plugin's (lease_duration 20 s, polling_interval 5 s). Failover is bounded by
lease_duration + one lease period (lease_duration/3) + one poll.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _setup
import orjson

from tests.support.host_procs import HostProc, Traffic
from tests.support.leases import new_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease", type=int, default=20, help="lease_duration in seconds")
    parser.add_argument("--polling-interval", type=int, default=5)
    parser.add_argument("--run", type=float, default=150.0, help="seconds each host runs")
    parser.add_argument("--kill-at", type=float, default=60.0, help="seconds after start of the kill -9")
    args = parser.parse_args()
    host = _setup.c_host()
    clusters = [f"bench{i}" for i in range(3)]
    with _setup.local_aws() as moto, tempfile.TemporaryDirectory() as tmp:
        table = new_table(moto.url)
        config = orjson.dumps(
            {
                "endpoint_url": moto.url,
                "coordination_endpoint_url": moto.url,
                "coordination_table": table,
                "lease_duration": args.lease,
                "polling_interval": args.polling_interval,
                "region": "us-east-1",
                "shift": 600,
            }
        ).decode()
        requests = Path(tmp) / "requests.txt"
        requests.write_text("ka.auditid\nka.cluster.name\n")
        traffic = Traffic(moto.url, clusters, per_tick=5, tick_s=0.5).start()
        procs = [
            HostProc(
                host,
                Path(tmp) / f"r{i}.out",
                config,
                ",".join(clusters),
                str(requests),
                "--max-seconds",
                str(args.run),
            )
            for i in range(3)
        ]
        started = time.time()
        try:
            time.sleep(args.kill_at)
            spread = [sorted(p.clusters_since(time.time() - 2 * args.polling_interval)) for p in procs]
            print(
                f"lease_duration {args.lease}s, polling_interval {args.polling_interval}s, 3 hosts x 3 "
                f"clusters; before the kill each host delivers from {spread}"
            )
            victim = next(
                p for p in procs if len(p.clusters_since(time.time() - 2 * args.polling_interval)) == 1
            )
            (cluster,) = victim.clusters_since(time.time() - 2 * args.polling_interval)
            victim.kill9()
            killed = time.time()
            survivors = [p for p in procs if p is not victim]
            time.sleep(max(0.0, started + args.run - 2 * args.polling_interval - 5 - time.time()))
            traffic.stop()  # the survivors read the rest before they stop
            for p in survivors:
                p.wait(args.run + 60)
            ended = time.time()
            firsts = [
                e["t"]
                for p in survivors
                for e in p.events()
                if e["values"][1] == [cluster] and e["t"] > killed
            ]
            if firsts:
                print(
                    f"failover kill -9 -> first event of {cluster} delivered by a survivor: "
                    f"{min(firsts) - killed:.1f}s (bound lease_duration + period + poll = "
                    f"{args.lease * 4 / 3 + args.polling_interval:.1f}s)"
                )
            else:
                print(f"no survivor delivered {cluster} within {ended - killed:.0f}s")
            for p in survivors:
                m = p.summary()["metrics"]
                minutes = (ended - started) / 60
                print(
                    f"replica: dynamodb calls/min {m['api_calls_dynamodb'] / minutes:.1f} (of which "
                    f"checkpoint writes {m['checkpoint_writes'] / minutes:.1f}), units held at the end "
                    f"{m['units_held']:g}, takeovers {m['lease_takeovers']}, over {ended - started:.0f}s"
                )
            ids = [i for p in procs for i in p.ids()]
            lost = traffic.expected() - set(ids)
            repeated = len(ids) - len(set(ids))
            sent = len(traffic.expected())
            print(f"events sent {sent} delivered {len(ids)} repeated {repeated} lost {len(lost)}")
        finally:
            traffic.stop()
            for p in procs:
                p.stop()


if __name__ == "__main__":
    main()
