"""Many accounts: 3 accounts × 5 clusters (the same five names in every account, in two Regions), read by one
source in poll mode (a role per account through STS, the fault proxy in front of STS and CloudWatch Logs) and
in stream mode (records as a cross-account destination delivers them, `owner` = the member account). Prints
per account: events delivered, lost and repeated, and calls per second per account and Region. Asserts
nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_accounts.py [--seconds 60] [--rate 10] [--lookback 60]
        [--deny-first 20]   # account B's role is refused for the first 20 s (then allowed)
        [--expire-after 30] # account C's first role credentials expire after 30 FilterLogEvents calls
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from typing import Any

import _setup
import boto3

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from k8saudit_eks_py.sources.kinesis import open_kinesis
from tests.support.accounts import ACCOUNTS, ROLE_TEMPLATE, Cluster, account_credentials, role_of
from tests.support.faultproxy import FaultProxy
from tests.support.kinesis import create_stream, event_id, record_data
from tests.support.moto_server import audit_event, create_group, put_events

A, B, C = ACCOUNTS
REGION_OF = {A: "us-east-1", B: "eu-west-1", C: "us-east-1"}
STREAM = "kube-apiserver-audit-bench"


PER_ACCOUNT = [5]  # clusters per account (--clusters)
USED = list(ACCOUNTS)  # accounts in the run (--accounts)


def clusters() -> list[Cluster]:
    return [Cluster(a, REGION_OF[a], f"c{j}", 0) for a in USED for j in range(PER_ACCOUNT[0])]


class Writer(threading.Thread):
    """`rate` events/s into each cluster for `seconds`, each as its own account; auditID → account."""

    def __init__(self, put: Any, targets: list[Cluster], rate: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.put, self.targets, self.rate, self.seconds = put, targets, rate, seconds
        self.owner: dict[str, str] = {}
        self.n = 0

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            tick = time.monotonic()
            now = int(time.time() * 1000)
            for c in self.targets:
                batch = []
                for i in range(self.rate):
                    self.n += 1
                    self.owner[f"a-{self.n}"] = c.account
                    batch.append((self.n, now + i))
                self.put(c, batch)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


def tally(got: list[str], owner: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """account → (delivered, lost, repeated)."""
    counts = Counter(got)
    out: dict[str, tuple[int, int, int]] = {}
    for account in ACCOUNTS:
        mine = {i for i, a in owner.items() if a == account}
        delivered = len(mine & set(counts))
        repeated = sum(n - 1 for i, n in counts.items() if i in mine and n > 1)
        out[account] = (delivered, len(mine) - delivered, repeated)
    return out


def drain(source: Any, got: list[str], want: set[str], wait_s: float, settle_s: float) -> None:
    """Read into `got` until it holds `want` (or `wait_s`), then `settle_s` more for repeats."""
    deadline = time.monotonic() + wait_s
    while not want <= set(got) and time.monotonic() < deadline:
        batch, _ = source.next_batch(500, 0.5)
        got.extend(json.loads(p)["auditID"] for _, p in batch)
    end = time.monotonic() + settle_s
    while time.monotonic() < end:
        batch, _ = source.next_batch(500, 0.5)
        got.extend(json.loads(p)["auditID"] for _, p in batch)


def poll_mode(url: str, args: argparse.Namespace) -> None:
    proxy = FaultProxy(url)
    os.environ["AWS_ENDPOINT_URL_STS"] = proxy.url
    clients = {}
    for c in clusters():
        if (c.account, c.region) not in clients:
            keys = account_credentials(url, c.account)
            clients[c.account, c.region] = boto3.client(
                "logs", endpoint_url=url, region_name=c.region, **keys
            )
        create_group(clients[c.account, c.region], c.group, [STREAM])

    def put(c: Cluster, batch: list[tuple[int, int]]) -> None:
        events = [(ts, audit_event(n, ts, pad=1000)) for n, ts in batch]
        put_events(clients[c.account, c.region], c.group, STREAM, events)

    if args.deny_first:
        proxy.faults.deny_roles = (role_of(B),)
    if args.expire_after:
        proxy.faults.expire_roles_once = (role_of(C),)
        proxy.faults.expire_role_after = args.expire_after
    config = parse_config(
        json.dumps(
            {
                "endpoint_url": proxy.url,
                "region": "us-east-1",
                "role_arn": ROLE_TEMPLATE,
                "shift": 60,
                "lookback": args.lookback,
                "polling_interval": args.polling,
            }
        )
    )
    clear_memory()
    writer = Writer(put, clusters(), args.rate, args.seconds)
    source = open_cloudwatch(",".join(c.arn for c in clusters()), config)
    start = time.monotonic()
    writer.start()
    got: list[str] = []
    worst_lag, behind = 0.0, 0
    while writer.is_alive():
        if args.deny_first and time.monotonic() - start > args.deny_first:
            proxy.faults.deny_roles = ()
        batch, _ = source.next_batch(500, 0.5)
        got.extend(json.loads(p)["auditID"] for _, p in batch)
        if time.monotonic() - start > 30:  # past the start-up backlog
            m = source.metrics()
            worst_lag = max(worst_lag, float(m["poll_lag_seconds"]))
            behind = max(behind, int(m["groups_behind"]))
    proxy.faults.deny_roles = ()
    elapsed = time.monotonic() - start
    pacers = source.route_pacers()
    calls = {key: dict(p.calls_by_operation) for key, p in pacers.items()}  # over the writing
    # Past the trailing sweep of the last events (lookback + 5 s), to count what it would repeat.
    drain(source, got, set(writer.owner), args.lookback + 60, args.lookback + 10)
    m = source.metrics()
    source.close()
    proxy.close()
    print(
        f"poll mode: {len(USED)} accounts x {PER_ACCOUNT[0]} clusters, {args.rate} events/s each for "
        f"{args.seconds:.0f}s; after the first 30 s: worst poll lag {worst_lag:.1f}s, at most {behind} "
        "groups behind"
    )
    for account, (d, lost, rep) in tally(got, writer.owner).items():
        if account in USED:
            print(f"  account {account} ({REGION_OF[account]}): delivered {d}, lost {lost}, repeated {rep}")
    for (account, region), ops in calls.items():
        if not account:
            continue
        reads, lists = ops.get("FilterLogEvents", 0) / elapsed, ops.get("DescribeLogStreams", 0) / elapsed
        print(
            f"  calls/s account {account} {region}: FilterLogEvents {reads:.2f}, "
            f"DescribeLogStreams {lists:.2f}"
        )
    print(
        f"  role_failures {m['role_failures']}, AssumeRole calls per role "
        f"{ {r.split(':')[4]: n for r, n in proxy.stats.assume_role.items()} }, "
        f"ExpiredToken answers {proxy.stats.injected.get('ExpiredTokenException', 0)}"
    )


def stream_mode(url: str, args: argparse.Namespace) -> None:
    create_stream(url, "org-audit", 2)
    kinesis = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")

    def put(c: Cluster, batch: list[tuple[int, int]]) -> None:
        events = [(event_id(n), ts, audit_event(n, ts, pad=1000)) for n, ts in batch]
        data = record_data(c.group, events, owner=c.account)  # as the member's subscription delivers it
        kinesis.put_record(StreamName="org-audit", Data=data, PartitionKey=f"{c.account}/{c.name}")

    config = parse_config(json.dumps({"kinesis_endpoint_url": url, "region": "us-east-1", "shift": 60}))
    clear_memory()
    writer = Writer(put, clusters(), args.rate, args.seconds)
    source = open_kinesis("org-audit", config)
    start = time.monotonic()
    writer.start()
    got: list[str] = []
    names: Counter[str] = Counter()  # ka.cluster.name as Falco extracts it, right after each batch
    while writer.is_alive():
        batch, _ = source.next_batch(500, 0.5)
        ids = [json.loads(p)["auditID"] for _, p in batch]
        names.update(source.cluster_for(i) or "" for i in ids)
        got.extend(ids)
    elapsed = time.monotonic() - start
    records = source.metrics().get("api_calls_get_records", 0)
    before = len(got)
    drain(source, got, set(writer.owner), 60, 5)
    names.update(source.cluster_for(i) or "" for i in got[before:])
    source.close()
    print(
        f"stream mode: {len(USED)} accounts x {PER_ACCOUNT[0]} clusters, {args.rate} events/s each for "
        f"{args.seconds:.0f}s"
    )
    for account, (d, lost, rep) in tally(got, writer.owner).items():
        print(f"  account {account}: delivered {d}, lost {lost}, repeated {rep}")
    print(f"  ka.cluster.name: {len(names)} distinct names, e.g. {sorted(names)[:2]}, unnamed {names['']}")
    print(f"  calls/s (security account us-east-1 only; no member calls): GetRecords {records / elapsed:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=int, default=10, help="events/s per cluster")
    ap.add_argument("--lookback", type=int, default=60)
    ap.add_argument("--polling", type=int, default=5, help="polling_interval")
    ap.add_argument("--deny-first", type=float, default=0, help="B's role refused for the first S seconds")
    ap.add_argument("--expire-after", type=int, default=0, help="C's first credentials expire after N calls")
    ap.add_argument("--mode", choices=("poll", "stream", "both"), default="both")
    ap.add_argument("--clusters", type=int, default=5, help="clusters per account")
    ap.add_argument("--accounts", type=int, default=3, choices=(1, 2, 3))
    args = ap.parse_args()
    PER_ACCOUNT[0] = args.clusters
    del USED[args.accounts :]
    with _setup.local_aws() as server:
        if args.mode in ("poll", "both"):
            poll_mode(server.url, args)
        if args.mode in ("stream", "both"):
            stream_mode(server.url, args)


if __name__ == "__main__":
    main()
