"""Stream mode: events/s from a local moto Kinesis through the Kinesis source and through the .so in the C
host, PutLogEvents → subscription → Kinesis → next_batch latency at the default settings, and with two
replicas (two C hosts sharing the shards through the lease table) the failover time: kill -9 of one →
first event of its shards delivered by the other. Prints numbers; asserts nothing. (Local endpoint: real
CloudWatch adds its own delivery delay to the stream.)

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py [--events 30000] [--pad 800] [--per-record 40]
        [--shards 2] [--latency 20] [--failover-lease 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import _setup
from _latency import put_to_batch

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.kinesis import open_kinesis
from tests.support.host_procs import HostProc
from tests.support.kinesis import client, create_stream, event_id, record_data, subscribe
from tests.support.leases import new_table, owners, wait_for
from tests.support.moto_server import (
    audit_event,
    create_group,
    dummy_environ,
    logs_client,
)

AUDIT = "kube-apiserver-audit-bench"


def fill(url: str, stream: str, events: int, pad: int, per_record: int) -> float:
    """Real-format records (gzip, digit-string eventIds); returns the mean event size."""
    k = client("kinesis", url)
    ts = int(time.time() * 1000) - 60_000
    batch, total = [], 0
    for first in range(0, events, per_record):
        msgs = [
            (event_id(n), ts, audit_event(n, ts, pad=pad))
            for n in range(first, min(first + per_record, events))
        ]
        total += sum(len(m) for _, _, m in msgs)
        batch.append({"Data": record_data("/aws/eks/bench/cluster", msgs), "PartitionKey": str(first)})
        if len(batch) == 50:
            k.put_records(StreamName=stream, Records=batch)
            batch = []
    if batch:
        k.put_records(StreamName=stream, Records=batch)
    return total / events


def source_rate(url: str, stream: str, want: int) -> tuple[int, float]:
    clear_memory()
    config = parse_config(json.dumps({"kinesis_endpoint_url": url, "region": "us-east-1", "shift": 3600}))
    start = time.perf_counter()
    source = open_kinesis(stream, config)
    n = 0
    try:
        while n < want and time.perf_counter() - start < 300:
            batch, _ = source.next_batch(512, 0.5)
            n += len(batch)
    finally:
        source.close()
    return n, time.perf_counter() - start


def host_rate(url: str, stream: str, want: int) -> tuple[int, float]:
    """The whole Falco path: the real library in the C test host, one ka.auditid extraction per event."""
    config = {"kinesis_endpoint_url": url, "region": "us-east-1", "shift": 3600}
    with tempfile.TemporaryDirectory() as tmp:
        requests = os.path.join(tmp, "requests.txt")
        with open(requests, "w") as f:
            f.write("ka.auditid\n")
        host = _setup.c_host(dummy_environ())
        start = time.perf_counter()
        result = host.run(
            "run",
            "--config",
            json.dumps(config),
            "--open",
            f"kinesis://{stream}",
            "--requests",
            requests,
            "--max-events",
            str(want),
            "--max-seconds",
            "300",
        )
        return int(result.summary.get("events", 0)), time.perf_counter() - start


def latency(url: str, stream: str, count: int) -> list[float]:
    """PutLogEvents of one event at a time → next_batch, at the default settings (shift 1 s)."""
    logs = logs_client(url)
    group = "/aws/eks/latency/cluster"
    create_group(logs, group, [AUDIT])
    arn = client("kinesis", url).describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    subscribe(url, group, arn, name="latency")
    source = open_kinesis(stream, parse_config(json.dumps({"kinesis_endpoint_url": url})))
    return put_to_batch(source, logs, group, AUDIT, count, every_s=0.37, wait_s=0.05)  # the shim's wait


def failover(url: str, lease_s: int) -> tuple[float, float] | None:
    """Two host replicas on a 2-shard stream, one event per shard every 0.1 s; kill -9 of the one holding
    shard 1 → (seconds until the survivor owns it in the table, until it delivers its first event)."""
    stream = "failover"
    create_stream(url, stream, 2)
    table = new_table(url)
    k = client("kinesis", url)
    shards = k.list_shards(StreamName=stream)["Shards"]
    keys = {s["ShardId"]: s["HashKeyRange"]["StartingHashKey"] for s in shards}
    stop = threading.Event()
    of_shard: dict[str, str] = {}

    def writer() -> None:
        n = 0
        while not stop.wait(0.1):
            ts = int(time.time() * 1000)
            for shard, key in keys.items():
                of_shard[f"a-{n}"] = shard
                data = record_data("/aws/eks/bench/cluster", [(event_id(n), ts, audit_event(n, ts))])
                k.put_record(StreamName=stream, Data=data, PartitionKey="k", ExplicitHashKey=key)
                n += 1

    host = _setup.c_host()
    with tempfile.TemporaryDirectory() as tmp:
        requests = os.path.join(tmp, "requests.txt")
        with open(requests, "w") as f:
            f.write("ka.auditid\n")
        procs = {}
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            for name in ("r0", "r1"):
                config = {
                    "kinesis_endpoint_url": url,
                    "coordination_endpoint_url": url,
                    "coordination_table": table,
                    "lease_duration": lease_s,
                    "replica_id": name,
                    "region": "us-east-1",
                    "shift": 600,
                }
                procs[name] = HostProc(
                    *(host, Path(tmp) / f"{name}.jsonl", config, f"kinesis://{stream}", requests),
                    *("--flush", "--max-seconds", "120"),
                )
            if not wait_for(lambda: sorted(owners(url, table).values()) == ["r0", "r1"], 6 * lease_s, 0.2):
                return None
            time.sleep(1.0)
            unit = next(u for u, o in owners(url, table).items() if o == "r1")
            shard = unit.rsplit("|", 1)[-1]
            killed = time.time()
            procs["r1"].kill9()
            if not wait_for(lambda: owners(url, table)[unit] == "r0", 3 * lease_s, 0.05):
                return None
            owned = time.time() - killed
            first = None
            deadline = time.monotonic() + 10
            while first is None and time.monotonic() < deadline:
                first = next(
                    (
                        t
                        for t, ids in procs["r0"].batches()
                        if t > killed and any(of_shard.get(i) == shard for i in ids)
                    ),
                    None,
                )
                time.sleep(0.1)
            return (owned, first - killed) if first is not None else None
        finally:
            stop.set()
            thread.join()
            for p in procs.values():
                p.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--pad", type=int, default=800, help="bytes of requestObject padding per event")
    ap.add_argument("--per-record", type=int, default=40, help="log events per subscription record")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--latency", type=int, default=20, help="events put one by one for the latency test")
    ap.add_argument("--failover-lease", type=int, default=20, help="lease_duration in the failover (0: skip)")
    args = ap.parse_args()

    with _setup.local_aws(clear_environ=True) as server:
        create_stream(server.url, "bench", args.shards)
        start = time.perf_counter()
        size = fill(server.url, "bench", args.events, args.pad, args.per_record)
        put_s = time.perf_counter() - start
        sample = record_data("/aws/eks/bench/cluster", [(event_id(0), 0, audit_event(0, 0, pad=args.pad))])
        ratio = len(gzip.decompress(sample)) / len(sample)
        print(
            f"events: {args.events} of ~{size:.0f} bytes, {args.per_record} per record, {args.shards} shards "
            f"(gzip ratio {ratio:.1f}); moto put {args.events / put_s:,.0f} events/s"
        )
        n, secs = source_rate(server.url, "bench", args.events)
        print(f"{'Kinesis source (Python):':<32}{n / secs:>9,.0f} events/s ({n} in {secs:.2f}s, incl. open)")
        n, secs = host_rate(server.url, "bench", args.events)
        print(f"{'.so in the C host:':<32}{n / secs:>9,.0f} events/s ({n} in {secs:.2f}s, incl. init+open)")
        if args.latency:
            create_stream(server.url, "latency", 1)
            lat = latency(server.url, "latency", args.latency)
            if lat:
                print(
                    f"PutLogEvents → subscription → Kinesis → next_batch at defaults, {len(lat)} events: "
                    f"median {statistics.median(lat):.2f}s, max {max(lat):.2f}s"
                )
        if args.failover_lease:
            took = failover(server.url, args.failover_lease)
            print(
                f"2 replicas, lease_duration {args.failover_lease}s, kill -9 of one: "
                + (
                    f"its shard owned by the survivor after {took[0]:.1f}s, first event of it delivered "
                    f"after {took[1]:.1f}s"
                    if took
                    else "no failover measured (timed out)"
                )
            )


if __name__ == "__main__":
    main()
