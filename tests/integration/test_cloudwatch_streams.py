"""Per-stream reading against moto with pages cut at 1 MB as CloudWatch cuts them: each event read about
once, streams that appear or lag late, the cost of an idle group, a small checkpoint, and units added and
removed at run time."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import orjson

from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch, unit_key
from k8saudit_eks_py.sources.cloudwatch.streams import ReadParams
from tests.support.faultproxy import FaultProxy
from tests.support.moto_server import (
    FAST,
    REGION,
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    logs_client,
    make_config,
    now_ms,
    put_events,
    read_until,
)
from tests.support.moto_server import (
    assert_exactly as exactly,
)

STREAMS = [f"kube-apiserver-audit-{n:04d}" for n in range(3)]
PAD = 1_500 - len(audit_event(0, 0))  # ~1.5 KB events, like busy EKS audit logs
SIZE = len(audit_event(0, 0, pad=PAD))
PAGE_LIMIT = 1_048_576 // (SIZE + 26)  # CloudWatch returns at most 1 MB of events per page

# The defaults' per-stream overlap (1 s) and idle period (3 polls), with test backoffs and 1 MB pages.
REALISTIC = dataclasses.replace(FAST, page_limit=PAGE_LIMIT, reads=ReadParams.derive(240, 3))


class Writer(threading.Thread):
    """`rate` events/s of ~1.5 KB round-robin over `streams`, timestamped now, for `seconds`."""

    def __init__(self, c: object, group: str, streams: list[str], rate: int, seconds: float, first: int = 0):
        super().__init__(daemon=True)
        self.c, self.group, self.streams = c, group, streams
        self.rate, self.seconds, self.first, self.written = rate, seconds, first, 0

    def run(self) -> None:
        began = time.monotonic()
        while time.monotonic() - began < self.seconds:
            due = int((time.monotonic() - began) * self.rate)
            ts = now_ms()
            per: dict[str, list[tuple[int, str]]] = {}
            for i in range(self.written, due):
                n = self.first + i
                per.setdefault(self.streams[i % len(self.streams)], []).append(
                    (ts, audit_event(n, ts, pad=PAD))
                )
            for stream, events in per.items():
                put_events(self.c, self.group, stream, events)
            self.written = due
            time.sleep(0.2)

    def ids(self) -> set[str]:
        return {f"a-{self.first + i}" for i in range(self.written)}


def test_steady_state_reads_each_event_about_once_with_1mb_pages(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/steady/cluster"
    create_group(c, group, STREAMS)
    began = time.monotonic()
    tuning = dataclasses.replace(REALISTIC, list_every_s=60.0)  # the default listing period
    source = open_cloudwatch("steady", make_config(moto.url, polling_interval=3, shift=5), tuning=tuning)
    writer = Writer(c, group, STREAMS, rate=300, seconds=16)
    try:
        writer.start()
        got = read_until(source, 10**9, 17)
        writer.join()
        got += read_until(source, writer.written - len(got), 10, settle=2.5)
        metrics = source.metrics()
        polls = (time.monotonic() - began) / 3 + 1
    finally:
        source.close()
    exactly(audit_ids(got), writer.ids())
    # about 1 + overlap / polling_interval = 1.33
    amplification = metrics["events_read"] / metrics["events"]
    assert amplification <= 1.5, metrics
    assert metrics["events_read"] - metrics["events"] == metrics["duplicates_suppressed"]
    # One read per poll plus one page per ~700 events; listings only now and then: far below the old
    # re-reads and the old listing per poll.
    listings = metrics["api_calls_describe_log_streams"]
    assert metrics["api_calls_filter_log_events"] <= polls + metrics["events"] / PAGE_LIMIT + 3, metrics
    assert listings <= 2 + polls / 10, metrics
    assert metrics["api_calls"] == metrics["api_calls_filter_log_events"] + listings


def test_a_stream_created_late_with_older_events_is_read_from_lookback(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/new-stream/cluster"
    create_group(c, group, STREAMS[:1])
    t = now_ms()
    put_events(c, group, STREAMS[0], [(t - 3_000 + i, audit_event(i, t - 3_000 + i)) for i in range(200)])
    source = open_cloudwatch("new-stream", make_config(moto.url), tuning=REALISTIC)
    try:
        first = read_until(source, 200, 20, settle=1.0)
        # A new API server: its stream appears now, holding events up to 2 minutes old (and some older
        # than the 240 s lookback, which stay out).
        c.create_log_stream(logGroupName=group, logStreamName=STREAMS[1])
        old = now_ms() - 120_000
        put_events(c, group, STREAMS[1], [(old - 200_000, audit_event(9999, old - 200_000))])
        put_events(c, group, STREAMS[1], [(old + i, audit_event(1000 + i, old + i)) for i in range(300)])
        second = read_until(source, 300, 20, settle=2.5)
    finally:
        source.close()
    exactly(audit_ids(first), {f"a-{i}" for i in range(200)})
    exactly(audit_ids(second), {f"a-{1000 + i}" for i in range(300)})


def test_a_lagging_stream_catches_up_without_dragging_the_others_back(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/lagging/cluster"
    create_group(c, group, STREAMS)
    with FaultProxy(moto.url) as proxy:
        source = open_cloudwatch("lagging", make_config(proxy.url), tuning=REALISTIC)
        writer = Writer(c, group, STREAMS[:2], rate=200, seconds=10)
        try:
            writer.start()
            # The busy streams have a position (are read at the group's common position) first.
            flowing = read_until(source, 1, 10)
            since = len(proxy.stats.bodies)  # reads made once they flow
            # The third API server ships 100 s late, then catches up in 5 steps.
            lag_first = now_ms() - 100_000
            for step in range(5):
                behind = 100_000 - step * 25_000
                base = now_ms() - behind
                put_events(
                    c,
                    group,
                    STREAMS[2],
                    [(base + i, audit_event(100_000 + step * 100 + i, base + i)) for i in range(100)],
                )
                time.sleep(2)
            writer.join()
            got = flowing + read_until(source, writer.written + 500 - len(flowing), 20, settle=2.5)
            metrics = source.metrics()
        finally:
            source.close()
    exactly(audit_ids(got), writer.ids() | {f"a-{100_000 + i}" for i in range(500)})
    assert metrics["events_read"] / metrics["events"] <= 1.6, metrics
    # Once flowing, the busy streams were never read from the lagging stream's position (they are read by
    # the prefix read, which names no stream, or by name). Before, while they had no event yet, they were
    # read from where a new stream starts, as the lagging one was.
    # (The trailing sweep's reads end lookback behind now, far before the lagging stream: not counted.)
    busy_reads = [
        b
        for b in proxy.stats.bodies[since:]
        if "startTime" in b
        and STREAMS[0] in b.get("logStreamNames", [STREAMS[0]])
        and b["endTime"] >= lag_first
    ]
    lag_reads = [b for b in proxy.stats.bodies if b.get("logStreamNames") == [STREAMS[2]]]
    assert lag_reads and busy_reads
    assert all(b["startTime"] > lag_first + 20_000 for b in busy_reads), [b["startTime"] for b in busy_reads]


def test_an_idle_log_group_costs_at_most_one_call_per_poll_and_fewer_once_quiet(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/idle-cost/cluster"
    create_group(c, group, STREAMS)
    t = now_ms() - 2_000
    for n, stream in enumerate(STREAMS):
        put_events(c, group, stream, [(t + n, audit_event(n, t + n))])
    tuning = dataclasses.replace(REALISTIC, list_every_s=60.0)  # the default listing period
    source = open_cloudwatch("idle-cost", make_config(moto.url, polling_interval=1, shift=5), tuning=tuning)
    try:
        read_until(source, 3, 10)
        before = source.metrics()
        time.sleep(8)
        after = source.metrics()
    finally:
        source.close()
    reads = after["api_calls_filter_log_events"] - before["api_calls_filter_log_events"]
    listings = after["api_calls_describe_log_streams"] - before["api_calls_describe_log_streams"]
    # 8 polling intervals: quiet polls back off 2 s, 4 s, 6 s (quiet_max_polls): one call each, no listing
    # per poll (the recent listing runs every 30 s).
    assert 1 <= reads <= 5, (reads, listings)
    assert listings <= 1, (reads, listings)
    assert after["api_calls"] - before["api_calls"] == reads + listings
    assert after["events_read"] - before["events_read"] <= 3 * reads  # only each stream's last event


def test_checkpoint_stays_a_few_kb_at_a_high_rate(moto: MotoServer, tmp_path: Path) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/ckpt-size/cluster"
    create_group(c, group, STREAMS)
    t = now_ms() - 60_000
    for n, stream in enumerate(STREAMS):  # 30,000 events in 60 s: 500 events/s
        ids = range(n, 30_000, 3)
        put_events(c, group, stream, [(t + i * 2, audit_event(i, t + i * 2)) for i in ids])
    path = tmp_path / "cp.json"
    config = make_config(moto.url, checkpoint_file=str(path), shift=120)
    source = open_cloudwatch("ckpt-size", config, tuning=dataclasses.replace(FAST, page_limit=5000))
    try:
        got = read_until(source, 30_000, 60)
    finally:
        source.close()
    exactly(audit_ids(got), {f"a-{i}" for i in range(30_000)})
    doc = orjson.loads(path.read_bytes())
    (state,) = doc["units"].values()
    assert set(state["streams"]) == set(STREAMS)
    # The README's bound: per stream a position, per stream and 10 s bucket not yet swept a record of
    # ~80 bytes (no disorder here), whatever the event rate (30,000 events would be ~1 MB of eventIds).
    buckets = (state["front"] - state["sweep"]) // 10_000 + 2
    assert all(len(per) <= buckets for per in state["counts"].values()), state["counts"]
    assert len(orjson.dumps(state)) < 512 + len(STREAMS) * buckets * 90
    assert os.path.getsize(path) < 8_192


def test_units_added_and_removed_at_run_time(moto: MotoServer) -> None:
    """What lease handover needs: stop a log group (its queued events dropped, nothing delivered twice)
    and start it again from the state last saved for it."""
    c = logs_client(moto.url)
    for name in ("unit-a", "unit-b"):
        create_group(c, f"/aws/eks/{name}/cluster", STREAMS[:1])
    t = now_ms() - 30_000
    put_events(
        c, "/aws/eks/unit-a/cluster", STREAMS[0], [(t + i, audit_event(i, t + i)) for i in range(2000)]
    )
    put_events(
        c, "/aws/eks/unit-b/cluster", STREAMS[0], [(t + i, audit_event(5000 + i, t + i)) for i in range(2000)]
    )
    config = make_config(moto.url, buffer_size=100, shift=60)
    source = open_cloudwatch("unit-a,unit-b", config, tuning=FAST)
    key_b = unit_key(config, REGION, "/aws/eks/unit-b/cluster")
    try:
        assert sorted(source.units()) == sorted([unit_key(config, REGION, "/aws/eks/unit-a/cluster"), key_b])
        got = read_until(source, 600, 20)
        saved = source.checkpoint_states()[key_b]
        source.remove_unit(key_b)
        assert key_b not in source.units()
        got += read_until(source, 0, 0, settle=3.0)
        ids = audit_ids(got)
        from_b = {x for x in ids if int(x[2:]) >= 5000}
        assert len(from_b) < 2000  # stopped part-way
        source.add_unit(key_b, "unit-b", "/aws/eks/unit-b/cluster", saved)
        got += read_until(source, 4000 - len(got), 30, settle=2.0)
    finally:
        source.close()
    exactly(audit_ids(got), {f"a-{i}" for i in range(2000)} | {f"a-{5000 + i}" for i in range(2000)})
