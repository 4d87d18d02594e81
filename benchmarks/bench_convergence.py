"""Startup convergence through the plugin: N C host processes (Falco replicas, same config) started
together on M clusters with steady traffic, sharing them through the DynamoDB lease table (moto). Prints,
per run, how long after the processes were spawned the table first showed every cluster owned and every
replica holding floor(M/N)..ceil(M/N) units (in seconds and in lease periods), and whether anything
was lost or repeated. Asserts nothing.

    .venv/bin/pip install -q . && PYTHONPATH=. .venv/bin/python benchmarks/bench_convergence.py \
        [--replicas 3] [--clusters 3] [--lease 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import _setup
import orjson

from tests.support.host import Host
from tests.support.host_procs import HostProc, Traffic, delivered, wait_until_delivered
from tests.support.leases import new_table, owners
from tests.support.moto_server import MotoServer


def balanced(owner_of: dict[str, str], replicas: list[str], units: int) -> bool:
    counts = Counter(owner_of.values())
    low, high = units // len(replicas), -(-units // len(replicas))
    return (
        len(owner_of) == units
        and all(owner_of.values())
        and all(low <= counts.get(r, 0) <= high for r in replicas)
    )


def one_run(host: Host, moto: MotoServer, args: argparse.Namespace, run: int, tmp: Path) -> float | None:
    table = new_table(moto.url)
    clusters = [f"conv{run}x{i}" for i in range(args.clusters)]
    replicas = [f"r{i}" for i in range(args.replicas)]
    requests = tmp / "requests.txt"
    requests.write_text("ka.auditid\nka.cluster.name\n")
    traffic = Traffic(moto.url, clusters, per_tick=3, tick_s=0.2).start()
    time.sleep(0.5)  # events flow before the replicas start
    configs = [
        orjson.dumps(
            {
                "endpoint_url": moto.url,
                "coordination_endpoint_url": moto.url,
                "coordination_table": table,
                "lease_duration": args.lease,
                "polling_interval": 1,
                "region": "us-east-1",
                "shift": 60,
                "replica_id": r,
            }
        ).decode()
        for r in replicas
    ]
    spawned = time.time()
    procs = [
        HostProc(host, tmp / f"{run}-{r}.out", c, ",".join(clusters), str(requests), "--max-seconds", "600")
        for r, c in zip(replicas, configs, strict=True)
    ]
    took: float | None = None
    try:
        deadline = spawned + 10 * args.lease + 20
        while time.time() < deadline:
            unit_owner = {u.rsplit("|", 1)[-1]: o for u, o in owners(moto.url, table).items()}
            if balanced(unit_owner, replicas, len(clusters)):
                took = time.time() - spawned
                break
            time.sleep(0.1)
        time.sleep(2 * args.lease)  # events keep flowing after the balance
        traffic.stop()
        expected = traffic.expected()  # all of it: shift covers the seconds before the first take
        wait_until_delivered(procs, expected, 30)
        counts = delivered(procs)
        lost = len(expected - set(counts))
        repeated = sum(n - 1 for n in counts.values() if n > 1)
        shown = f"{took:.1f}s = {took / args.lease:.2f} lease periods" if took is not None else "not balanced"
        print(
            f"run {run}: {args.replicas} replicas x {args.clusters} clusters, lease {args.lease}s: "
            f"balanced after {shown}; events lost {lost} repeated {repeated}"
        )
    finally:
        traffic.stop()
        for p in procs:
            p.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--lease", type=int, default=3, help="lease_duration in seconds")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    host = _setup.c_host()
    times: list[float] = []
    with _setup.local_aws() as moto, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            took = one_run(host, moto, args, run, Path(tmp))
            if took is not None:
                times.append(took / args.lease)
    if times:
        print(
            f"balanced in {len(times)}/{args.runs} runs; lease periods after spawn: median "
            f"{statistics.median(times):.2f}, max {max(times):.2f}"
        )


if __name__ == "__main__":
    main()
