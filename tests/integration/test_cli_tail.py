"""`k8saudit-eks-py tail` through the real .so (in-process cffi host), on a replay file and on moto."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from k8saudit_eks_py import library_path
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

ROOT = Path(__file__).resolve().parents[2]
STREAM = "kube-apiserver-audit-" + "ab" * 16


def ev(n: int, verb: str, uri: str, ref: dict[str, str] | None, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": f"user{n}", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.30.2",
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": f"2026-01-02T03:04:0{n}.000000Z",
        "stageTimestamp": f"2026-01-02T03:04:0{n}.123456Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    if ref is not None:
        doc["objectRef"] = ref
    doc.update(extra)
    return doc


EVENTS = [
    ev(
        1, "get", "/api/v1/namespaces/shop/pods/web", {"resource": "pods", "namespace": "shop", "name": "web"}
    ),
    ev(2, "watch", "/api/v1/nodes?watch=true&resourceVersion=5", {"resource": "nodes"}),
    ev(
        3,
        "create",
        "/api/v1/namespaces/default/pods",
        {"resource": "pods", "namespace": "default", "name": "two"},
        requestObject={"kind": "Pod", "spec": {"containers": [{"image": "nginx:1"}, {"image": "busybox"}]}},
    ),
]


@pytest.fixture(scope="module")
def library() -> Path:
    return library_path()


@pytest.fixture
def replay(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    return path


def tail(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    e = env or dummy_environ()
    e["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "tail", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
    )


def test_default_format_is_the_dummy_rule_output(library: Path, replay: Path) -> None:
    proc = tail(f"file://{replay}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "user=user1 verb=get target=web target.namespace=shop resource=pods",
        "user=user2 verb=watch target=<NA> target.namespace=<NA> resource=nodes",
        "user=user3 verb=create target=two target.namespace=default resource=pods",
    ]
    assert "[k8saudit-eks]" in proc.stderr  # the plugin's own log lines stay on stderr


def test_custom_format_with_arguments_lists_and_evt_fields(library: Path, replay: Path) -> None:
    fmt = (
        "%evt.num %evt.time %evt.datetime watch=%ka.uri.param[watch] "
        "images=%ka.req.pod.containers.image id=%ka.auditid"
    )
    proc = tail(f"file://{replay}", "-o", fmt)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "1 03:04:01.123456000 2026-01-02T03:04:01.123456000Z watch=<NA> images=<NA> "
        "id=00000000-0000-4000-8000-000000000001",
        "2 03:04:02.123456000 2026-01-02T03:04:02.123456000Z watch=true images=<NA> "
        "id=00000000-0000-4000-8000-000000000002",
        "3 03:04:03.123456000 2026-01-02T03:04:03.123456000Z watch=<NA> images=(nginx:1,busybox) "
        "id=00000000-0000-4000-8000-000000000003",
    ]


def test_json_output_is_the_payload_and_count_stops(library: Path, replay: Path) -> None:
    proc = tail(f"file://{replay}", "-o", "json", "--count", "2")
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(line) for line in proc.stdout.splitlines()] == EVENTS[:2]


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (["-o", "%ka.nope"], 2, "error: -o: unknown field %ka.nope"),
        (["-o", "%ka.uri.param"], 2, "requires an argument"),
        (["--config", "[1]"], 2, "--config must be a JSON object"),
        (["--config", '{"buffer_size": 0}'], 2, "buffer_size"),
    ],
)
def test_usage_errors(library: Path, replay: Path, args: list[str], rc: int, message: str) -> None:
    proc = tail(f"file://{replay}", *args)
    assert proc.returncode == rc
    assert message in proc.stderr
    assert proc.stdout == ""


def test_open_failure_is_reported(library: Path, tmp_path: Path) -> None:
    proc = tail(f"file://{tmp_path}/missing.jsonl")
    assert proc.returncode == 1
    assert "error: plugin open failed:" in proc.stderr
    assert "missing.jsonl" in proc.stderr


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        logs = logs_client(server.url)
        create_group(logs, "/aws/eks/prod/cluster", [STREAM])
        now = int(time.time() * 1000)
        put_events(
            logs,
            "/aws/eks/prod/cluster",
            STREAM,
            [(now - 60_000 + i, audit_event(i, now - 60_000 + i)) for i in range(5)],
        )
        yield server
    finally:
        server.stop()


def test_tail_a_cluster_from_cloudwatch(library: Path, cloudwatch: MotoServer) -> None:
    proc = tail(
        "prod",
        "--region",
        "us-east-1",
        "--endpoint-url",
        cloudwatch.url,
        "--since",
        "10m",
        "--count",
        "5",
        "--config",
        '{"polling_interval": 1}',
        "-o",
        "%ka.auditid %ka.verb",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [f"a-{i} get" for i in range(5)]


def test_progress_line_on_long_runs(library: Path, cloudwatch: MotoServer) -> None:
    proc = tail(
        "prod",
        "--region",
        "us-east-1",
        "--endpoint-url",
        cloudwatch.url,
        "--since",
        "10m",
        "--duration",
        "4",
        "--progress-interval",
        "1",
        "--config",
        '{"polling_interval": 1}',
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[k8saudit-eks-py] ")]
    assert progress, proc.stderr
    assert progress[-1].startswith("[k8saudit-eks-py] 5 events, ")
    assert ", lag " in progress[-1]


def test_ctrl_c_stops_cleanly(library: Path, cloudwatch: MotoServer) -> None:
    """SIGINT while next_batch waits on an idle cluster: the stream is closed and the exit status is 0.
    Without PYTHONUNBUFFERED, so stdout is a block-buffered pipe: tail must flush each batch itself."""
    env = dummy_environ()
    env.pop("PYTHONUNBUFFERED", None)
    env["PYTHONPATH"] = str(ROOT)
    args = ["--region", "us-east-1", "--endpoint-url", cloudwatch.url, "--since", "10m"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8saudit_eks_py", "tail", "prod", *args, "-o", "%ka.auditid"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)  # a missing flush would block readline forever
    watchdog.start()
    try:
        lines = [proc.stdout.readline().strip() for _ in range(5)]  # all 5 events, then it idles
    finally:
        watchdog.cancel()
    assert sorted(lines) == [f"a-{i}" for i in range(5)]
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert "Traceback" not in err
    assert "closed after" in err  # the plugin's close ran (close → destroy), not a killed process


def test_gzip_replay_gives_the_same_events(library: Path, replay: Path, tmp_path: Path) -> None:
    packed = tmp_path / "audit.jsonl.gz"
    packed.write_bytes(gzip.compress(replay.read_bytes()))
    plain, compressed = tail(f"file://{replay}", "-o", "json"), tail(f"file://{packed}", "-o", "json")
    assert compressed.returncode == 0, compressed.stderr
    assert compressed.stdout == plain.stdout and len(compressed.stdout.splitlines()) == 3


def test_corrupt_gzip_keeps_the_events_before_and_says_so(
    library: Path, replay: Path, tmp_path: Path
) -> None:
    packed = gzip.compress(replay.read_bytes() * 200)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    proc = tail(f"file://{cut}", "-o", "%ka.auditid")
    assert proc.returncode == 0, proc.stderr
    assert 0 < len(proc.stdout.splitlines()) < 600
    assert "cannot read further" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "summary"),
    [
        (b'{"a": 1}\n[1, 2]\n{"kind": "Event"}\n', "3 lines skipped: not audit events"),
        (b"not json\n{broken\n", "2 lines skipped: invalid JSON"),
        (b'{"a": 1}\nnope\n', "2 lines skipped: 1 not audit events, 1 invalid JSON"),
        (bytes(range(256)) * 40, "skipped: invalid JSON"),
    ],
    ids=["not-audit", "not-json", "mixed", "random-bytes"],
)
def test_unusable_replay_reports_each_line_and_fails(
    library: Path, tmp_path: Path, content: bytes, summary: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    proc = tail(f"file://{path}")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert summary in proc.stderr
    assert "error:" in proc.stderr and "no audit event delivered" in proc.stderr
    reported = [line for line in proc.stderr.splitlines() if ": skipped, " in line]
    lines = len(content.splitlines())
    # Every line up to 20, then one line per 30 s (with the count of those held back).
    assert len(reported) == (lines if lines <= 20 else 21)


def test_many_bad_lines_are_rate_limited_with_a_final_count(
    library: Path, replay: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"garbage\n" * 500 + replay.read_bytes())
    proc = tail(f"file://{path}")
    assert proc.returncode == 0, proc.stderr  # the usable events were delivered
    assert len(proc.stdout.splitlines()) == 3
    reported = [line for line in proc.stderr.splitlines() if ": skipped, " in line]
    assert len(reported) == 21
    assert "500 lines skipped: invalid JSON" in proc.stderr


def test_empty_replay_fails_with_a_reason(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    proc = tail(f"file://{path}")
    assert proc.returncode == 1
    assert "no audit event delivered: the file holds none" in proc.stderr


def test_bare_path_suggests_file_url(library: Path, replay: Path) -> None:
    proc = tail(str(replay))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {str(replay)!r} is not a cluster name; to replay a file write file://{replay}"
    ]


def test_open_error_is_printed_once(library: Path, tmp_path: Path) -> None:
    proc = tail(f"file://{tmp_path}/missing.jsonl")
    assert proc.returncode == 1
    assert proc.stderr.count("missing.jsonl") == 1, proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count: must be 1 or more, got 0"),
        (["--count", "-1"], "--count: must be 1 or more, got -1"),
        (["--count", "x"], "--count: not a whole number: 'x'"),
        (["--progress-interval", "-1"], "--progress-interval: must be 0 or more, got -1"),
        (["--duration", "0"], "--duration: must be at least 1 second"),
        (["--since=-5m"], "--since: not a duration"),
    ],
)
def test_numeric_flags_reject_nonsense(library: Path, replay: Path, args: list[str], message: str) -> None:
    proc = tail(f"file://{replay}", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and "Traceback" not in proc.stderr
