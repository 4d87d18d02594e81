"""Exactly-once through a fault-injecting proxy in front of moto: every run-time failure is retried."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter

import pytest

from k8saudit_eks_py.sources.cloudwatch import Tuning, open_cloudwatch
from k8saudit_eks_py.sources.cloudwatch.streams import ReadParams
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

STREAMS = ("kube-apiserver-audit-1111", "kube-apiserver-audit-2222")
LAGGING = "kube-apiserver-audit-3333"  # an API server whose shipping runs 2 minutes behind
N = 4000


# Quiet streams re-read only hourly and a small overlap: a page mistaken for the end of the data is then a
# loss, not something a later read repairs.
NO_SWEEP = dataclasses.replace(
    FAST,
    reads=ReadParams(
        lookback_ms=240_000, overlap_ms=200, together_ms=500, idle_every_ms=3_600_000, retire_ms=3_600_000
    ),
)


def run(
    server: MotoServer, name: str, faults: Faults, tuning: Tuning = FAST, **config: object
) -> tuple[Counter[str], dict, FaultProxy]:
    """Half the events exist before open; the other half arrive while reading, half of that (unless quiet
    streams are rarely read) 2 minutes old in a stream of its own, as a lagging API server ships them."""
    c = logs_client(server.url)
    group = f"/aws/eks/{name}/cluster"
    create_group(c, group, [*STREAMS, LAGGING, "authenticator-x"])
    t = int(time.time() * 1000)

    def put(first: int, count: int, base: int) -> None:
        late = base < time.time() * 1000 - 90_000
        for s, stream in enumerate(STREAMS):
            ids = range(first + s, first + count, 2)
            events = [(base + (i % 7), audit_event(i, base + (i % 7))) for i in ids]
            put_events(c, group, LAGGING if late else stream, events)

    put(0, N // 2, t - 60_000)
    with FaultProxy(server.url, faults) as proxy:
        source = open_cloudwatch(name, make_config(proxy.url, **config), tuning=tuning)

        def live() -> None:
            for k in range(4):
                time.sleep(0.3)
                late = k % 2 and tuning is FAST
                base = int(time.time() * 1000) - (120_000 if late else 0)
                put(N // 2 + k * N // 8, N // 8, base)

        feeder = threading.Thread(target=live)
        feeder.start()
        try:
            got = read_until(source, N, 90, settle=2.5)
            feeder.join()
            got += read_until(source, 0, 0, settle=0.5)
            metrics = source.metrics()
        finally:
            feeder.join()
            source.close()
    counts = Counter(audit_ids(got))
    return counts, metrics, proxy


def check(counts: Counter[str]) -> None:
    expected = {f"a-{i}" for i in range(N)}
    lost = expected - set(counts)
    dup = sum(v - 1 for v in counts.values())
    assert (len(lost), dup, len(set(counts) - expected)) == (0, 0, 0), sorted(lost)[:10]


@pytest.mark.parametrize(
    ("name", "faults", "injected"),
    [
        ("throttle", Faults(throttle=0.3), "ThrottlingException"),
        ("server-errors", Faults(server_error=0.2), "ServiceUnavailableException"),
        ("resets", Faults(reset=0.2), "reset"),
        ("slow", Faults(slow=0.3, slow_s=0.4), "slow"),
        ("empty-pages", Faults(empty_page=0.4), "empty_page"),
        ("cut-200", Faults(cut_200=0.2), "cut_200"),
        (
            "everything",
            Faults(throttle=0.1, server_error=0.1, reset=0.05, slow=0.1, empty_page=0.2, cut_200=0.05),
            "reset",
        ),
    ],
)
def test_fault_scenario_exactly_once(moto: MotoServer, name: str, faults: Faults, injected: str) -> None:
    counts, metrics, proxy = run(moto, f"fault-{name}", faults)
    check(counts)
    assert proxy.stats.injected.get(injected, 0) > 0
    if injected not in ("slow", "empty_page"):
        assert metrics["retries"] > 0
    if name == "throttle":
        assert metrics["throttles"] > 0


@pytest.mark.parametrize(
    ("name", "faults", "injected"),
    [("empty-pages", Faults(empty_page=0.4), "empty_page"), ("cut-200", Faults(cut_200=0.3), "cut_200")],
)
def test_pages_that_look_final_are_not_the_end(
    moto: MotoServer,
    name: str,
    faults: Faults,
    injected: str,
) -> None:
    counts, _, proxy = run(moto, f"nosweep-{name}", faults, tuning=NO_SWEEP)
    check(counts)
    assert proxy.stats.injected.get(injected, 0) > 0


def test_expired_credentials_refresh(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assumed-role credentials rejected as expired after 5 calls each: the source assumes the role again."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto.url)
    counts, _metrics, proxy = run(
        moto,
        "fault-expired",
        Faults(expire_after=5),
        role_arn="arn:aws:iam::123456789012:role/falco-reader",
        external_id="ext-1",
    )
    check(counts)
    assert proxy.stats.injected["ExpiredTokenException"] > 0
    assert len(proxy.stats.keys) >= 3  # several distinct assumed-role access keys were used
    assert all(key.startswith("ASIA") or key.startswith("AKIA") for key in proxy.stats.keys)


def test_api_call_rate_stays_under_the_cap_during_catch_up(moto: MotoServer) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/rate-cap/cluster"
    create_group(c, group, [STREAMS[0]])
    t = int(time.time() * 1000) - 100_000
    put_events(c, group, STREAMS[0], [(t + i, audit_event(i, t + i)) for i in range(20_000)])
    with FaultProxy(moto.url) as proxy:
        tuning = dataclasses.replace(FAST, page_limit=500)
        source = open_cloudwatch(
            "rate-cap", make_config(proxy.url, max_api_calls_per_second=8.0), tuning=tuning
        )
        try:
            got = read_until(source, 20_000, 60)
        finally:
            source.close()
        metrics = source.metrics()  # after close: no call is sent after it
    assert len(set(audit_ids(got))) == len(got) == 20_000
    assert len(proxy.stats.filter_times) >= 40
    assert proxy.stats.max_per_second() <= 9  # at most rate + 1 in any one-second window
    # Every call is counted before it is sent; one may still be on its way if close() gave up waiting.
    assert 0 <= metrics["api_calls_filter_log_events"] - len(proxy.stats.filter_times) <= 1
    assert (
        metrics["api_calls"] - metrics["api_calls_filter_log_events"]
        <= 1 + (metrics["api_calls_describe_log_streams"])
    )
