"""Pure-Python field extraction throughput over the reference events (no C shim involved).

Measures what the shim does per event: parse_event + one extract_values call with every request,
(a) for all 117 reference requests, (b) for the fields used by the stock k8s_audit rules.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_fields_python.py [--seconds 3] [--reference DIR]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import _setup  # noqa: F401 - the checkout on sys.path

from k8saudit_eks_py import fields
from tests.unit.golden_support import REFERENCE, Request, load_events, load_requests, load_stock_requests


def run(events: Sequence[bytes], requests: Sequence[Request], seconds: float) -> tuple[float, float]:
    plan = tuple((r.field_id, r.arg) for r in requests)
    parse, extract = fields.parse_event, fields.extract_values
    for payload in events:  # warm-up (plan compilation, lazy imports)
        extract(parse(payload), plan)
    n_events = n_values = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for payload in events:
            values = extract(parse(payload), plan)
            n_values += sum(1 for v in values if v is not None)
        n_events += len(events)
    elapsed = time.perf_counter() - start
    return n_events / elapsed, n_values / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args()
    events = load_events(args.reference)
    for label, requests in (
        (f"all {len(load_requests(args.reference))} requests", load_requests(args.reference)),
        (
            f"stock-rules fields ({len(load_stock_requests(args.reference))})",
            load_stock_requests(args.reference),
        ),
    ):
        eps, vps = run(events, requests, args.seconds)
        print(f"{label:28s} {eps:10,.0f} events/s  {vps:12,.0f} values/s  {1e6 / eps:6.1f} µs/event")


if __name__ == "__main__":
    main()
