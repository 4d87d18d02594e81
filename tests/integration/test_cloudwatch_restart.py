"""Restarts: kill -9 of a reading process and start again; close/open in one process (Falco hot reload)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.moto_server import (
    FAST,
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    dummy_environ,
    logs_client,
    make_config,
    put_events,
    read_until,
)

STREAM = "kube-apiserver-audit-0123"
LAGGING = "kube-apiserver-audit-4567"  # an API server whose shipping runs 90 s behind
ROOT = Path(__file__).resolve().parents[2]

# Stands in for Falco: next_batch, then one write(2) of the batch's auditIDs ("processing"), then the next
# next_batch; slow enough to kill mid-run. Batches of 40 events.
DRIVER = """
import os, sys, time, orjson
from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.moto_server import FAST
out = os.open(sys.argv[3], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
source = open_cloudwatch(sys.argv[1], parse_config(sys.argv[2]), tuning=FAST)
while True:
    batch, _ = source.next_batch(40, 0.2)
    if batch:
        ids = b"".join(orjson.loads(p)["auditID"].encode() + b"\\n" for _, p in batch)
        os.write(out, ids + b"#\\n")  # one write per batch; "#" closes it
    time.sleep(0.003)
"""


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text().split() if x != "#"] if path.exists() else []


def _batches(text: str) -> list[list[str]]:
    return [chunk.split() for chunk in text.split("#") if chunk.split()]


def test_kill_9_mid_stream_then_restart_delivers_everything_once(moto: MotoServer, tmp_path: Path) -> None:
    c = logs_client(moto.url)
    group = "/aws/eks/killed/cluster"
    create_group(c, group, [STREAM, LAGGING])
    t = int(time.time() * 1000) - 60_000
    total = 12_000
    put_events(c, group, STREAM, [(t + i // 4, audit_event(i, t + i // 4)) for i in range(total // 2)])
    config = orjson.dumps(
        {
            "endpoint_url": moto.url,
            "region": "us-east-1",
            "shift": 600,
            "lookback": 240,
            "polling_interval": 1,
            "max_api_calls_per_second": 100,
            "checkpoint_file": str(tmp_path / "state" / "killed.json"),
            "buffer_size": 300,
        }
    ).decode()
    outs = [tmp_path / f"delivered-{run}.txt" for run in range(4)]  # one file per process

    def delivered() -> int:
        return sum(len(_lines(o)) for o in outs)

    env = dummy_environ()
    env["PYTHONPATH"] = str(ROOT)
    kills = 0
    for run in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, "killed", config, str(outs[run])],
            env=env,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        try:
            if run == 1:  # new events arrive while the reader is down and running
                now = int(time.time() * 1000)
                put_events(
                    c,
                    group,
                    STREAM,
                    [(now + i // 4, audit_event(i, now + i // 4)) for i in range(6000, 9000)],
                )
            if run == 2:
                now = int(time.time() * 1000) - 90_000  # late: older than what was already read
                put_events(
                    c,
                    group,
                    LAGGING,
                    [(now + i // 4, audit_event(i, now + i // 4)) for i in range(9000, total)],
                )
            target = delivered() + 1500
            deadline = time.monotonic() + 60
            while delivered() < min(target, total) and time.monotonic() < deadline:
                time.sleep(0.01)
            if run < 3:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            else:
                deadline = time.monotonic() + 60
                while delivered() < total and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(2.5)  # a few more polls and sweeps: duplicates would show up now
        finally:
            proc.kill()
            proc.wait()
    counts = Counter(x for o in outs for x in _lines(o))
    expected = {f"a-{i}" for i in range(total)}
    lost = expected - set(counts)
    repeated = {k for k, v in counts.items() if v > 1}
    assert kills == 3
    assert not lost, sorted(lost)[:5]
    assert all(v <= 2 for v in counts.values())
    # A kill while a batch is being processed delivers that batch again (never loses it); a kill while
    # waiting in next_batch repeats nothing. So only events of the last batch a killed process was
    # handed may come twice.
    in_flight = {x for o in outs[:3] for x in (_batches(o.read_text()) or [[]])[-1]}
    assert repeated <= in_flight, sorted(repeated - in_flight)[:10]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _hot_reload(server: MotoServer, cluster: str, checkpoint_file: str) -> None:
    c = logs_client(server.url)
    group = f"/aws/eks/{cluster}/cluster"
    create_group(c, group, [STREAM])
    t = int(time.time() * 1000) - 30_000
    put_events(c, group, STREAM, [(t + i, audit_event(i, t + i)) for i in range(3000)])
    config = make_config(server.url, checkpoint_file=checkpoint_file, buffer_size=100)

    warm = open_cloudwatch(cluster, make_config(server.url), tuning=FAST)  # imports, botocore caches
    warm.close()
    threads, fds = threading.active_count(), _fds()

    got = []
    for round_ in range(3):
        source = open_cloudwatch(cluster, config, tuning=FAST)
        if round_ == 1:
            now = int(time.time() * 1000)
            put_events(c, group, STREAM, [(now + i, audit_event(i, now + i)) for i in range(3000, 4000)])
        target = (1200, 2400, 4000)[round_]
        got += read_until(source, target - len(got), 20, settle=0.0 if round_ < 2 else 2.5)
        source.close()
        assert threading.active_count() == threads, "a poller thread outlived close()"
        assert _fds() == fds, "a socket or file outlived close()"
    counts = Counter(audit_ids(got))
    expected = {f"a-{i}" for i in range(4000)}
    assert (len(expected - set(counts)), sum(v - 1 for v in counts.values())) == (0, 0)


def test_hot_reload_with_checkpoint_file(moto: MotoServer, tmp_path: Path) -> None:
    _hot_reload(moto, "reload-file", str(tmp_path / "cp.json"))


def test_hot_reload_without_checkpoint_file_resumes_in_process(moto: MotoServer) -> None:
    _hot_reload(moto, "reload-memory", "")
