"""Extraction speed through the real library in the C test host (Falco's hot path).

Prints events/s and extractions/s for (a) all 117 requests of field-requests.txt per event and (b) only
the fields the stock k8s_audit rules use, over audit-events-dev.jsonl. Run after `pip install .`:
    python benchmarks/bench_extract.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import _setup

from tests.support.reference import REFERENCE, unpack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the 400 events")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args()
    host = _setup.c_host()
    with tempfile.TemporaryDirectory() as tmp:
        reference = unpack(Path(tmp) / "reference", args.reference)  # the host reads plain files
        events = reference / "audit-events-dev.jsonl"
        cases = {
            "all 117 requests": reference / "field-requests.txt",
            "stock-rules fields": reference / "stock-rules-fields.txt",
        }
        for label, requests in cases.items():
            result = host.run(
                "bench", "--events", str(events), "--requests", str(requests), "--rounds", str(args.rounds)
            )
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                return 1
            line = result.lines[0]
            print(
                f"{label:20s} {line['requests_per_event']:4d} req/event  "
                f"{line['events_per_s']:>10,.0f} events/s  "
                f"{line['extractions_per_s']:>12,.0f} extractions/s  "
                f"({line['events']} events in {line['seconds']} s)"
            )
            print(json.dumps({"case": label, **line}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
