"""Audit events put from a thread at a changeable rate, remembering for each the unit it went to and when.

Poll mode: into the log group of each active cluster (one log stream each); the unit is the cluster.
Stream mode: subscription records (5 log events each, random partition keys) into a Kinesis stream; the
unit is the shard that PutRecords answered for the record. An event counts as put only when its put call
succeeded; `put_at` is taken just before the call (so it is never later than the event reached moto).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.support.host_procs import STREAM
from tests.support.kinesis import client, event_id, put_to_each_shard, record_data
from tests.support.moto_server import audit_event, logs_client, put_events

__all__ = ["Sent", "Traffic"]

TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class Sent:
    unit: str  # cluster (poll) or shard id (stream)
    put_at: float  # wall clock just before the put call


class Traffic:
    def __init__(self, url: str, mode: str, target: str, seed: int) -> None:
        """`target`: nothing for poll (clusters are activated with `activate`), the stream's name."""
        self.mode = mode
        self.target = target
        self.rate = 0.0
        self.sent: dict[str, Sent] = {}
        self.errors = 0
        self._clusters: list[str] = []
        self._rng = random.Random(seed)
        self._logs = logs_client(url)
        self._kinesis = client("kinesis", url)
        self._lock = threading.Lock()
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def activate(self, cluster: str) -> None:
        with self._lock:
            self._clusters.append(cluster)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        owed = 0.0
        while not self._stop.wait(TICK_S):
            owed += self.rate * TICK_S
            count, owed = int(owed), owed - int(owed)
            if count:
                try:
                    self._put(count)
                except Exception:  # moto busy: these were not put, so they are not expected
                    self.errors += 1

    def _put(self, count: int) -> None:
        first, self._n = self._n, self._n + count
        if self.mode == "poll":
            with self._lock:
                clusters = list(self._clusters)
            by_cluster: dict[str, list[int]] = {}
            for i, n in enumerate(range(first, first + count)):
                by_cluster.setdefault(clusters[(first + i) % len(clusters)], []).append(n)
            for cluster, ns in by_cluster.items():
                put_at = time.time()
                ts = int(put_at * 1000)
                events = [(ts, audit_event(n, ts)) for n in ns]
                put_events(self._logs, f"/aws/eks/{cluster}/cluster", STREAM, events)
                for n in ns:
                    self.sent[f"a-{n}"] = Sent(cluster, put_at)
            return
        records: list[dict[str, Any]] = []
        groups: list[list[int]] = []
        put_at = time.time()
        ts = int(put_at * 1000)
        for start in range(first, first + count, 5):
            ns = list(range(start, min(start + 5, first + count)))
            data = record_data("/aws/eks/prod/cluster", [(event_id(n), ts, audit_event(n, ts)) for n in ns])
            records.append({"Data": data, "PartitionKey": str(self._rng.getrandbits(64))})
            groups.append(ns)
        answer = self._kinesis.put_records(StreamName=self.target, Records=records)
        for ns, result in zip(groups, answer["Records"], strict=True):
            if "ShardId" in result:
                for n in ns:
                    self.sent[f"a-{n}"] = Sent(result["ShardId"], put_at)

    def mark(self) -> set[str]:
        """After stop(): one more event into every active cluster (poll) or open shard (stream), counted as
        sent; their ids."""
        put_at = time.time()
        if self.mode == "stream":
            put = put_to_each_shard(self._kinesis, self.target, "prod", self._n)
            self._n += len(put)
            self.sent.update({event: Sent(shard, put_at) for shard, event in put.items()})
            return set(put.values())
        ts = int(put_at * 1000)
        with self._lock:
            clusters = list(self._clusters)
        ids: set[str] = set()
        for cluster in clusters:
            n, self._n = self._n, self._n + 1
            put_events(self._logs, f"/aws/eks/{cluster}/cluster", STREAM, [(ts, audit_event(n, ts))])
            self.sent[f"a-{n}"] = Sent(cluster, put_at)
            ids.add(f"a-{n}")
        return ids

    def cluster_of(self, event: str) -> str:
        return self.sent[event].unit if self.mode == "poll" else "prod"
