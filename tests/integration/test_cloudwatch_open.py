"""open fails on configuration errors with the fix spelled out; run-time trouble never fails it; resources
stay bounded (queue by count and bytes, idle CPU)."""

from __future__ import annotations

import time

import pytest

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.moto_server import (
    FAST,
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    logs_client,
    make_config,
    put_events,
    read_until,
)

STREAM = "kube-apiserver-audit-9999"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("", "empty cluster name"),
        ("a,,b", "empty cluster name"),
        ("-starts-with-dash", "not a valid EKS cluster name"),
        ("has space", "not a valid EKS cluster name"),
        ("x" * 101, "not a valid EKS cluster name"),
        ("dup,dup", "names a cluster twice"),
    ],
)
def test_invalid_cluster_names(params: str, message: str) -> None:
    with pytest.raises(OpenError, match=message):
        open_cloudwatch(params, make_config("http://127.0.0.1:9"), tuning=FAST)


def test_missing_log_group_says_how_to_enable_audit_logs(moto: MotoServer) -> None:
    with pytest.raises(OpenError) as err:
        open_cloudwatch("no-such-cluster", make_config(moto.url), tuning=FAST)
    text = str(err.value)
    assert "/aws/eks/no-such-cluster/cluster not found in region us-east-1" in text
    assert "aws eks update-cluster-config --name no-such-cluster --region us-east-1" in text
    assert '"types":["audit"],"enabled":true' in text


def test_no_region(monkeypatch: pytest.MonkeyPatch, moto: MotoServer) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(OpenError, match=r"set region in init_config .* or AWS_REGION"):
        open_cloudwatch("c", make_config(moto.url, region=""), tuning=FAST)


def test_access_denied_names_the_action_and_the_policy(moto: MotoServer) -> None:
    create_group(logs_client(moto.url), "/aws/eks/denied/cluster", [STREAM])
    with FaultProxy(moto.url, Faults(deny=True)) as proxy, pytest.raises(OpenError) as err:
        open_cloudwatch("denied", make_config(proxy.url), tuning=FAST)
    text = str(err.value)
    assert "logs:FilterLogEvents" in text and '"Effect": "Allow"' in text
    assert "arn:aws:logs:us-east-1:*:log-group:/aws/eks/denied/cluster:*" in text


def test_log_group_override_needs_a_single_cluster() -> None:
    with pytest.raises(OpenError, match=r"log_group .* several clusters"):
        open_cloudwatch("a,b", make_config("http://127.0.0.1:9", log_group="/x"), tuning=FAST)


def test_throttled_preflight_does_not_fail_open(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    create_group(c, "/aws/eks/busy/cluster", [STREAM])
    t = int(time.time() * 1000) - 1000
    put_events(c, "/aws/eks/busy/cluster", STREAM, [(t, audit_event(1, t))])
    with FaultProxy(moto.url, Faults(throttle=1.0)) as proxy:
        source = open_cloudwatch("busy", make_config(proxy.url), tuning=FAST)
        try:
            batch, eof = source.next_batch(10, 0.3)
            assert (batch, eof) == ([], False)  # timeouts while throttled, never an error
            proxy.faults.throttle = 0.0
            got = read_until(source, 1, 10)
        finally:
            source.close()
    assert audit_ids(got) == ["a-1"]


def test_queue_is_bounded_by_bytes_and_count_and_the_poller_pauses(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/bounded/cluster"
    create_group(c, group, [STREAM])
    t = int(time.time() * 1000) - 60_000
    n = 3000
    put_events(c, group, STREAM, [(t + i, audit_event(i, t + i, pad=10_000)) for i in range(n)])
    config = make_config(moto.url, buffer_size=100_000, buffer_bytes=1 << 20)
    source = open_cloudwatch("bounded", config, tuning=FAST)
    try:
        time.sleep(1.0)
        first = source.metrics()
        time.sleep(1.0)
        second = source.metrics()
        assert 0 < first["queue_bytes"] <= 1 << 20 and second["queue_bytes"] <= 1 << 20
        assert second["api_calls"] == first["api_calls"]  # blocked on the full queue, not polling
        got = read_until(source, n, 60, settle=1.5)
    finally:
        source.close()
    assert sorted(audit_ids(got)) == sorted(f"a-{i}" for i in range(n))

    clear_memory()  # read the same backlog again, this time bounded by count
    by_count = open_cloudwatch("bounded", make_config(moto.url, buffer_size=50, shift=3600), tuning=FAST)
    try:
        time.sleep(1.0)
        assert 0 < by_count.metrics()["queue_depth"] <= 50
    finally:
        by_count.close()


def test_idle_source_uses_almost_no_cpu(moto: MotoServer) -> None:
    create_group(logs_client(moto.url), "/aws/eks/idle/cluster", [STREAM])
    source = open_cloudwatch("idle", make_config(moto.url, polling_interval=1), tuning=FAST)
    try:
        time.sleep(0.5)
        start = time.process_time()
        for _ in range(10):
            source.next_batch(100, 0.3)
        used = time.process_time() - start
    finally:
        source.close()
    assert used < 0.5, f"{used:.2f}s of CPU in 3s of idling"
