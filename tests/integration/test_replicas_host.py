"""Several Falco replicas in poll mode: the real library in several C host processes, one falco.yaml, log
groups shared through the DynamoDB lease table (moto), with steady traffic into each cluster.

Exactly once across replicas, kill -9 of one, a replica cut off from DynamoDB, rebalancing when one joins
or leaves, hot reload, and a throttled / failing DynamoDB."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.host import Host
from tests.support.host_procs import HostProc, Traffic, delivered, wait_past_marks, wait_until_delivered
from tests.support.leases import new_table, wait_for
from tests.support.moto_server import MotoServer

LEASE_S = 3
BATCH = 128  # the shim's largest batch: what a killed host may have had in flight


class Replicas:
    """Host processes of one test, all with the same config (the same falco.yaml)."""

    def __init__(self, host: Host, tmp_path: Path, moto: MotoServer, clusters: int, **overrides: Any) -> None:
        self.overrides = overrides  # init_config values instead of this class's
        tag = uuid.uuid4().hex[:6]
        self.clusters = [f"c{i}-{tag}" for i in range(clusters)]
        self.table = new_table(moto.url)
        self.host = host
        self.tmp_path = tmp_path
        self.moto = moto
        self.requests = tmp_path / "requests.txt"
        self.requests.write_text("ka.auditid\nka.cluster.name\n")
        self.procs: list[HostProc] = []
        self.traffic = Traffic(moto.url, self.clusters)

    def config(self, coordination_endpoint_url: str = "") -> str:
        values: dict[str, Any] = {
            "endpoint_url": self.moto.url,
            "coordination_endpoint_url": coordination_endpoint_url or self.moto.url,
            "coordination_table": self.table,
            "lease_duration": LEASE_S,
            "region": "us-east-1",
            "shift": 600,
            "polling_interval": 1,
            **self.overrides,
        }
        return orjson.dumps(values).decode()

    def start(self, *extra: str, dynamodb: str = "", seconds: float = 150) -> HostProc:
        """A host reading until it is stopped (SIGTERM; `seconds` is only a safety net)."""
        name = f"replica{len(self.procs)}"
        proc = HostProc(
            self.host,
            self.tmp_path / f"{name}.out",
            self.config(dynamodb),
            ",".join(self.clusters),
            str(self.requests),
            "--max-seconds",
            str(seconds),
            *extra,
        )
        self.procs.append(proc)
        return proc

    def check_cluster_names(self) -> None:
        """ka.cluster.name is the cluster the event was written to, whatever set of units a host held."""
        cluster_of = self.traffic.cluster_of()
        for proc in self.procs:
            for e in proc.events():
                assert e["values"][1] == [cluster_of[e["values"][0][0]]], e

    def stop(self) -> None:
        self.traffic.stop()
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def replicas(host: Host, tmp_path: Path, moto: MotoServer) -> Iterator[Any]:
    made: list[Replicas] = []

    def make(clusters: int, **overrides: Any) -> Replicas:
        made.append(Replicas(host, tmp_path, moto, clusters, **overrides))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def _settle_and_finish(r: Replicas, alive: list[HostProc], timeout: float = 30) -> Counter[str]:
    """Stop the traffic, wait until every sent event came out and the hosts read past a last event per
    cluster (twice: a duplicate would show up there), stop the hosts cleanly (SIGTERM); the delivery
    counts."""
    r.traffic.stop()
    want = r.traffic.expected()
    assert wait_until_delivered(r.procs, want, timeout), sorted(want - set(delivered(r.procs)))[:10]
    assert wait_past_marks(r.traffic.mark, lambda: set(delivered(r.procs)), timeout)
    for proc in alive:
        proc.terminate()
    for proc in alive:
        assert proc.wait(60) == 0, proc.stderr()[-2000:]
    seen = delivered(r.procs)
    assert set(seen) == r.traffic.expected()  # nothing lost, nothing invented (the marks included)
    r.check_cluster_names()
    return seen


def _spread(procs: list[HostProc]) -> list[int]:
    """How many log groups each host delivered from in the last 2 s."""
    now = time.time()
    return [len(p.clusters_since(now - 2)) for p in procs]


def test_three_replicas_three_clusters_each_event_exactly_once(replicas: Any) -> None:
    r = replicas(3)
    r.traffic.start()
    procs = [r.start() for _ in range(3)]
    # Balanced while they run: each host delivers from exactly one log group, a different one each.
    assert wait_for(lambda: _spread(procs) == [1, 1, 1], 45), _spread(procs)
    assert len(set().union(*(p.clusters_since(time.time() - 2) for p in procs))) == 3
    seen = _settle_and_finish(r, procs)
    assert [k for k, n in seen.items() if n > 1] == []
    for p in procs:
        assert p.summary()["rc"] in (-1, 0) and p.summary()["max_batch_ms"] < 1000, p.summary()


def test_events_written_just_after_the_replicas_opened_are_all_delivered(replicas: Any) -> None:
    """Two replicas open, then their clusters start receiving events: the events of the first second
    are not lost to start-up (a log group's origin is its first holder's open time - shift, not the time
    of a take that comes after the start-up pause)."""
    r = replicas(3, shift=1, lease_duration=12)  # a start-up pause of 2 s before the first takes
    r.traffic.per_tick, r.traffic.tick_s = 1, 0.1  # 10 events/s per cluster
    procs = [r.start(), r.start()]
    assert wait_for(lambda: all(any("opened" in row for row in p.lines()) for p in procs), 30)
    r.traffic.start()
    assert wait_for(lambda: sum(len(ids) for ids in r.traffic.sent.values()) >= 240, 30)
    seen = _settle_and_finish(r, procs)
    assert max(seen.values()) == 1, [i for i, n in seen.items() if n > 1][:10]
    assert all(p.clusters_since(0) for p in procs)  # both replicas read


def test_kill_9_of_a_replica_moves_its_unit_to_a_survivor(replicas: Any) -> None:
    r = replicas(3)
    r.traffic.start()
    procs = [r.start() for _ in range(3)]
    assert wait_for(lambda: _spread(procs) == [1, 1, 1], 45), _spread(procs)  # one log group each
    victim = procs[0]
    held = victim.clusters_since(time.time() - 2)
    assert len(held) == 1, held
    victim.kill9()
    killed_at = time.time()
    killed_ids = set(victim.ids())
    survivors = procs[1:]
    (cluster,) = held

    def taken_over() -> list[float]:
        return [e["t"] for p in survivors for e in p.events() if e["values"][1] == [cluster]]

    # A survivor reads the dead replica's log group: within lease_duration + a poll or two.
    assert wait_for(lambda: bool(taken_over()), LEASE_S + 20)
    first = min(taken_over())
    assert first - killed_at < LEASE_S + 4, first - killed_at
    seen = _settle_and_finish(r, survivors, timeout=25)
    repeated = {k for k, n in seen.items() if n > 1}
    assert repeated <= killed_ids  # repeats come only from the batch the dead replica had in flight
    assert len(repeated) <= BATCH
    assert sum(p.summary()["metrics"]["lease_takeovers"] for p in survivors) >= 1


def test_replica_cut_off_from_dynamodb_stops_delivering_before_its_lease_can_move(
    replicas: Any, moto: MotoServer
) -> None:
    r = replicas(2)
    with FaultProxy(moto.url, Faults(targets=())) as proxy:
        r.traffic.start()
        cut = r.start(dynamodb=proxy.url)
        other = r.start()
        assert wait_for(lambda: _spread([cut, other]) == [1, 1], 45), _spread([cut, other])
        held = cut.clusters_since(time.time() - 2)
        assert len(held) == 1, held
        (cluster,) = held
        proxy.faults.dynamodb_cut = True
        cut_at = time.time()
        assert wait_for(lambda: cluster in other.clusters_since(cut_at), LEASE_S + 20)
        seen = _settle_and_finish(r, [cut, other])
    last_by_cut = max(e["t"] for e in cut.events() if e["values"][1] == [cluster])
    # Its last renewal was sent before the cut: it stops delivering before lease_duration has passed.
    assert last_by_cut < cut_at + LEASE_S, last_by_cut - cut_at
    # (The other replica may have held it for a moment at start, before the leases were balanced.)
    first_by_cut = min(e["t"] for e in cut.events() if e["values"][1] == [cluster])
    by_other = [e["t"] for e in other.events() if e["values"][1] == [cluster] and e["t"] > first_by_cut]
    assert by_other and min(by_other) > last_by_cut  # never two replicas delivering that log group at once
    # A repeat is an event the cut replica delivered but could not checkpoint (during the cut).
    cut_late = {e["values"][0][0] for e in cut.events() if e["t"] >= cut_at - 1}
    assert {k for k, n in seen.items() if n > 1} <= cut_late
    assert cut.summary()["rc"] in (-1, 0)  # cut off, it kept answering next_batch (timeouts), never failed


def test_rebalance_when_a_replica_joins_and_when_one_leaves(replicas: Any) -> None:
    r = replicas(4)
    r.traffic.start()
    first = [r.start() for _ in range(3)]
    # 3 replicas, 4 log groups: 2 + 1 + 1
    assert wait_for(lambda: sorted(_spread(first)) == [1, 1, 2], 45), _spread(first)
    joiner = r.start()
    # A fourth replica: one lease is handed over to it, one log group each.
    assert wait_for(lambda: _spread([*first, joiner]) == [1, 1, 1, 1], 30), _spread([*first, joiner])
    (its,) = joiner.clusters_since(time.time() - 2)
    joiner.terminate()
    assert joiner.wait(30) == 0
    left_at = time.time()
    # It left cleanly, releasing its lease: taken at once, not after lease_duration.
    assert wait_for(lambda: any(its in p.clusters_since(left_at) for p in first), LEASE_S)
    assert wait_for(lambda: sorted(_spread(first)) == [1, 1, 2], 10), _spread(first)
    seen = _settle_and_finish(r, first)
    assert [k for k, n in seen.items() if n > 1] == []


def test_hot_reload_and_throttled_failing_dynamodb_never_stop_falco(replicas: Any, moto: MotoServer) -> None:
    r = replicas(2)
    faults = Faults(targets=(), dynamodb_throttle=0.2, dynamodb_server_error=0.1, seed=7)
    with FaultProxy(moto.url, faults) as proxy:
        r.traffic.start()
        reloading = r.start("--reopen-after", "7", dynamodb=proxy.url)
        other = r.start(dynamodb=proxy.url)
        assert wait_for(lambda: {"reopened": 0} in reloading.lines(), 30)
        reopened_at = time.time()
        # Both log groups delivered again after the reload, under throttling and 5xx.
        assert wait_for(
            lambda: len(reloading.clusters_since(reopened_at) | other.clusters_since(reopened_at)) == 2, 30
        )
        seen = _settle_and_finish(r, [reloading, other])
        injected = proxy.stats.injected
        assert sum(n for code, n in injected.items() if "dynamodb" in code) > 20, injected
    assert {"reopened": 0} in reloading.lines()  # SS_PLUGIN_SUCCESS
    for p in (reloading, other):
        summary = p.summary()
        assert summary["rc"] in (-1, 0) and summary["max_batch_ms"] < 1000, summary
    losses = sum(p.summary()["metrics"]["lease_losses"] for p in (reloading, other))
    repeated = [k for k, n in seen.items() if n > 1]
    # Closing hands the lease over after its last checkpoint: no repeat unless a lease was lost.
    assert len(repeated) <= BATCH * losses, (len(repeated), losses)
