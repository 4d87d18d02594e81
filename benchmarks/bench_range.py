"""Time range reads (`CLUSTER?from=...&to=...`): events/s through the range source against moto, with
pages of 700 events (what a 1 MB FilterLogEvents page holds of ~1.5 KB events; moto itself fills pages up
to 10,000 events whatever their size), at max_api_calls_per_second 2 (the default) and 5 (the whole
FilterLogEvents quota). The calls are paced: the rate is the cap × 700 once moto keeps up. Prints numbers;
asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_range.py [--events 21000] [--streams 3] [--pad 800]
"""

from __future__ import annotations

import argparse
import json
import time

import _setup

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch_range import open_range
from k8saudit_eks_py.sources.history.retry import Tuning
from k8saudit_eks_py.sources.history.window import iso
from tests.support.moto_server import audit_event, logs_client, put_events

PAGE = 700


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=21_000)
    ap.add_argument("--streams", type=int, default=3)
    ap.add_argument("--pad", type=int, default=800, help="bytes of requestObject padding per event")
    args = ap.parse_args()
    with _setup.local_aws(clear_environ=True) as server:
        logs = logs_client(server.url)
        group = "/aws/eks/bench/cluster"
        logs.create_log_group(logGroupName=group)
        base = (int(time.time()) - 7200) * 1000
        per = args.events // args.streams
        for s in range(args.streams):
            stream = f"kube-apiserver-audit-{s:032x}"
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            numbers = range(s * per, (s + 1) * per)
            put_events(
                logs, group, stream, [(base + n, audit_event(n, base + n, pad=args.pad)) for n in numbers]
            )
        size = len(audit_event(0, base, pad=args.pad))
        print(
            f"{per * args.streams} events of ~{size} bytes in {args.streams} streams, pages of {PAGE} events"
        )
        params = f"bench?from={iso(base)}&to={iso(base + args.events + 1)}"
        for cap in (2.0, 5.0):
            clear_memory()
            config = parse_config(json.dumps({"endpoint_url": server.url, "max_api_calls_per_second": cap}))
            start = time.perf_counter()
            source = open_range(params, config, tuning=Tuning(page_limit=PAGE, log_every_s=3600))
            n, eof = 0, False
            try:
                while not eof:
                    batch, eof = source.next_batch(512, 0.5)
                    n += len(batch)
                seconds = time.perf_counter() - start
                m = source.metrics()
            finally:
                source.close()
            print(
                f"max_api_calls_per_second {cap:g}: {n / seconds:>7,.0f} events/s ({n} in {seconds:.1f}s "
                f"incl. open; {m['api_calls_filter_log_events']} FilterLogEvents, "
                f"{m['api_calls_describe_log_streams']} DescribeLogStreams)"
            )


if __name__ == "__main__":
    main()
