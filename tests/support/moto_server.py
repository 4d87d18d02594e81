"""A local CloudWatch Logs (moto server in its own process on 127.0.0.1) and helpers to seed it."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.config import PluginConfig, parse_config
from k8saudit_eks_py.sources.cloudwatch import Tuning
from k8saudit_eks_py.sources.streams import ReadParams

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LOGS", "AWS_ROLE_ARN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dummy_environ(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment with test credentials only: nothing can reach real AWS."""
    env = dict(os.environ if base is None else base)
    for name in _UNSET:
        env.pop(name, None)
    env.update(DUMMY_ENV)
    return env


class MotoServer:
    """The moto server as a subprocess (its own GIL, so it does not slow the code under test), with DynamoDB's
    atomic conditional writes, and with `aws_resharding` Kinesis's resharding as AWS does it
    (tests.support.moto_main)."""

    def __init__(self, aws_resharding: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dummy_environ()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        self._proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.support.moto_main", "-H", "127.0.0.1", "-p", str(self.port)),
                *(["--aws-resharding"] if aws_resharding else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self._request("GET", "/moto-api/")
                return
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def _request(self, method: str, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def reset(self) -> None:
        self._request("POST", "/moto-api/reset")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


@contextmanager
def moto_server(aws_resharding: bool = False) -> Iterator[MotoServer]:
    server = MotoServer(aws_resharding)
    try:
        yield server
    finally:
        server.stop()


def logs_client(url: str) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def audit_event(n: int, ts_ms: int, *, pad: int = 0, verb: str = "get") -> str:
    """A realistic EKS audit event; auditID `a-<n>`; stageTimestamp = ts_ms + 123 µs."""
    micros = (ts_ms % 1000) * 1000 + 123
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{micros:06d}Z"
    doc = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"a-{n}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/default/pods/p{n}",
        "verb": verb,
        "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": f"p{n}", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": {"pad": "x" * pad},
        "responseObject": {"kind": "Pod"},
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    return orjson.dumps(doc).decode()


def create_group(client: Any, group: str, streams: Iterable[str]) -> None:
    client.create_log_group(logGroupName=group)
    for stream in streams:
        client.create_log_stream(logGroupName=group, logStreamName=stream)


def put_events(client: Any, group: str, stream: str, events: Iterable[tuple[int, str]]) -> None:
    """PutLogEvents in batches within the service limits (10,000 events, ~1 MB), sorted by timestamp."""
    batch: list[dict[str, Any]] = []
    size = 0
    for ts, message in sorted(events, key=lambda e: e[0]):
        cost = len(message.encode()) + 26
        if batch and (len(batch) == 10_000 or size + cost > 1_000_000):
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append({"timestamp": ts, "message": message})
        size += cost
    if batch:
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


# ------------------------------------------------------------------------------------ reading back


def now_ms() -> int:
    return int(time.time() * 1000)


def seed_cluster(url: str, cluster: str, stream: str, events: Iterable[tuple[int, int]]) -> str:
    """Audit events (n → auditID a-<n>, timestamp ms) into `stream` of /aws/eks/<cluster>/cluster, creating
    the group and stream on first use; returns the group."""
    client = logs_client(url)
    group = f"/aws/eks/{cluster}/cluster"
    if not client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        create_group(client, group, [stream])
    put_events(client, group, stream, [(ts, audit_event(n, ts)) for n, ts in events])
    return group


def assert_exactly(got: list[str], expected: set[str]) -> None:
    """Each expected id once: none lost, none repeated, nothing else."""
    counts = Counter(got)
    lost = expected - set(counts)
    dup = {k: v for k, v in counts.items() if v > 1}
    extra = set(counts) - expected
    assert (len(lost), len(dup), len(extra)) == (0, 0, 0), (sorted(lost)[:5], list(dup.items())[:5], extra)


def read_until(source: Any, want: int, timeout: float, settle: float = 0.0) -> list[tuple[int, bytes]]:
    """Events from next_batch until `want` arrived or `timeout` passed, then `settle` more seconds of reading
    (to catch duplicates that a later sweep would produce)."""
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batch, _ = source.next_batch(500, 0.2)
        got.extend(batch)
    end = time.monotonic() + settle
    while time.monotonic() < end:
        batch, _ = source.next_batch(500, 0.2)
        got.extend(batch)
    return got


def audit_ids(events: Iterable[tuple[int, bytes]]) -> list[str]:
    return [str(orjson.loads(payload)["auditID"]) for _, payload in events]


# ------------------------------------------------------------------------------------ pytest fixtures

# Small backoffs, a 4-minute lookback, 2 s of per-stream overlap, quiet streams read on every poll: the
# scenarios stay fast and still exercise late arrivals and re-reads.
FAST = Tuning(
    backoff_min_s=0.02,
    backoff_max_s=0.3,
    connect_timeout_s=2.0,
    read_timeout_s=5.0,
    page_limit=500,
    reads=ReadParams(
        lookback_ms=240_000, overlap_ms=2_000, together_ms=500, idle_every_ms=500, retire_ms=3_600_000
    ),
    preflight_attempts=2,
    list_every_s=1.0,
    close_timeout_s=8.0,
    log_every_s=5.0,
)


def make_config(endpoint: str, **overrides: Any) -> PluginConfig:
    values: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region": REGION,
        "shift": 600,
        "lookback": 240,
        "polling_interval": 1,
        "max_api_calls_per_second": 100.0,
    }
    values.update(overrides)
    return parse_config(orjson.dumps(values).decode())


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """A fresh server per module, not one reset between modules: moto keeps some state through a reset (the
    numbering of CloudWatch eventIds, which tests/integration/test_cloudwatch_upgrade.py relies on)."""
    with moto_server() as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials only, and no in-process positions left over from another test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    clear_memory()
