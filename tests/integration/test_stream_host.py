"""Stream mode as Falco sees it: the real library in the C host reading a local Kinesis stream.

PutLogEvents → subscription filter → Kinesis → plugin → host for two clusters, kill -9 of the host and
restart with checkpoint_file, and an open error that says what to fix."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.host import Host, HostResult
from tests.support.kinesis import create_stream, put_real_records, subscribe
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

AUDIT = "kube-apiserver-audit-0123456789abcdef"


@pytest.fixture
def aws_host(host: Host) -> Host:
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    return Host(host.binary, host.library, env=env)


def _config(moto: MotoServer, **extra: Any) -> str:
    values = {"kinesis_endpoint_url": moto.url, "region": "us-east-1", "shift": 600}
    values.update(extra)
    return orjson.dumps(values).decode()


def _requests(tmp_path: Path, *names: str) -> str:
    path = tmp_path / "requests.txt"
    path.write_text("\n".join(names) + "\n")
    return str(path)


def _ids(result: HostResult) -> list[str]:
    return [e["values"][0][0] for e in result.events]


def test_put_log_events_to_falco_through_subscription_two_clusters(
    aws_host: Host, moto: MotoServer, tmp_path: Path
) -> None:
    arn = create_stream(moto.url, "host-e2e", 2)
    logs = logs_client(moto.url)
    now = int(time.time() * 1000)
    for cluster, first in (("blue", 0), ("green", 1000)):
        group = f"/aws/eks/{cluster}/cluster"
        create_group(logs, group, [AUDIT])
        subscribe(moto.url, group, arn)
        put_events(
            logs, group, AUDIT, [(now + i, audit_event(i, now + i)) for i in range(first, first + 300)]
        )
    result = aws_host.run(
        "run",
        "--config",
        _config(moto),
        "--open",
        "kinesis://host-e2e",
        "--requests",
        _requests(tmp_path, "ka.auditid", "ka.cluster.name"),
        "--max-events",
        "600",
        "--max-seconds",
        "60",
        check=True,
    )
    got = {e["values"][0][0]: e["values"][1] for e in result.events}
    assert len(result.events) == len(got) == 600
    assert all(got[f"a-{i}"] == ["blue"] for i in range(300))
    assert all(got[f"a-{i}"] == ["green"] for i in range(1000, 1300))


def test_kill_9_of_the_host_then_restart_loses_nothing(
    aws_host: Host, moto: MotoServer, tmp_path: Path
) -> None:
    create_stream(moto.url, "host-kill", 2)
    put_real_records(moto.url, "host-kill", "crashy", 0, 3000, 9)
    config = _config(moto, checkpoint_file=str(tmp_path / "state" / "stream.ckpt"))
    requests = _requests(tmp_path, "ka.auditid")
    args = ["--config", config, "--open", "kinesis://host-kill", "--requests", requests]

    # 1. killed in the middle of a batch (batches end inside records: 9 log events per record)
    first = aws_host.run("run", *args, "--kill-after", "1000")
    assert first.returncode == -9
    # 2. restart: reads the rest, then is killed while waiting for new events
    rest = {f"a-{i}" for i in range(3000)} - set(_ids(first))
    second = aws_host.run_killed_when_idle(*args, expect=rest)
    # 3. new records while it is down; restart and read them
    put_real_records(moto.url, "host-kill", "crashy", 5000, 500, 7)
    third = aws_host.run_killed_when_idle(*args, expect={f"a-{i}" for i in range(5000, 5500)})

    third_ids = [i for run in third for i in _ids(run)]
    seen = Counter(_ids(first) + [i for run in second for i in _ids(run)] + third_ids)
    assert set(seen) == {f"a-{i}" for i in [*range(3000), *range(5000, 5500)]}
    repeated = [k for k, v in seen.items() if v > 1]
    assert len(repeated) <= 128  # only the batch in flight at the kill (at most one batch)
    assert set(repeated) <= set(_ids(first))
    assert sorted(third_ids) == sorted(f"a-{i}" for i in range(5000, 5500))


def test_open_error_names_the_missing_stream_and_the_fix(aws_host: Host, moto: MotoServer) -> None:
    line = aws_host.run("open", "--config", _config(moto), "--open", "kinesis://absent").lines[0]
    assert line["rc"] == 1, line
    assert "Kinesis stream absent not found in region us-east-1" in line["error"]
    assert "setup-stream" in line["error"]


def test_sanitized_build_reads_a_stream_with_concurrent_metrics(
    asan_host: Host, moto: MotoServer, tmp_path: Path
) -> None:
    """The reader thread, next_batch, extraction and get_metrics from another thread, under ASan/UBSan."""
    create_stream(moto.url, "host-asan", 2)
    put_real_records(moto.url, "host-asan", "sanitized", 0, 2000, 11)
    env = {**asan_host.env, **{k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}}
    host = Host(asan_host.binary, asan_host.library, env=env)
    requests = _requests(tmp_path, "ka.auditid", "ka.verb", "ka.cluster.name")
    args = ["--config", _config(moto), "--open", "kinesis://host-asan", "--requests", requests]
    result = host.run("run", *args, "--max-events", "2000", "--metrics-thread")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(_ids(result)) == sorted(f"a-{i}" for i in range(2000))
    assert all(e["values"][2] == ["sanitized"] for e in result.events)
    metrics = result.summary["metrics"]
    assert metrics["events"] == 2000 and metrics["shards_held"] == 2 and result.summary["metrics_calls"] > 0


def test_list_open_params_offers_stream_mode(host: Host) -> None:
    info = host.run("info", check=True).lines[0]
    assert any(p["value"].startswith("kinesis://") for p in info["open_params"]), info["open_params"]
