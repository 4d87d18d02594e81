"""Archive replay: events/s from a local moto S3 through the .so in the C host (init, open, every event
extracted with the stock k8s_audit rules' fields, EOF), and the host's memory high-water mark, for a
Firehose archive and a CloudWatch export of ~1.5 KB events; then the same with objects ten times larger,
to show that memory does not follow an object's size. Prints numbers; asserts nothing.

    .venv/bin/python benchmarks/bench_archive.py [--events 60000] [--pad 800] [--per-object 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import _setup

from tests.support.archive import create_bucket, export_object, firehose_document, firehose_object
from tests.support.moto_server import audit_event
from tests.support.reference import unpack

BUCKET = "bench-archive"
STREAM = "kube-apiserver-audit-" + "be" * 16
BASE = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def fill(url: str, events: int, pad: int, per_object: int, tag: str) -> float:
    """Both layouts under <tag>/firehose/ and <tag>/export/; returns the mean event size."""
    s3 = create_bucket(url, BUCKET) if tag == "small" else _client(url)
    for first in range(0, events, per_object):
        numbers = range(first, min(first + per_object, events))
        docs = [
            firehose_document(
                "/aws/eks/bench/cluster", STREAM, [(n, BASE + n) for n in numbers[k : k + 40]], pad=pad
            )
            for k in range(0, len(numbers), 40)
        ]
        key = f"{tag}/firehose/2026/11/01/00/delivery-{first:09d}.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=firehose_object(docs))
        key = f"{tag}/export/aws/eks/bench/cluster/task/{STREAM}/{first // per_object:06d}.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=export_object([(n, BASE + n) for n in numbers], pad=pad))
    return float(len(audit_event(0, BASE, pad=pad)))


def _client(url: str) -> object:
    from tests.support.archive import s3_client

    return s3_client(url)


def host_run(url: str, params: str, requests: Path) -> tuple[int, float, int, int]:
    """(events, seconds from exec to exit, max RSS in KiB, rc of the last next_batch). The RSS is measured
    by /usr/bin/time, a small parent: a child forked from this process would inherit its high-water mark
    in ru_maxrss."""
    host = _setup.c_host()
    config = {"s3_endpoint_url": url, "region": "us-east-1"}
    cmd = [str(host.binary), str(host.library), "run", "--config", json.dumps(config), "--open", params]
    cmd += ["--requests", str(requests)]
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **host.env},
            check=False,
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        summary: dict[str, int] = {}
        for line in out:
            if line.startswith(b'{"summary"'):
                summary = json.loads(line)["summary"]
        max_rss = int(rss.read().split()[-1])
    return int(summary.get("events", 0)), seconds, max_rss, int(summary.get("rc", -99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--pad", type=int, default=800, help="bytes of requestObject padding per event")
    ap.add_argument("--per-object", type=int, default=2000, help="events per S3 object")
    args = ap.parse_args()

    with _setup.local_aws(clear_environ=True) as server, tempfile.TemporaryDirectory() as tmp:
        reference = unpack(Path(tmp) / "reference")
        stock = reference / "stock-rules-fields.txt"
        only_id = Path(tmp) / "auditid.txt"
        only_id.write_text("ka.auditid\n")
        n_stock = len(stock.read_text().split())
        start = time.perf_counter()
        size = fill(server.url, args.events, args.pad, args.per_object, "small")
        fill(server.url, args.events, args.pad, args.per_object * 10, "large")
        print(
            f"events: {args.events} of ~{size:.0f} bytes per layout, {args.per_object} (and "
            f"{args.per_object * 10}) per object; moto S3 filled in {time.perf_counter() - start:.1f}s"
        )
        cases = [
            ("firehose", "small", stock, f"{n_stock} stock-rule fields"),
            ("export", "small", stock, f"{n_stock} stock-rule fields"),
            ("firehose", "small", only_id, "ka.auditid only (as bench_stream)"),
            ("firehose", "large", stock, f"{n_stock} stock-rule fields, objects x10"),
            ("export", "large", stock, f"{n_stock} stock-rule fields, objects x10"),
        ]
        for layout, tag, requests, label in cases:
            n, secs, rss_kib, rc = host_run(server.url, f"s3://{BUCKET}/{tag}/{layout}/", requests)
            ended = "EOF" if rc == 2 else f"rc {rc}"
            print(
                f"{layout + ', ' + label + ':':<58}{n / secs:>9,.0f} events/s ({n} in {secs:.2f}s incl. "
                f"init+open, {ended}), max RSS {rss_kib / 1024:.1f} MiB"
            )


if __name__ == "__main__":
    main()
