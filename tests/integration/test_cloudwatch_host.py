"""The CloudWatch source as Falco sees it: the real library in the C host against a local CloudWatch.

Bounded next_batch while nothing arrives, several clusters with ka.cluster.name, kill -9 of the host
process and restart with a checkpoint, and open errors that say what to fix."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.host import Host, HostResult
from tests.support.moto_server import (
    MotoServer,
    create_group,
    dummy_environ,
    logs_client,
    seed_cluster,
)

STREAM = "kube-apiserver-audit-00112233445566778899aabbccddeeff"
WAIT_S = 0.05  # the shim's longest wait inside next_batch


@pytest.fixture
def cw_host(host: Host) -> Host:
    """The host with dummy AWS credentials only (nothing can reach real AWS)."""
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    return Host(host.binary, host.library, env=env)


def _config(moto: MotoServer, **extra: Any) -> str:
    values = {"endpoint_url": moto.url, "region": "us-east-1", "shift": 600, "polling_interval": 1}
    values.update(extra)
    return orjson.dumps(values).decode()


def _requests(tmp_path: Path, *names: str) -> str:
    path = tmp_path / "requests.txt"
    path.write_text("\n".join(names) + "\n")
    return str(path)


def _seed(moto: MotoServer, cluster: str, first: int, count: int, now_ms: int) -> None:
    seed_cluster(moto.url, cluster, STREAM, [(i, now_ms + i // 10) for i in range(first, first + count)])


def _ids(result: HostResult) -> list[str]:
    return [e["values"][0][0] for e in result.events]


def test_next_batch_times_out_promptly_and_does_not_spin(
    cw_host: Host,
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    create_group(logs_client(moto.url), "/aws/eks/quiet/cluster", [STREAM])
    result = cw_host.run("run", "--config", _config(moto), "--open", "quiet", "--max-seconds", "3")
    summary = result.summary
    assert summary["events"] == 0 and summary["rc"] == -1, summary  # SS_PLUGIN_TIMEOUT, never FAILURE
    assert summary["max_batch_ms"] < 1000, summary  # bounded: Falco can always stop or reload
    # Each empty next_batch waits ~WAIT_S with the GIL released instead of returning at once.
    assert 3 / (WAIT_S * 4) < summary["timeouts"] < 3 / (WAIT_S * 0.8), summary


def test_several_clusters_and_their_cluster_name(
    cw_host: Host,
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    now = int(time.time() * 1000) - 60_000
    _seed(moto, "blue", 0, 300, now)
    _seed(moto, "green", 1000, 200, now)
    requests = _requests(tmp_path, "ka.auditid", "ka.cluster.name")
    result = cw_host.run(
        "run",
        "--config",
        _config(moto),
        "--open",
        "blue,green",
        "--requests",
        requests,
        "--max-events",
        "500",
        check=True,
    )
    got = {e["values"][0][0]: e["values"][1] for e in result.events}
    assert len(result.events) == len(got) == 500
    assert all(got[f"a-{i}"] == ["blue"] for i in range(300))
    assert all(got[f"a-{i}"] == ["green"] for i in range(1000, 1200))


def test_kill_9_of_the_host_then_restart_loses_nothing(
    cw_host: Host,
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    now = int(time.time() * 1000) - 120_000
    _seed(moto, "crashy", 0, 3000, now)
    config = _config(moto, checkpoint_file=str(tmp_path / "state" / "crashy.ckpt"))
    requests = _requests(tmp_path, "ka.auditid")

    args = ["--config", config, "--open", "crashy", "--requests", requests]
    # 1. killed in the middle of a batch while catching up
    first = cw_host.run("run", *args, "--kill-after", "1000")
    assert first.returncode == -9
    # 2. restart: reads the rest, then is killed while waiting for new events (Falco's steady state)
    second = cw_host.run_killed_when_idle(*args, expect={f"a-{i}" for i in range(3000)} - set(_ids(first)))
    # 3. new events while it is down; restart and read them
    _seed(moto, "crashy", 5000, 500, int(time.time() * 1000) - 5_000)
    third = cw_host.run_killed_when_idle(*args, expect={f"a-{i}" for i in range(5000, 5500)})

    third_ids = [i for run in third for i in _ids(run)]
    seen = Counter(_ids(first) + [i for run in second for i in _ids(run)] + third_ids)
    expected = {f"a-{i}" for i in [*range(3000), *range(5000, 5500)]}
    assert set(seen) == expected  # nothing lost, nothing invented
    # Only the batch being processed at the mid-batch kill may come again (at most one batch of 128);
    # the kill while waiting repeats nothing: the third run sees exactly the new events.
    repeated = [k for k, v in seen.items() if v > 1]
    assert len(repeated) <= 128
    assert set(repeated) <= set(_ids(first))
    assert sorted(third_ids) == sorted(f"a-{i}" for i in range(5000, 5500))


@pytest.mark.parametrize(
    ("params", "extra", "needle"),
    [
        ("absent", {}, "audit logging enabled for cluster absent in region us-east-1"),
        ("bad name!", {}, "cluster name"),
        ("quiet", {"region": ""}, "region"),
    ],
)
def test_open_errors_say_what_to_fix(
    cw_host: Host,
    moto: MotoServer,
    params: str,
    extra: dict[str, Any],
    needle: str,
) -> None:
    host = cw_host
    if "region" in extra:  # no region anywhere: not in init_config, not in the environment
        env = {k: v for k, v in host.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
        host = Host(host.binary, host.library, env={**env, "AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
    line = host.run("open", "--config", _config(moto, **extra), "--open", params).lines[0]
    assert line["rc"] == 1, line
    assert needle in line["error"], line["error"]


def test_sanitized_build_reads_cloudwatch_with_concurrent_metrics(
    asan_host: Host, moto: MotoServer, tmp_path: Path
) -> None:
    """The poller thread, next_batch, extraction and get_metrics from another thread, under ASan/UBSan."""
    _seed(moto, "sanitized", 0, 2000, int(time.time() * 1000) - 30_000)
    env = {**asan_host.env, **{k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}}
    host = Host(asan_host.binary, asan_host.library, env=env)
    requests = _requests(tmp_path, "ka.auditid", "ka.verb", "ka.user.groups")
    args = ["--config", _config(moto), "--open", "sanitized", "--requests", requests, "--max-events", "2000"]
    result = host.run("run", *args, "--metrics-thread")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(_ids(result)) == sorted(f"a-{i}" for i in range(2000))
    assert result.summary["metrics"]["events"] == 2000 and result.summary["metrics_calls"] > 0
