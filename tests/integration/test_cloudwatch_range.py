"""A time range of CloudWatch Logs (`CLUSTER?from=...&to=...`): every audit event of [from, to) once, in
timestamp order per stream, across a stream rotation and two clusters, then EOF; in the C host the
capture ends by itself, a kill -9 resumes where it stopped, and a finished range is not read twice."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch_range import open_range
from k8saudit_eks_py.sources.history.retry import Tuning
from k8saudit_eks_py.sources.history.window import iso
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.host import Host, HostResult
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    dummy_environ,
    logs_client,
    put_events,
)

OLD = "kube-apiserver-audit-" + "0a" * 16  # the API server instance that is replaced mid-range
NEW = "kube-apiserver-audit-" + "0b" * 16
GREEN = "kube-apiserver-audit-" + "0c" * 16
OTHER = "authenticator-" + "0d" * 16  # same group, not audit: never read
EOF_RC = 2  # SS_PLUGIN_EOF
FAST = Tuning(backoff_min_s=0.02, backoff_max_s=0.3, page_limit=37, log_every_s=0.0)


class Seeded:
    """Events n → (cluster, stream, timestamp) and the window [from, to) the tests read."""

    def __init__(self, moto: MotoServer) -> None:
        self.base = (int(time.time()) - 3 * 3600) * 1000
        self.where: dict[str, tuple[str, str, int]] = {}
        logs = logs_client(moto.url)
        layout = {
            ("blue", OLD): [(n, self.base + n * 1000) for n in range(0, 400)],
            ("blue", NEW): [(n, self.base + 300_000 + (n - 400) * 1000) for n in range(400, 800)],
            ("blue", OTHER): [(n, self.base + (n - 800) * 1000) for n in range(800, 850)],
            ("green", GREEN): [(n, self.base + (n - 1000) * 700) for n in range(1000, 1600)],
        }
        for cluster in ("blue", "green"):
            group = f"/aws/eks/{cluster}/cluster"
            logs.create_log_group(logGroupName=group)
            for (c, stream), events in layout.items():
                if c != cluster:
                    continue
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                put_events(logs, group, stream, [(ts, audit_event(n, ts)) for n, ts in events])
                for n, ts in events:
                    self.where[f"a-{n}"] = (cluster, stream, ts)
        # lines of an audit stream that are not audit events: counted and logged, never delivered
        bad = [(self.base + 100_000, "this is not JSON"), (self.base + 100_001, '{"kind":"Status"}')]
        put_events(logs, "/aws/eks/blue/cluster", OLD, bad)
        self.from_ms = self.base + 50_000
        self.to_ms = self.base + 600_000

    def params(self, clusters: str = "blue,green") -> str:
        return f"{clusters}?from={iso(self.from_ms)}&to={iso(self.to_ms)}"

    def expected(self) -> set[str]:
        return {
            i
            for i, (_, stream, ts) in self.where.items()
            if stream != OTHER and self.from_ms <= ts < self.to_ms
        }


@pytest.fixture
def seeded(moto: MotoServer) -> Seeded:
    moto.reset()
    return Seeded(moto)


def test_throttles_errors_resets_empty_and_cut_pages_lose_and_repeat_nothing_at_the_cap(
    moto: MotoServer, seeded: Seeded
) -> None:
    faults = Faults(
        throttle=0.15,
        server_error=0.1,
        reset=0.1,
        empty_page=0.15,
        cut_200=0.1,
        seed=23,
    )
    with FaultProxy(moto.url, faults) as proxy:
        config = parse_config(_config(moto, endpoint_url=proxy.url, max_api_calls_per_second=8.0))
        source = open_range(seeded.params(), config, tuning=replace(FAST, page_limit=150, log_every_s=30))
        try:
            ids = audit_ids(_read_to_eof(source, timeout=120))
            metrics = source.metrics()
        finally:
            source.close()
    assert Counter(ids) == Counter(seeded.expected())
    injected = set(proxy.stats.injected)
    assert {"ThrottlingException", "reset", "cut_200", "empty_page"} <= injected, injected
    assert metrics["throttles"] > 0 and metrics["retries"] > 0
    assert proxy.stats.max_per_second() <= 8 + 1  # the cap holds through the retries (one per slot)


@pytest.fixture
def cw_host(host: Host) -> Host:
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    return Host(host.binary, host.library, env=env)


def _config(moto: MotoServer, **extra: Any) -> str:
    return orjson.dumps({"endpoint_url": moto.url, "region": "us-east-1", **extra}).decode()


def _requests(tmp_path: Path) -> str:
    path = tmp_path / "requests.txt"
    path.write_text("ka.auditid\nka.cluster.name\n")
    return str(path)


def _ids(result: HostResult) -> list[str]:
    return [e["values"][0][0] for e in result.events]


def _read_to_eof(source: Any, timeout: float = 60) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    eof = False
    while not eof:
        assert time.monotonic() < deadline, f"no EOF after {len(got)} events"
        batch, eof = source.next_batch(100, 0.5)
        got.extend(batch)
    return got


def test_range_across_a_stream_rotation_and_two_clusters_once_in_order_then_eof(
    moto: MotoServer, seeded: Seeded
) -> None:
    config = parse_config(_config(moto))
    source = open_range(seeded.params(), config, tuning=FAST)
    try:
        got = _read_to_eof(source)
        ids = audit_ids(got)
        assert Counter(ids) == Counter(seeded.expected())  # each once, nothing outside [from, to)
        last: dict[str, int] = {}
        for i in ids:  # timestamp order per stream
            _, stream, ts = seeded.where[i]
            assert ts >= last.get(stream, 0), (i, stream)
            last[stream] = ts
        assert {seeded.where[i][1] for i in ids} == {OLD, NEW, GREEN}
        assert source.progress()[0] == 10000
        metrics = source.metrics()
        # pages of 37: every event of the window read once, none twice
        assert metrics["events_read"] == len(seeded.expected())
        assert metrics["malformed"] == 2
        assert metrics["api_calls_filter_log_events"] >= len(seeded.expected()) // 37
        assert source.next_batch(10, 0.1) == ([], True)  # EOF stays EOF
    finally:
        source.close()


def test_host_run_ends_by_itself_at_the_end_of_the_range(
    cw_host: Host, moto: MotoServer, seeded: Seeded, tmp_path: Path
) -> None:
    result = cw_host.run(
        "run",
        *("--config", _config(moto), "--open", seeded.params(), "--requests", _requests(tmp_path)),
        *("--max-seconds", "120", "--progress"),
        check=True,
    )
    assert result.summary["rc"] == EOF_RC, result.summary  # not the 120 s guard: the plugin said EOF
    assert Counter(_ids(result)) == Counter(seeded.expected())
    clusters = {e["values"][0][0]: e["values"][1] for e in result.events}
    assert all(clusters[i] == [seeded.where[i][0]] for i in clusters)  # ka.cluster.name of its group
    assert "finished reading: 100.0% done" in result.stderr
    assert "progress 10000" in result.stderr


def test_kill_9_resumes_where_it_stopped_and_a_finished_range_is_not_read_again(
    cw_host: Host, moto: MotoServer, seeded: Seeded, tmp_path: Path
) -> None:
    config = _config(moto, checkpoint_file=str(tmp_path / "state" / "range.ckpt"))
    args = ["--config", config, "--open", seeded.params(), "--requests", _requests(tmp_path)]
    first = cw_host.run("run", *args, "--kill-after", "250")
    assert first.returncode == -9
    second = cw_host.run("run", *args, "--max-seconds", "120", check=True)
    assert second.summary["rc"] == EOF_RC
    seen = Counter(_ids(first) + _ids(second))
    assert set(seen) == seeded.expected()
    repeated = {i for i, n in seen.items() if n > 1}
    assert len(repeated) <= 128 and repeated <= set(_ids(first))  # at most the batch in flight
    assert len(_ids(second)) < len(seeded.expected())  # resumed, not started again

    third = cw_host.run("run", *args, "--max-seconds", "60", check=True)
    assert third.summary["rc"] == EOF_RC and third.summary["events"] == 0
    assert "already read to its end" in third.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("blue?from=last-tuesday", "from='last-tuesday' is not a time"),
        ("blue?from=-1h&to=-2h", "is not before to=-2h"),
        ("nope?from=-1h", "log group /aws/eks/nope/cluster not found"),
        ("blue?from=-1h&cluster=x", "cluster= is for s3:// archives"),
    ],
)
def test_misconfigured_range_fails_open_with_the_fix(
    cw_host: Host, moto: MotoServer, seeded: Seeded, params: str, message: str
) -> None:
    line = cw_host.run("open", "--config", _config(moto), "--open", params).lines[0]
    assert line["rc"] == 1 and message in line["error"], line
