"""Events/s from a local moto CloudWatch through the CloudWatch source, beside moto's raw FilterLogEvents read
rate in the same run, and put → next_batch latency at default settings. Prints numbers; asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_poll.py [--events 30000] [--pad 800] [--latency 10]
        [--backlog 0 --backlog-pad 10240]   # --backlog 100000: peak RSS while reading a 10 KB-event backlog

Steady state (`--steady RATE[,RATE...]`): a writer puts RATE events/s of ~1.5 KB spread over 3 streams for
`--seconds`, the source follows at the default configuration (`--lookback`/`--polling` to shorten) with pages
capped at 1 MB as CloudWatch caps them (limit derived from the event size), and the run prints read
amplification (events read / delivered), API calls per 1,000 events and per second, delivery lag and the
checkpoint size:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_poll.py --steady 100,1000 --seconds 660
    PYTHONPATH=. .venv/bin/python benchmarks/bench_poll.py --steady 30 --clusters 20 --seconds 180
    PYTHONPATH=. .venv/bin/python benchmarks/bench_poll.py --steady 0 --clusters 0 --idle 50 --seconds 180

Visibility disorder (`--disorder HOLD[,SHARE,LOW,HIGH]`): the source reads through the fault proxy, which
keeps each PutLogEvents batch out of FilterLogEvents answers for a delay drawn uniformly in 0..HOLD s,
or for a share SHARE of the batches in LOW..HIGH s (tests/support/faultproxy.py); the run then waits
lookback + 60 s after the writing for the trailing sweep, and prints lost and repeated events beside the
cost:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_poll.py --steady 600 --seconds 180 --lookback 150 \
        --disorder 2,0.01,5,120
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import statistics
import tempfile
import threading
import time

import _setup
from _latency import put_to_batch

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch import Tuning, open_cloudwatch
from k8saudit_eks_py.sources.cloudwatch.streams import ReadParams
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.moto_server import (
    audit_event,
    audit_ids,
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

STREAM = "kube-apiserver-audit-bench"


def raw_rate(client: object, group: str) -> tuple[int, float]:
    start = time.perf_counter()
    n, token = 0, None
    while True:
        kwargs = {"logGroupName": group, **({"nextToken": token} if token else {})}
        page = client.filter_log_events(**kwargs)  # type: ignore[attr-defined]
        n += len(page["events"])
        token = page.get("nextToken")
        if not token:
            return n, time.perf_counter() - start


def source_rate(url: str, cluster: str, want: int, cap: float) -> tuple[int, float]:
    config = parse_config(f'{{"endpoint_url": "{url}", "shift": 3600, "max_api_calls_per_second": {cap}}}')
    clear_memory()  # each run reads the whole group, not from where the previous run stopped
    start = time.perf_counter()
    source = open_cloudwatch(cluster, config)
    n = 0
    try:
        while n < want and time.perf_counter() - start < 300:
            batch, _ = source.next_batch(512, 0.5)
            n += len(batch)
    finally:
        source.close()
    return n, time.perf_counter() - start


def host_rate(url: str, cluster: str, want: int, cap: float) -> tuple[int, float]:
    """The whole Falco path: the real library in the C test host, one ka.auditid extraction per event."""
    config = {"endpoint_url": url, "region": "us-east-1", "shift": 3600, "max_api_calls_per_second": cap}
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
            cluster,
            "--requests",
            requests,
            "--max-events",
            str(want),
            "--max-seconds",
            "300",
        )
        return int(result.summary.get("events", 0)), time.perf_counter() - start


def latency(url: str, client: object, cluster: str, group: str, count: int) -> list[float]:
    source = open_cloudwatch(cluster, parse_config(f'{{"endpoint_url": "{url}"}}'))  # defaults otherwise
    return put_to_batch(source, client, group, STREAM, count, every_s=0.7, wait_s=0.5)


PAGE_BYTES = 1_048_576  # CloudWatch returns at most 1 MB of events per page


def page_limit(event_bytes: float) -> int:
    """Events per page at most, as CloudWatch sizes them (message + 26 bytes of overhead each)."""
    return max(1, int(PAGE_BYTES // (event_bytes + 26)))


QUOTAS = {"FilterLogEvents": 5.0, "DescribeLogStreams": 5.0, "GetLogEvents": 25.0}  # per account+Region


def steady(
    url: str,
    client: object,
    rate: int,
    seconds: float,
    lookback: int,
    polling: int,
    overlap_ms: int | None,
    clusters: int = 1,
    idle: int = 0,
    idle_every: float = 60.0,
    disorder: Faults | None = None,
) -> None:
    """`clusters` writers at `rate` events/s each over 3 streams (plus `idle` clusters with one event per
    `idle_every` seconds); one source follows them all at the given lookback/polling."""
    tag = f"{rate}-{int(time.time())}"
    names = [f"steady-{tag}-{c}" for c in range(clusters)] + [f"idle-{tag}-{c}" for c in range(idle)]
    groups = [f"/aws/eks/{name}/cluster" for name in names]
    streams = [f"kube-apiserver-audit-{n:032x}" for n in range(3)]
    for group in groups:
        create_group(client, group, streams)
    pad = 1_500 - len(audit_event(0, 0))
    size = len(audit_event(0, 0, pad=pad))
    stop = threading.Event()
    written = [0]
    put_ms: dict[int, int] = {}
    tick = 0.25 if clusters + idle <= 1 else 1.0  # fewer, larger puts when many groups share moto

    def writer() -> None:
        n, began = 0, time.monotonic()
        due_per = [0] * clusters
        idle_next = [began + random.uniform(0, idle_every) for _ in range(idle)]
        while not stop.is_set() and time.monotonic() - began < seconds:
            mono = time.monotonic()
            now = int(time.time() * 1000)
            for c in range(clusters):
                due = int((mono - began) * rate)
                per_stream: list[list[tuple[int, str]]] = [[] for _ in streams]
                for i in range(due_per[c], due):
                    per_stream[i % 3].append((now, audit_event(n, now, pad=pad)))
                    put_ms[n] = now
                    n += 1
                due_per[c] = due
                for stream, events in zip(streams, per_stream, strict=True):
                    if events:
                        put_events(client, groups[c], stream, events)
            for k in range(idle):
                if mono >= idle_next[k]:
                    idle_next[k] += idle_every
                    put_ms[n] = now
                    put_events(
                        client, groups[clusters + k], streams[n % 3], [(now, audit_event(n, now, pad=pad))]
                    )
                    n += 1
            written[0] = n
            stop.wait(tick)

    proxy = FaultProxy(url, disorder) if disorder is not None else None
    read_url = proxy.url if proxy is not None else url
    wait_after = lookback + 60 if disorder is not None else 30  # the sweep passes a timestamp lookback later
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = os.path.join(tmp, "cp.json")
        config = parse_config(
            json.dumps(
                {
                    "endpoint_url": read_url,
                    "lookback": lookback,
                    "polling_interval": polling,
                    "checkpoint_file": checkpoint,
                }
            )
        )
        clear_memory()
        reads = ReadParams.derive(lookback, polling)
        if overlap_ms is not None:
            reads = dataclasses.replace(reads, overlap_ms=overlap_ms)
        source = open_cloudwatch(
            ",".join(names), config, tuning=Tuning(page_limit=page_limit(size), reads=reads)
        )
        opened = source.metrics()  # open checks each group with 2 calls: not part of the steady state
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        got: set[str] = set()
        dups = 0
        lags: list[float] = []
        began = time.monotonic()
        swept: list[tuple[float, dict[str, float]] | None] = [None, None]
        try:
            # Under disorder, read on until the sweep has passed the last events written: its reads are
            # part of the cost, and what it finds is part of what is delivered.
            while time.monotonic() - began < seconds + wait_after and (
                thread.is_alive() or len(got) < written[0] or disorder is not None
            ):
                batch, _ = source.next_batch(512, 0.5)
                now = time.time() * 1000
                # The steady state with the trailing sweep running: from lookback + 20 s (the sweep
                # reads a timestamp lookback + 5 s after it) until the writing stops.
                since = time.monotonic() - began
                if swept[0] is None and since >= lookback + 20 and thread.is_alive():
                    swept[0] = (since, source.metrics())
                if swept[0] is not None and swept[1] is None and not thread.is_alive():
                    swept[1] = (since, source.metrics())
                for audit_id in audit_ids(batch):
                    if audit_id in got:
                        dups += 1
                    got.add(audit_id)
                    n = int(audit_id[2:])
                    if time.monotonic() - began > 2 * polling + 10 and n in put_ms:
                        lags.append((now - put_ms[n]) / 1000)
            metrics = source.metrics()
            lag_max = max(metrics.get("poll_lag_seconds", 0.0), 0.0)
        finally:
            stop.set()
            thread.join()
            source.close()
            if proxy is not None:
                proxy.close()
        for name, value in opened.items():
            if name.startswith("api_calls"):
                metrics[name] -= value
        ckpt = sum(os.path.getsize(p) for p in (checkpoint, checkpoint + ".journal") if os.path.exists(p))
    elapsed = time.monotonic() - began
    delivered = int(metrics["events"])
    read = int(metrics.get("events_read") or delivered + metrics["duplicates_suppressed"])
    calls = int(metrics["api_calls"])
    per_op = {k[len("api_calls_") :]: int(v) for k, v in metrics.items() if k.startswith("api_calls_") and v}
    lags.sort()
    p50 = lags[len(lags) // 2] if lags else float("nan")
    p99 = lags[int(len(lags) * 0.99)] if lags else float("nan")
    polls = len(groups) * elapsed / polling
    by_op = _by_operation(metrics)
    done = int(metrics.get("polls", 0)) - int(opened.get("polls", 0))
    shares = ", ".join(
        f"{op} {n / elapsed:.2f}/s = {100 * n / elapsed / QUOTAS[op]:.0f}% of quota"
        for op, n in sorted(_by_operation(metrics).items())
    )
    held = (
        f"disorder 0-{disorder.hold_s:g}s, {100 * disorder.hold_tail_share:g}% at "
        f"{disorder.hold_tail_s[0]:g}-{disorder.hold_tail_s[1]:g}s ({proxy.stats.held} events held back "
        f"in answers); found behind {int(metrics.get('events_found_behind', 0))}, largest disorder "
        f"{metrics.get('disorder_max_seconds', 0):.1f}s, "
        f"too late {int(metrics.get('events_too_late', 0))}\n  "
        if disorder is not None and proxy is not None
        else ""
    )
    print(
        f"steady {clusters} x {rate} events/s (+{idle} idle, one event per {idle_every:.0f}s) x "
        f"{seconds:.0f}s "
        f"of {size} bytes, 3 streams each, lookback {lookback}s, polling {polling}s, overlap "
        f"{reads.overlap_ms}ms, page limit {page_limit(size)}:\n  {held}"
        f"  delivered {delivered}/{written[0]} (lost {written[0] - len(got)}, duplicated {dups}), "
        f"read amplification {read / max(delivered, 1):.3f}\n"
        f"  API calls {calls}: {1000 * calls / max(delivered, 1):.2f} per 1,000 events, "
        f"{calls / elapsed:.2f}/s {per_op or ''}; throttles {int(metrics['throttles'])}\n"
        f"  per operation: {shares}; calls per log group per polling_interval {calls / polls:.2f}\n"
        f"  {done} polls ({done / polls:.2f} per log group per polling_interval): "
        f"{by_op.get('FilterLogEvents', 0) / max(done, 1):.2f} FilterLogEvents and "
        f"{by_op.get('DescribeLogStreams', 0) / max(done, 1):.2f} DescribeLogStreams calls per poll\n"
        f"  lag put -> delivered: median {p50:.1f}s, p99 {p99:.1f}s, max {lags[-1] if lags else 0:.1f}s; "
        f"poll_lag_seconds at the end {lag_max:.1f}; checkpoint file {ckpt} bytes",
        flush=True,
    )
    if swept[0] is not None and swept[1] is not None:
        (t0, m0), (t1, m1) = swept[0], swept[1]
        d = {k: float(m1.get(k, 0)) - float(m0.get(k, 0)) for k in m1}
        span = max(t1 - t0, 1e-9)
        filters = d.get("api_calls_filter_log_events", 0.0)
        share = 100 * filters / span / QUOTAS["FilterLogEvents"]
        print(
            f"  with the sweep running ({span:.0f}s, writing): read amplification "
            f"{d.get('events_read', 0) / max(d.get('events', 0), 1):.3f}, "
            f"{1000 * d.get('api_calls', 0) / max(d.get('events', 0), 1):.2f} calls per 1,000 events, "
            f"FilterLogEvents {filters / span:.2f}/s = {share:.0f}% of quota, DescribeLogStreams "
            f"{d.get('api_calls_describe_log_streams', 0) / span:.2f}/s",
            flush=True,
        )


def _by_operation(metrics: dict[str, int | float]) -> dict[str, int]:
    names = {
        "api_calls_filter_log_events": "FilterLogEvents",
        "api_calls_describe_log_streams": "DescribeLogStreams",
        "api_calls_get_log_events": "GetLogEvents",
    }
    return {op: int(metrics[k]) for k, op in names.items() if metrics.get(k)}


def _disorder(text: str) -> Faults | None:
    if not text:
        return None
    hold, share, low, high = ([float(x) for x in text.split(",")] + [0.0, 0.0, 0.0])[:4]
    return Faults(hold_s=hold, hold_tail_share=share, hold_tail_s=(low, high), seed=7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--pad", type=int, default=800, help="bytes of requestObject padding per event")
    ap.add_argument("--latency", type=int, default=10, help="events put one by one for the latency test")
    ap.add_argument("--backlog", type=int, default=0)
    ap.add_argument("--backlog-pad", type=int, default=10_240)
    ap.add_argument("--steady", default="", help="events/s, comma-separated: steady-state mode only")
    ap.add_argument("--seconds", type=float, default=660.0, help="steady-state run length")
    ap.add_argument("--lookback", type=int, default=600, help="steady-state lookback (default: plugin's)")
    ap.add_argument("--polling", type=int, default=5, help="steady-state polling_interval")
    ap.add_argument("--overlap-ms", type=int, default=None, help="steady-state per-stream overlap")
    ap.add_argument(
        "--clusters", type=int, default=1, help="steady-state: clusters writing RATE events/s each"
    )
    ap.add_argument("--idle", type=int, default=0, help="steady-state: quiet clusters besides")
    ap.add_argument("--idle-every", type=float, default=60.0, help="seconds between a quiet cluster's events")
    ap.add_argument(
        "--disorder", default="", help="steady-state: HOLD[,SHARE,LOW,HIGH] seconds of visibility delay"
    )
    args = ap.parse_args()

    with _setup.local_aws(clear_environ=True) as server:
        client = logs_client(server.url)
        if args.steady:
            for rate in (int(r) for r in args.steady.split(",")):
                steady(
                    server.url,
                    client,
                    rate,
                    args.seconds,
                    args.lookback,
                    args.polling,
                    args.overlap_ms,
                    args.clusters,
                    args.idle,
                    args.idle_every,
                    _disorder(args.disorder),
                )
            return
        group = "/aws/eks/bench/cluster"
        create_group(client, group, [STREAM])
        t = int(time.time() * 1000) - 1_800_000
        msgs = [(t + i // 10, audit_event(i, t + i // 10, pad=args.pad)) for i in range(args.events)]
        size = sum(len(m) for _, m in msgs) / len(msgs)
        start = time.perf_counter()
        put_events(client, group, STREAM, msgs)
        put_s = time.perf_counter() - start
        print(f"events: {args.events} of ~{size:.0f} bytes; moto put {args.events / put_s:,.0f} events/s")

        n, secs = raw_rate(client, group)
        print(f"moto raw FilterLogEvents loop:      {n / secs:>9,.0f} events/s ({n} in {secs:.2f}s)")
        for cap in (2.0, 1000.0):
            n, secs = source_rate(server.url, "bench", args.events, cap)
            label = f"source, max_api_calls_per_second={cap:g}:"
            print(f"{label:<36}{n / secs:>9,.0f} events/s ({n} in {secs:.2f}s, incl. open)")
        for cap in (2.0, 1000.0):
            n, secs = host_rate(server.url, "bench", args.events, cap)
            label = f".so in the C host, cap={cap:g}:"
            print(f"{label:<36}{n / secs:>9,.0f} events/s ({n} in {secs:.2f}s, incl. init+open)")

        if args.latency:
            lat = latency(server.url, client, "bench", group, args.latency)
            if lat:
                print(
                    f"put → next_batch latency at defaults (polling_interval 5s), {len(lat)} events: "
                    f"median {statistics.median(lat):.2f}s, max {max(lat):.2f}s"
                )

        if args.backlog:
            group2 = "/aws/eks/backlog/cluster"
            create_group(client, group2, [STREAM])
            t = int(time.time() * 1000) - 1_800_000
            for first in range(0, args.backlog, 5000):
                batch = range(first, min(first + 5000, args.backlog))
                put_events(
                    client,
                    group2,
                    STREAM,
                    [(t + i, audit_event(i, t + i, pad=args.backlog_pad)) for i in batch],
                )
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            config = parse_config(
                f'{{"endpoint_url": "{server.url}", "shift": 3600, "max_api_calls_per_second": 50}}'
            )
            source = open_cloudwatch("backlog", config)
            n, peak_q, start = 0, 0, time.perf_counter()
            try:
                while n < args.backlog and time.perf_counter() - start < 900:
                    batch, _ = source.next_batch(512, 0.5)
                    n += len(batch)
                    peak_q = max(peak_q, int(source.metrics()["queue_bytes"]))
                    time.sleep(0.001)
            finally:
                source.close()
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"backlog {n}/{args.backlog} events of ~{args.backlog_pad / 1024:.0f} KB in "
                f"{time.perf_counter() - start:.1f}s: peak queue {peak_q / 2**20:.1f} MiB (bound 32 MiB), "
                f"max RSS {before:.0f} → {after:.0f} MiB"
            )


if __name__ == "__main__":
    main()
