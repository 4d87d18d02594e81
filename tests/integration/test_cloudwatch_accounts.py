"""Poll mode across three accounts in two Regions (one moto server; the fault proxy in front of STS and
CloudWatch Logs): clusters named by ARN are read in their own account and Region through their account's
role, names stay apart, a role that cannot be assumed holds back only its own account, credentials that
expire mid-run are renewed, linked accounts are read by logGroupIdentifier with cross-account
observability, and the call caps are per account and Region."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import orjson
import pytest

from k8saudit_eks_py import log
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from k8saudit_eks_py.sources.cloudwatch.source import CloudWatchSource
from tests.support.accounts import (
    ACCOUNTS,
    ROLE_TEMPLATE,
    Cluster,
    account_credentials,
    role_of,
    seed,
)
from tests.support.faultproxy import FaultProxy
from tests.support.moto_server import (
    FAST,
    MotoServer,
    assert_exactly,
    aws_env,  # noqa: F401
    make_config,
    now_ms,
    read_until,
    seed_cluster,
)

A, B, C = ACCOUNTS


@pytest.fixture
def proxy(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The proxy in front of moto for CloudWatch Logs (endpoint_url) and STS (the role sessions)."""
    with FaultProxy(moto.url) as p:  # (after aws_env, autouse, cleared the environment)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", p.url)
        yield p


def _stamps(n: int) -> list[int]:
    base = now_ms() - 60_000
    return [base + i * 200 for i in range(n)]


def _ids(events: list[tuple[int, bytes]]) -> list[str]:
    return [str(orjson.loads(payload)["auditID"]) for _, payload in events]


def _read_ids(source: CloudWatchSource, want: set[str], timeout: float) -> list[str]:
    """Events until every id of `want` arrived (or `timeout`), then a short settle for repeats."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while not want <= set(got) and time.monotonic() < deadline:
        got.extend(_ids(read_until(source, 10**9, 0.3)))
    got.extend(_ids(read_until(source, 10**9, 1.0)))
    return got


def test_clusters_of_three_accounts_in_two_regions_each_once_named_apart(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    clusters = [
        Cluster(A, "us-east-1", "prod", 100_000),
        Cluster(B, "eu-west-1", "prod", 200_000),
        Cluster(C, "us-east-1", "web", 300_000),
        Cluster(C, "eu-west-1", "api", 400_000),
    ]
    expected: dict[str, set[str]] = {c.arn: seed(moto.url, c, _stamps(30)) for c in clusters}
    # A plain name keeps today's meaning: the configured Region and credentials (the default account).
    local = {f"a-{n}" for n in range(500_000, 500_030)}
    seed_cluster(
        moto.url, "local", "kube-apiserver-audit-aaaa", zip(range(500_000, 500_030), _stamps(30), strict=True)
    )
    items = [clusters[0].arn, clusters[1].group_arn, clusters[2].arn, clusters[3].arn, "local"]
    config = make_config(proxy.url, role_arns={a: role_of(a) for a in ACCOUNTS})
    source = open_cloudwatch(",".join(items), config, tuning=FAST)
    try:
        want = set().union(local, *expected.values())
        got = _read_ids(source, want, 60)
        names = {audit_id: source.cluster_for(audit_id) for audit_id in got}
        pacers = source.route_pacers()
    finally:
        source.close()
    assert_exactly(got, want)
    shown = {
        clusters[0].arn: f"{A}/us-east-1/prod",  # two `prod`: each shown with its account and Region
        clusters[1].arn: f"{B}/eu-west-1/prod",
        clusters[2].arn: "web",  # unique names stay plain
        clusters[3].arn: "api",
    }
    for arn, ids in expected.items():
        assert {names[i] for i in ids} == {shown[arn]}, arn
    assert {names[i] for i in local} == {"local"}
    # One pacer (one quota) per (account, Region); the plain name's is the plugin's own account's.
    assert set(pacers) == {
        ("", "us-east-1"),
        (A, "us-east-1"),
        (B, "eu-west-1"),
        (C, "us-east-1"),
        (C, "eu-west-1"),
    }
    assert all(p.calls_by_operation.get("FilterLogEvents", 0) > 0 for p in pacers.values()), pacers
    assert set(proxy.stats.assume_role) == {role_of(A), role_of(B), role_of(C)}


def test_a_role_that_cannot_be_assumed_holds_back_only_its_account(
    moto: MotoServer, proxy: FaultProxy, capfd: pytest.CaptureFixture[str]
) -> None:
    log.logger.reset()
    clusters = [Cluster(a, "us-east-1", "denied-test", 600_000 + i * 10_000) for i, a in enumerate(ACCOUNTS)]
    expected = {c.account: seed(moto.url, c, _stamps(20)) for c in clusters}
    proxy.faults.deny_roles = (role_of(B),)
    config = make_config(proxy.url, role_arn=ROLE_TEMPLATE)
    source = open_cloudwatch(",".join(c.arn for c in clusters), config, tuning=FAST)  # open does not fail
    try:
        others = expected[A] | expected[C]
        got = _read_ids(source, others, 60)
        assert_exactly(got, others)  # A and C read in full, nothing of B
        failures = source.metrics()["role_failures"]
        assert failures >= 2, failures  # at open, then retried by the poller with backoff
        proxy.faults.deny_roles = ()  # the trust policy fixed: B's clusters are read, the others go on
        later = got + _read_ids(source, expected[B], 60)
    finally:
        source.close()
    assert_exactly(later, set().union(*expected.values()))
    err = capfd.readouterr().err
    assert f"cannot assume role {role_of(B)}" in err and f"account {B} in us-east-1" in err, err
    assert "sts:AssumeRole" in err
    assert role_of(A) not in err.replace(f"role {role_of(A)}", "")  # nothing reported about the others


def test_role_credentials_that_expire_mid_run_are_renewed(moto: MotoServer, proxy: FaultProxy) -> None:
    clusters = [Cluster(a, "eu-west-1", "expiry", 700_000 + i * 10_000) for i, a in enumerate(ACCOUNTS)]
    first = {c.account: seed(moto.url, c, _stamps(20)) for c in clusters}
    proxy.faults.expire_roles_once = (role_of(C),)
    proxy.faults.expire_role_after = 3
    config = make_config(proxy.url, role_arn=ROLE_TEMPLATE, region="eu-west-1")
    source = open_cloudwatch(",".join(c.arn for c in clusters), config, tuning=FAST)
    try:
        got = _read_ids(source, set().union(*first.values()), 60)
        assert_exactly(got, set().union(*first.values()))
        second = {c.account: seed(moto.url, c, _stamps(10), offset=100) for c in clusters}
        got += _read_ids(source, set().union(*second.values()), 60)
    finally:
        source.close()
    assert_exactly(got, set().union(*first.values(), *second.values()))
    assert proxy.stats.injected.get("ExpiredTokenException", 0) >= 1
    assert proxy.stats.assume_role[role_of(C)] >= 2  # a new session after the expiry
    assert proxy.stats.assume_role[role_of(A)] == 1  # the others kept theirs


def test_observability_reads_linked_accounts_by_identifier_with_own_credentials(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    clusters = [
        Cluster(A, "us-east-1", "linked", 800_000),
        Cluster(B, "eu-west-1", "linked", 810_000),
    ]
    expected = set().union(*(seed(moto.url, c, _stamps(25)) for c in clusters))
    proxy.faults.linked_keys = {
        c.account: account_credentials(moto.url, c.account)["aws_access_key_id"] for c in clusters
    }
    calls_before = dict(proxy.stats.assume_role)
    config = make_config(proxy.url, cross_account="observability", role_arn=ROLE_TEMPLATE)
    source = open_cloudwatch(",".join(c.arn for c in clusters), config, tuning=FAST)
    try:
        got = _read_ids(source, expected, 60)
        names = {source.cluster_for(i) for i in got}
        pacers = source.route_pacers()
    finally:
        source.close()
    assert_exactly(got, expected)
    assert names == {f"{A}/us-east-1/linked", f"{B}/eu-west-1/linked"}
    assert proxy.stats.assume_role == calls_before  # no role assumed: the monitoring account's own keys
    assert proxy.stats.linked[A] > 0 and proxy.stats.linked[B] > 0
    assert all(p.get("logGroupIdentifier", "").startswith("arn:") for p in proxy.stats.bodies[-10:])
    # The calls spend the monitoring account's quotas, per Region.
    assert set(pacers) == {("", "us-east-1"), ("", "eu-west-1")}


def test_call_caps_are_per_account_and_region(
    moto: MotoServer, proxy: FaultProxy, capfd: pytest.CaptureFixture[str]
) -> None:
    """Three accounts of five busy clusters, each account at its own cap at the same time: together three
    caps' worth of FilterLogEvents calls, each account no more than its cap."""
    log.logger.reset()
    clusters = [
        Cluster(a, "us-east-1", f"quota-{j}", 900_000 + i * 10_000 + j * 1000)
        for i, a in enumerate(ACCOUNTS)
        for j in range(5)
    ]
    for c in clusters:
        seed(moto.url, c, _stamps(5))
    cap = 2.0
    config = make_config(proxy.url, role_arn=ROLE_TEMPLATE, max_api_calls_per_second=cap)
    # Every group polled every polling_interval (1 s), quiet or not: five want 5 calls/s, over the cap.
    tuning = dataclasses.replace(FAST, quiet_max_polls=1)
    source = open_cloudwatch(",".join(c.arn for c in clusters), config, tuning=tuning)
    try:
        pacers = source.route_pacers()

        def filter_calls() -> dict[tuple[str, str], int]:
            return {k: p.calls_by_operation.get("FilterLogEvents", 0) for k, p in pacers.items()}

        read_until(source, 10**9, 3.0)  # past the start-up reads
        before, t0 = filter_calls(), time.monotonic()
        read_until(source, 10**9, 8.0)
        after, elapsed = filter_calls(), time.monotonic() - t0
    finally:
        source.close()
    rates = {k: (after[k] - before[k]) / elapsed for k in after if k[0]}
    assert set(rates) == {(a, "us-east-1") for a in ACCOUNTS}
    assert all(rate <= cap * 1.15 for rate in rates.values()), rates
    assert sum(rates.values()) >= 2.4 * cap, rates  # not one shared cap: about three of them
    err = capfd.readouterr().err
    # The capacity warning counts each account's groups against that account's cap (4 groups at 2/s).
    for account in ACCOUNTS:
        assert f"{account} in us-east-1: 5 log groups need about 2.6 FilterLogEvents calls/s" in err, err
    assert "15 log groups need" not in err


def test_two_replicas_share_two_prod_clusters_of_two_accounts_in_the_lease_table(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    """coordination_table in the security account (the plugin's own credentials, never a member role):
    the lease keys hold account and Region, so two `prod` never collide, and the two replicas deliver
    every event once between them."""
    from tests.support.leases import new_table, owners, wait_for

    table = new_table(moto.url)
    # (the first test of the module has prod in A's us-east-1 and B's eu-west-1)
    clusters = [Cluster(A, "eu-west-1", "prod", 1_000_000), Cluster(B, "us-east-1", "prod", 1_100_000)]
    expected = set().union(*(seed(moto.url, c, _stamps(40)) for c in clusters))
    values = {
        "role_arn": ROLE_TEMPLATE,
        "coordination_table": table,
        "coordination_endpoint_url": moto.url,
        "lease_duration": 3,
    }
    items = ",".join(c.arn for c in clusters)
    sources = [
        open_cloudwatch(items, make_config(proxy.url, replica_id=r, **values), tuning=FAST)
        for r in ("r1", "r2")
    ]
    try:
        got: list[str] = []
        deadline = time.monotonic() + 60
        while not expected <= set(got) and time.monotonic() < deadline:
            for s in sources:
                got.extend(_ids(read_until(s, 10**9, 0.2)))
        assert wait_for(lambda: len(owners(moto.url, table)) == 2, 10)
        keys = sorted(owners(moto.url, table))
    finally:
        for s in sources:
            s.close()
    assert_exactly(got, expected)
    assert [k.split("|", 1)[1] for k in keys] == sorted(f"{c.region}|{c.group_arn}" for c in clusters)


def test_a_cluster_of_an_account_without_a_role_fails_open_naming_role_arns(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    """No role for the account and no observability link: read by ARN with the plugin's own credentials,
    the log group is not found, and open says how to give that account a role."""
    cluster = Cluster(A, "us-east-1", "no-role", 1_200_000)
    seed(moto.url, cluster, _stamps(3))
    config = make_config(proxy.url, role_arns={B: role_of(B)})
    with pytest.raises(OpenError, match=f"No role is configured for account {A}.*set role_arns"):
        open_cloudwatch(cluster.arn, config, tuning=FAST)
