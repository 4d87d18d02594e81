"""Runs a fault schedule (tests.support.fault_schedule) against real processes and collects what they did.

Each replica is the real library in a C host process (tests.support.host_procs) with its own fault proxy
(tests.support.faultproxy) in front of moto's DynamoDB, so a DynamoDB fault hits one replica. Their
CloudWatch Logs or Kinesis reads share one fault proxy (a poll-mode checkpoint key names the endpoint, so
all replicas must name the same one). All share one lease table (lease_duration 3 s) and one open-params
file (a hot reload rewrites it and sends SIGHUP to every live replica).

After the last step every fault is lifted and the run quiesces: the leases must balance and stay balanced
for a lease period, every live replica holding units must keep delivering; then the traffic stops, every
event must come out, and each replica is stopped with SIGTERM. What each replica delivered and when, its
lease log and its faults go to tests.support.fault_checks.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.support.fault_outcome import Incident, Outcome, Replica, end_incident
from tests.support.fault_schedule import LEASE_S, Schedule, Step
from tests.support.fault_traffic import Traffic
from tests.support.faultproxy import FILTER, GET_RECORDS, FaultProxy, Faults
from tests.support.host import Host
from tests.support.host_procs import STREAM, HostProc, wait_past_marks
from tests.support.kinesis import client, create_stream, open_shards
from tests.support.leases import dynamodb, new_table, wait_for
from tests.support.moto_server import create_group, logs_client

__all__ = ["run"]

QUIET_RATE = 20.0  # events/s while the run quiesces
CONVERGE_S = 12 * LEASE_S  # after the last fault, the leases are balanced (and stay so) within this


class _World:
    def __init__(self, sched: Schedule, host: Host, moto_url: str, tmp: Path) -> None:
        self.sched = sched
        self.host = host
        self.moto_url = moto_url
        self.tmp = tmp
        self.rng = random.Random(f"run:{sched.mode}:{sched.seed}")
        self.table = new_table(moto_url)
        self.replicas: dict[str, Replica] = {}
        self.problems: list[str] = []
        tag = uuid.uuid4().hex[:6]
        self.requests = tmp / "requests.txt"
        self.requests.write_text("ka.auditid\nka.cluster.name\n")
        self.params = tmp / "open_params.txt"
        if sched.mode == "poll":
            self.clusters = [f"c{i}-{tag}" for i in range(sched.units + sched.spare_clusters)]
            logs = logs_client(moto_url)
            for cluster in self.clusters:
                create_group(logs, f"/aws/eks/{cluster}/cluster", [STREAM])
            self.active = self.clusters[: sched.units]
            self.params.write_text(",".join(self.active))
            self.traffic = Traffic(moto_url, "poll", "", sched.seed)
            for cluster in self.active:
                self.traffic.activate(cluster)
        else:
            self.stream = f"s-{tag}"
            create_stream(moto_url, self.stream, sched.units)
            self.params.write_text(f"kinesis://{self.stream}")
            self.traffic = Traffic(moto_url, "stream", self.stream, sched.seed)
        self.kinesis = client("kinesis", moto_url)
        target = (FILTER,) if sched.mode == "poll" else (GET_RECORDS,)
        self.reads = FaultProxy(moto_url, Faults(targets=target, seed=self.rng.getrandbits(32)))
        hold_s, share, low, high = sched.disorder
        self.reads.faults.hold_s, self.reads.faults.hold_tail_share = hold_s, share
        self.reads.faults.hold_tail_s = (low, high)

    def config(self, name: str, dynamodb_url: str) -> str:
        values: dict[str, Any] = {
            "coordination_endpoint_url": dynamodb_url,
            "coordination_table": self.table,
            "lease_duration": LEASE_S,
            "replica_id": name,
            "region": "us-east-1",
            "shift": 1,
        }
        if self.sched.mode == "poll":
            values.update(endpoint_url=self.reads.url, polling_interval=1, lookback=self.sched.lookback)
        else:
            values.update(kinesis_endpoint_url=self.reads.url)
        return orjson.dumps(values).decode()

    # ------------------------------------------------------------------------------------ steps

    def apply(self, step: Step) -> None:
        r = self.replicas.get(step.replica)
        now = time.time()
        if step.action == "start":
            proxy = FaultProxy(self.moto_url, Faults(targets=(), seed=self.rng.getrandbits(32)))
            proc = HostProc(
                self.host,
                self.tmp / f"{step.replica}.out",
                self.config(step.replica, proxy.url),
                self.params,
                str(self.requests),
                *("--flush", "--max-seconds", "900"),
                stamp_stderr=True,
            )
            self.replicas[step.replica] = Replica(step.replica, proc, proxy)
        elif r is None:
            raise AssertionError(f"step {step} names a replica never started")
        elif step.action == "term":
            r.stopped = True
            r.proc.terminate()
        elif step.action == "kill":
            r.killed = True
            r.proc.kill9()
            r.incidents.append(Incident("kill", now, now))
        elif step.action == "pause":
            r.proc.pause()
            r.incidents.append(Incident("pause", now, math.inf))
        elif step.action == "resume":
            r.proc.resume()
            end_incident(r, "pause", now)
        elif step.action == "cut":
            r.proxy.faults.dynamodb_cut = True
            r.incidents.append(Incident("cut", now, math.inf))
        elif step.action == "uncut":
            r.proxy.faults.dynamodb_cut = False
            end_incident(r, "cut", now)
        elif step.action == "ddb_throttle":
            r.proxy.faults.dynamodb_throttle = 0.5
            r.incidents.append(Incident("throttle", now, math.inf))
        elif step.action == "ddb_unthrottle":
            r.proxy.faults.dynamodb_throttle = 0.0
            end_incident(r, "throttle", now)
        else:
            raise AssertionError(f"unknown step {step}")

    def apply_global(self, step: Step) -> None:
        if step.action == "rate":
            self.traffic.rate = step.arg
        elif step.action == "read_throttle":
            self.reads.faults.throttle = 0.5
        elif step.action == "read_unthrottle":
            self.reads.faults.throttle = 0.0
        elif step.action == "add_cluster":
            cluster = self.clusters[len(self.active)]
            self.active.append(cluster)
            self.params.write_text(",".join(self.active))  # the config rewritten ...
            for r in self.replicas.values():
                if r.live:
                    r.proc.reload()  # ... and reloaded by every replica
            self.traffic.activate(cluster)
        elif step.action == "split":
            shard = self.rng.choice(self.open_shards())
            low, high = _range(shard)
            self.kinesis.split_shard(
                StreamName=self.stream,
                ShardToSplit=shard["ShardId"],
                NewStartingHashKey=str((low + high) // 2),
            )
        elif step.action == "merge":
            shards = sorted(self.open_shards(), key=lambda s: _range(s)[0])
            pairs = [(a, b) for a, b in itertools.pairwise(shards) if _range(a)[1] + 1 == _range(b)[0]]
            a, b = self.rng.choice(pairs)
            self.kinesis.merge_shards(
                StreamName=self.stream, ShardToMerge=a["ShardId"], AdjacentShardToMerge=b["ShardId"]
            )
        else:
            raise AssertionError(f"unknown step {step}")

    def all_shards(self) -> list[dict[str, Any]]:
        return list(self.kinesis.list_shards(StreamName=self.stream)["Shards"])

    def open_shards(self) -> list[dict[str, Any]]:
        return open_shards(self.kinesis, self.stream)

    def units(self) -> list[str]:
        if self.sched.mode == "poll":
            return list(self.active)
        return sorted(s["ShardId"] for s in self.open_shards())

    # ------------------------------------------------------------------------------------ quiescing

    def heal(self) -> None:
        now = time.time()
        self.reads.faults.throttle = 0.0
        for r in self.replicas.values():
            r.proxy.faults.dynamodb_cut = False
            r.proxy.faults.dynamodb_throttle = 0.0
            if r.live:
                r.proc.resume()
            for kind in ("pause", "cut", "throttle"):
                end_incident(r, kind, now)

    def owners(self) -> dict[str, str]:
        """unit → owner in the lease table, for the current units."""
        items = dynamodb(self.moto_url).scan(TableName=self.table, ConsistentRead=True)["Items"]
        by_key = {i["unit"]["S"]: i.get("owner", {}).get("S", "") for i in items}
        found = {}
        for unit in self.units():
            keys = [k for k in by_key if k.endswith(f"/{unit}/cluster") or k.endswith(f"|{unit}")]
            found[unit] = by_key[keys[0]] if len(keys) == 1 else ""
        return found

    def balance(self) -> tuple[bool, Counter[str]]:
        live = [r.name for r in self.replicas.values() if r.live]
        owners = self.owners()
        counts = Counter({name: 0 for name in live})
        counts.update(owners.values())
        m, n = len(owners), len(live)
        ok = set(counts) == set(live) and all(m // n <= c <= -(-m // n) for c in counts.values())
        return ok, counts

    def quiesce(self) -> None:
        self.heal()
        self.traffic.rate = QUIET_RATE
        live = [r for r in self.replicas.values() if r.live]
        # Balanced, and still so a lease period later (nothing moves any more), within CONVERGE_S of the
        # last fault: a kill or cut-off just before it may still move a lease once (its expiry, or a hand-over
        # asked for by a replica that died since).
        deadline = time.monotonic() + CONVERGE_S
        balanced_since: float | None = None
        while True:
            ok, counts = self.balance()
            now = time.monotonic()
            balanced_since = (balanced_since or now) if ok else None
            if balanced_since is not None and now - balanced_since >= LEASE_S:
                break
            if now > deadline:
                self.problems.append(f"not balanced for a lease period within {CONVERGE_S}s: {counts}")
                break
            time.sleep(0.25)
        since = time.time()
        holders = {o for o in self.owners().values() if o}
        for r in live:
            if r.name in holders and not wait_for(functools.partial(_delivered_since, r, since), 8 * LEASE_S):
                self.problems.append(f"{r.name} holds units but delivered nothing for {8 * LEASE_S}s (stuck)")
        self.traffic.stop()

    def outcome(self) -> Outcome:
        parents: dict[str, list[str]] = {}
        if self.sched.mode == "stream":
            for s in self.all_shards():
                parents[s["ShardId"]] = [
                    p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p
                ]
        replicas = list(self.replicas.values())
        return Outcome(self.sched, replicas, self.traffic, self.units(), self.problems, parents)

    def finish(self, deadline_s: float) -> None:
        """Wait until every event that must come out did (or the deadline), watch for repeats, stop every
        replica."""
        want = self.outcome().required()

        def delivered() -> set[str]:
            return {i for r in self.replicas.values() for i in r.proc.ids()}

        if wait_for(lambda: want <= delivered(), deadline_s, step=0.5):
            # Read past a last event in every unit, twice: a repeat would show up there. (A mark that does
            # not come out is counted lost by the checks.)
            wait_past_marks(self.traffic.mark, delivered, deadline_s)
        live = [r for r in self.replicas.values() if r.live]
        for r in live:
            r.stopped = True
            r.proc.terminate()
        for r in self.replicas.values():
            if r.killed:
                continue
            try:
                code = r.proc.wait(30)
            except Exception:
                self.problems.append(f"{r.name} did not exit within 30s of SIGTERM (stuck)")
                r.proc.stop()
                continue
            summary = r.proc.summary()
            if code != 0 or summary.get("rc") not in (-1, 0):
                err = r.proc.stderr()[-600:]
                self.problems.append(f"{r.name} exited {code}, summary rc {summary.get('rc')}: {err}")
                continue
            # A call that spans a SIGSTOP lasts the pause too.
            paused_ms = sum(1000 * (i.end - i.start) for i in r.incidents if i.kind == "pause")
            if summary.get("max_batch_ms", 0) > LEASE_S * 1000 + paused_ms:
                self.problems.append(f"{r.name}: a next_batch call took {summary['max_batch_ms']} ms (stuck)")

    def close(self) -> None:
        self.traffic.stop()
        for r in self.replicas.values():
            r.proc.stop()
            r.proxy.close()
        self.reads.close()


def _range(shard: dict[str, Any]) -> tuple[int, int]:
    hashes = shard["HashKeyRange"]
    return int(hashes["StartingHashKey"]), int(hashes["EndingHashKey"])


def _delivered_since(r: Replica, since: float) -> bool:
    return any(e["t"] >= since for e in r.proc.events())


def run(sched: Schedule, host: Host, moto_url: str, tmp: Path, deliver_deadline_s: float = 40) -> Outcome:
    tmp.mkdir(parents=True, exist_ok=True)
    world = _World(sched, host, moto_url, tmp)
    try:
        world.traffic.start()
        t0 = time.monotonic()
        for step in sched.steps:
            delay = t0 + step.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the schedule's own clock: steps happen at their times
            if step.replica:
                world.apply(step)
            else:
                world.apply_global(step)
        delay = t0 + sched.duration - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        world.quiesce()
        # Disorder: the last events held past the settle time come out in the sweep, lookback + 5-15 s later.
        world.finish(deliver_deadline_s + (sched.lookback + 20 if sched.lookback else 0))
        parents: dict[str, list[str]] = {}
        if sched.mode == "stream":
            for s in world.all_shards():
                parents[s["ShardId"]] = [
                    p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p
                ]
        return Outcome(
            sched, list(world.replicas.values()), world.traffic, world.units(), world.problems, parents
        )
    finally:
        world.close()
