"""Poll mode under its cap: a new stream found by the poll itself, quiet and busy log groups sharing the
FilterLogEvents calls (neither starves), and groups that fall behind reported (metric and log line)."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import defaultdict

import pytest

from k8saudit_eks_py import log
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.faultproxy import FaultProxy
from tests.support.moto_server import (
    FAST,
    MotoServer,
    assert_exactly,
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

A, B = "kube-apiserver-audit-aaaa", "kube-apiserver-audit-bbbb"


class Writer(threading.Thread):
    """`rate` events/s into each of `groups` (stream A), until stopped; event numbers from `first`."""

    def __init__(self, c: object, groups: list[str], rate: int, first: int) -> None:
        super().__init__(daemon=True)
        self.c, self.groups, self.rate, self.next = c, groups, rate, first
        self.ids: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0 / self.rate):
            ts = now_ms()
            for group in self.groups:
                put_events(self.c, group, A, [(ts, audit_event(self.next, ts))])
                self.ids.add(f"a-{self.next}")
                self.next += 1


def test_a_new_stream_is_found_by_the_poll_without_a_listing(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/found-by-poll/cluster"
    create_group(c, group, [A])
    tuning = dataclasses.replace(FAST, list_every_s=60.0)  # no listing during the test after the first
    source = open_cloudwatch("found-by-poll", make_config(moto.url, shift=5), tuning=tuning)
    writer = Writer(c, [group], 20, 0)
    writer.start()
    try:
        got = read_until(source, 1, 10)
        listings = source.metrics()["api_calls_describe_log_streams"]
        c.create_log_stream(logGroupName=group, logStreamName=B)  # a new API server
        t = now_ms()
        put_events(
            c, group, B, [(t - 2_000 + i, audit_event(1_000_000 + i, t - 2_000 + i)) for i in range(50)]
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not {f"a-{1_000_000 + i}" for i in range(50)} <= set(
            audit_ids(got)
        ):
            got += read_until(source, 10**9, 0.5)
        writer.halt.set()
        writer.join()
        got += read_until(source, 10**9, 1, settle=2.0)
        after = source.metrics()["api_calls_describe_log_streams"]
    finally:
        writer.halt.set()
        writer.join()  # not putting into a server the module's end stops
        source.close()
    assert_exactly(audit_ids(got), writer.ids | {f"a-{1_000_000 + i}" for i in range(50)})
    assert after == listings  # found by the poll's own read, not by a listing


def test_quiet_groups_and_a_group_catching_up_share_the_calls_neither_starves(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    busy = "/aws/eks/fair-busy/cluster"
    quiet = [f"/aws/eks/fair-quiet-{i}/cluster" for i in range(5)]
    t = now_ms() - 60_000
    create_group(c, busy, [A])
    put_events(c, busy, A, [(t + i, audit_event(i, t + i)) for i in range(4_000)])  # 40 pages of 100
    for n, group in enumerate(quiet):
        create_group(c, group, [A])
        put_events(c, group, A, [(t, audit_event(10_000 + n, t))])
    names = ",".join(g.split("/")[3] for g in [busy, *quiet])
    with FaultProxy(moto.url) as proxy:
        config = make_config(proxy.url, max_api_calls_per_second=4.0, polling_interval=1)
        source = open_cloudwatch(names, config, tuning=dataclasses.replace(FAST, page_limit=100))
        try:
            got = read_until(source, 4_005, 40, settle=3.0)
        finally:
            source.close()
    assert_exactly(audit_ids(got), {f"a-{i}" for i in range(4_000)} | {f"a-{10_000 + n}" for n in range(5)})
    calls: dict[str, list[float]] = defaultdict(list)
    for body, at in zip(proxy.stats.bodies, proxy.stats.filter_times, strict=True):
        if body.get("limit") != 1:  # not open's check
            calls[body["logGroupName"]].append(at)
    assert proxy.stats.max_per_second() <= 5  # FilterLogEvents at its cap (4/s), not above
    began, ended = calls[busy][0], calls[busy][-1]
    assert ended - began >= 8  # 40 pages at 4/s, shared
    during = sum(began <= at <= ended for at in proxy.stats.filter_times)
    # Quiet groups back off (1 s, 2 s, 4 s, 6 s at most): most calls go to the group with the backlog ...
    assert len(calls[busy]) >= 0.6 * during, (len(calls[busy]), during)
    # ... and every quiet group is still polled at least every 6 s plus a slot's wait.
    for group in quiet:
        times = [began, *(at for at in calls[group] if began <= at <= ended), ended]
        assert max(b - a for a, b in itertools.pairwise(times)) <= 8.5, (group, times)


def test_groups_the_cap_cannot_serve_are_warned_at_open_then_counted_and_named(
    moto: MotoServer, capfd: pytest.CaptureFixture[str]
) -> None:
    log.logger.reset()  # an earlier test's line of the same kind must not hold this one back
    c = logs_client(moto.url)
    groups = [f"/aws/eks/behind-{i}/cluster" for i in range(3)]
    for group in groups:
        create_group(c, group, [A])
    writer = Writer(c, groups, 5, 0)  # every group busy: polled every polling_interval if it could be
    config = make_config(moto.url, max_api_calls_per_second=0.5, polling_interval=1, shift=5)
    source = open_cloudwatch(",".join(g.split("/")[3] for g in groups), config, tuning=FAST)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        metrics = source.metrics()
        while time.monotonic() < deadline and not metrics["groups_behind"]:
            read_until(source, 10**9, 0.5)
            metrics = source.metrics()
        lags = source.group_lags()
    finally:
        writer.halt.set()
        writer.join()  # not putting into a server the module's end stops
        source.close()
    err = capfd.readouterr().err
    # One read every 2 s serves one group per 2 x polling_interval; three need 1.5 calls/s, and their
    # sweeps one call a minute each: 1.55.
    assert "3 log groups need about 1.6 FilterLogEvents calls/s" in err, err
    assert "Raise max_api_calls_per_second to 1.6" in err and "polling_interval to 4" in err, err
    assert metrics["groups_behind"] >= 1 and metrics["poll_lag_seconds"] > 3.0, metrics
    assert set(lags) == set(groups) and max(lags.values()) == pytest.approx(
        metrics["poll_lag_seconds"], abs=2
    )
    assert "poll mode behind:" in err and "log groups last read up to more than 3s ago" in err
