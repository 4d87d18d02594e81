"""Many accounts as Falco sees them: the real library in the C host reads two `prod` clusters of two
accounts in two Regions (roles assumed through the fault proxy in front of STS) and a third account whose
role is refused: the two are delivered, told apart in ka.cluster.name, and the refused one neither fails
open nor holds them back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.accounts import ACCOUNTS, ROLE_TEMPLATE, Cluster, role_of, seed
from tests.support.faultproxy import FaultProxy
from tests.support.host import Host
from tests.support.moto_server import MotoServer, aws_env, dummy_environ  # noqa: F401

A, B, C = ACCOUNTS


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as p:
        yield p


def test_two_prod_clusters_of_two_accounts_named_apart_through_the_library(
    host: Host, moto: MotoServer, proxy: FaultProxy, tmp_path: Path
) -> None:
    base = int(time.time() * 1000) - 60_000
    clusters = [
        Cluster(A, "us-east-1", "prod", 2_000_000),
        Cluster(B, "eu-west-1", "prod", 2_100_000),
        Cluster(C, "us-east-1", "web", 2_200_000),
    ]
    sent = {c.account: seed(moto.url, c, [base + i * 100 for i in range(100)]) for c in clusters}
    proxy.faults.deny_roles = (role_of(C),)
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL_STS"] = proxy.url
    config = {
        "endpoint_url": proxy.url,
        "region": "us-east-1",
        "shift": 600,
        "polling_interval": 1,
        "role_arn": ROLE_TEMPLATE,
    }
    requests = tmp_path / "requests.txt"
    requests.write_text("ka.auditid\nka.cluster.name\n")
    result = Host(host.binary, host.library, env=env).run(
        "run",
        *("--config", orjson.dumps(config).decode(), "--open", ",".join(c.arn for c in clusters)),
        *("--requests", str(requests), "--max-events", "200", "--max-seconds", "60"),
        check=True,
    )
    got = {e["values"][0][0]: e["values"][1] for e in result.events}
    assert len(result.events) == len(got) == 200, result.summary
    assert all(got[i] == [f"{A}/us-east-1/prod"] for i in sent[A])
    assert all(got[i] == [f"{B}/eu-west-1/prod"] for i in sent[B])
    assert proxy.stats.assume_role.get(role_of(C), 0) >= 1  # tried, refused, not fatal
