"""The CloudWatch source against a real moto server: exactly-once in the shapes CloudWatch produces."""

from __future__ import annotations

import orjson

from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from k8saudit_eks_py.sources.truncation import ANNOTATION_REASON, TRUNCATED_MARK
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

AUDIT_A = "kube-apiserver-audit-aaaa"
AUDIT_B = "kube-apiserver-audit-bbbb"
OTHER = "kube-apiserver-cccc"  # same group, not audit: moto ignores logStreamNamePrefix, so it leaks in


def test_5000_events_sharing_three_milliseconds(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/same-ms/cluster"
    create_group(c, group, [AUDIT_A, AUDIT_B, OTHER])
    t = now_ms() - 10_000
    put_events(c, group, AUDIT_A, [(t + i % 3, audit_event(i, t + i % 3)) for i in range(0, 5000, 2)])
    put_events(c, group, AUDIT_B, [(t + i % 3, audit_event(i, t + i % 3)) for i in range(1, 5000, 2)])
    put_events(c, group, OTHER, [(t, "I0101 not an audit line")] * 10)
    source = open_cloudwatch("same-ms", make_config(moto.url), tuning=FAST)
    try:
        got = read_until(source, 5000, 30, settle=2.5)
        metrics = source.metrics()
    finally:
        source.close()
    assert_exactly(audit_ids(got), {f"a-{i}" for i in range(5000)})
    by_id = {orjson.loads(p)["auditID"]: ts for ts, p in got}
    assert by_id["a-4"] == (t + 1) * 1_000_000 + 123_000  # Falco time = stageTimestamp, µs exact
    # Every poll re-reads each stream's last 2 s (the overlap): all of these, and each is delivered once.
    assert metrics["duplicates_suppressed"] >= 5000
    assert metrics["malformed"] == 0  # the other stream is filtered by name, not parsed


def test_30000_events_across_pages(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/many/cluster"
    create_group(c, group, [AUDIT_A, AUDIT_B])
    t = now_ms() - 120_000
    put_events(c, group, AUDIT_A, [(t + i, audit_event(i, t + i)) for i in range(0, 30_000, 2)])
    put_events(c, group, AUDIT_B, [(t + i, audit_event(i, t + i)) for i in range(1, 30_000, 2)])
    source = open_cloudwatch("many", make_config(moto.url), tuning=FAST)
    try:
        got = read_until(source, 30_000, 90, settle=2.5)
        metrics = source.metrics()
    finally:
        source.close()
    assert_exactly(audit_ids(got), {f"a-{i}" for i in range(30_000)})
    assert metrics["api_calls"] >= 60  # 500-event pages


def test_stream_ingested_three_minutes_late(moto: MotoServer) -> None:
    """Stream B's events are 3 minutes older than stream A's but put after A was read (the Go plugin's D2)."""
    c = logs_client(moto.url)
    group = "/aws/eks/late/cluster"
    create_group(c, group, [AUDIT_A, AUDIT_B])
    t = now_ms()
    put_events(c, group, AUDIT_A, [(t - 5_000 + i, audit_event(i, t - 5_000 + i)) for i in range(500)])
    source = open_cloudwatch("late", make_config(moto.url), tuning=FAST)
    try:
        first = read_until(source, 500, 20, settle=1.5)
        old = t - 180_000
        put_events(c, group, AUDIT_B, [(old + i, audit_event(1000 + i, old + i)) for i in range(500)])
        # Beyond the 240 s lookback: the documented limit, these are not read again.
        too_old = t - 300_000
        put_events(c, group, AUDIT_B, [(too_old + i, audit_event(2000 + i, too_old + i)) for i in range(5)])
        second = read_until(source, 500, 20, settle=2.5)
    finally:
        source.close()
    assert_exactly(audit_ids(first), {f"a-{i}" for i in range(500)})
    assert_exactly(audit_ids(second), {f"a-{1000 + i}" for i in range(500)})


def test_truncated_oversize_and_foreign_lines(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/trunc/cluster"
    create_group(c, group, [AUDIT_A])
    t = now_ms() - 5_000
    cut = audit_event(1, t, pad=40_000)[:9_000] + TRUNCATED_MARK
    big = audit_event(2, t + 1, pad=20_000)
    lines = [
        (t, cut),
        (t + 1, big),
        (t + 2, audit_event(3, t + 2)),
        (t + 3, "plain text"),
        (t + 4, '{"kind":"X"}'),
    ]
    put_events(c, group, AUDIT_A, lines)
    source = open_cloudwatch("trunc", make_config(moto.url, max_event_size=16_384), tuning=FAST)
    try:
        got = read_until(source, 3, 20, settle=1.5)
        metrics = source.metrics()
    finally:
        source.close()
    docs = {d["auditID"]: d for d in (orjson.loads(p) for _, p in got)}
    assert sorted(docs) == ["a-1", "a-2", "a-3"]
    assert docs["a-1"]["annotations"][ANNOTATION_REASON] == "truncated"
    assert docs["a-1"]["verb"] == "get" and docs["a-1"]["user"]["username"] == "kubernetes-admin"
    assert docs["a-2"]["annotations"][ANNOTATION_REASON] == "oversize"
    assert all(len(p) <= 16_384 for _, p in got)
    assert (metrics["truncated_recovered"], metrics["oversize"], metrics["malformed"]) == (1, 1, 2)


def test_several_clusters_and_cluster_for(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    t = now_ms() - 5_000
    for n, name in enumerate(("multi-a", "multi-b")):
        create_group(c, f"/aws/eks/{name}/cluster", [AUDIT_A])
        events = [(t + i, audit_event(n * 1000 + i, t + i)) for i in range(300)]
        put_events(c, f"/aws/eks/{name}/cluster", AUDIT_A, events)
    source = open_cloudwatch("multi-a, multi-b", make_config(moto.url), tuning=FAST)
    try:
        got = read_until(source, 600, 20, settle=1.5)
        assert source.default_cluster is None
        assert source.cluster_for("a-5") == "multi-a"
        assert source.cluster_for("a-1005") == "multi-b"
        assert source.cluster_for("unknown") is None
    finally:
        source.close()
    assert_exactly(audit_ids(got), {f"a-{n * 1000 + i}" for n in range(2) for i in range(300)})
    single = open_cloudwatch("multi-a", make_config(moto.url), tuning=FAST)
    try:
        assert single.cluster_for("anything") == "multi-a"
    finally:
        single.close()


def test_filter_pattern_pushed_down_and_log_group_by_arn(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/arn-target/cluster"
    create_group(c, group, [AUDIT_A])
    t = now_ms() - 5_000
    put_events(
        c,
        group,
        AUDIT_A,
        [(t + i, audit_event(i, t + i, verb="create" if i % 4 == 0 else "get")) for i in range(200)],
    )
    arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
    with FaultProxy(moto.url) as proxy:
        config = make_config(proxy.url, log_group=arn, filter_pattern="create")
        source = open_cloudwatch("whatever", config, tuning=FAST)
        try:
            got = read_until(source, 50, 20, settle=1.5)
        finally:
            source.close()
    assert_exactly(audit_ids(got), {f"a-{i}" for i in range(0, 200, 4)})
    body = [b for b in proxy.stats.bodies if "startTime" in b][-1]  # the last read
    assert body["logGroupIdentifier"] == arn.removesuffix(":*") and "logGroupName" not in body
    # A poll's read asks for the audit prefix (or names a lagging stream).
    streams = body.get("logStreamNamePrefix") or body["logStreamNames"]
    assert body["filterPattern"] == "create" and streams in ("kube-apiserver-audit", [AUDIT_A])
