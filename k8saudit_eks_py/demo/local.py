"""A local CloudWatch Logs (moto server on 127.0.0.1) seeded like an EKS cluster's log group."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from k8saudit_eks_py import install_hint

__all__ = ["DUMMY_CREDENTIALS", "REGION", "Seeded", "dummy_credentials", "local_cloudwatch", "seed"]

REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send the plugin's boto3 elsewhere than the local server or to real credentials.
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


class DemoUnavailable(RuntimeError):
    """moto is missing: the demo needs the optional `demo` extra."""


@dataclass(frozen=True, slots=True)
class Seeded:
    log_group: str
    audit_streams: tuple[str, ...]
    audit_events: int  # events put into the audit streams (what the plugin must deliver)
    other_events: int  # events in non-audit streams (the plugin must skip them)


@contextmanager
def dummy_credentials() -> Iterator[None]:
    """Dummy keys for this process (the plugin runs in it), restored afterwards."""
    saved = {k: os.environ.get(k) for k in (*DUMMY_CREDENTIALS, *_CLEARED)}
    os.environ.update(DUMMY_CREDENTIALS)
    for key in _CLEARED:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def local_cloudwatch() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (free port) and yield its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise DemoUnavailable(
            f"the demo needs moto ({exc}); install the demo extra: {install_hint('demo')}"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines on the terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "logs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def seed(endpoint_url: str, cluster: str, events: Sequence[dict[str, Any]], seed: int = 7) -> Seeded:
    """Put the events into /aws/eks/<cluster>/cluster as EKS does: two API servers' audit streams
    (kube-apiserver-audit-<32 hex>), timestamps = stageTimestamp, plus an authenticator stream."""
    from datetime import datetime

    rng = random.Random(seed)
    logs = _client(endpoint_url)
    group = f"/aws/eks/{cluster}/cluster"
    logs.create_log_group(logGroupName=group)
    streams = tuple(f"kube-apiserver-audit-{rng.getrandbits(128):032x}" for _ in range(2))
    authenticator = f"authenticator-{rng.getrandbits(128):032x}"
    for name in (*streams, authenticator):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    per_stream: dict[str, list[dict[str, Any]]] = {s: [] for s in streams}
    for i, event in enumerate(events):
        ts = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
        per_stream[streams[i % 2]].append(
            {"timestamp": int(ts.timestamp() * 1000), "message": orjson.dumps(event).decode()}
        )
    for name, batch in per_stream.items():
        batch.sort(key=lambda e: e["timestamp"])
        if batch:
            logs.put_log_events(logGroupName=group, logStreamName=name, logEvents=batch)
    other = [
        {
            "timestamp": per_stream[streams[0]][0]["timestamp"] if per_stream[streams[0]] else 0,
            "message": 'time="2026-01-01T00:00:00Z" level=info msg="access granted" arn="arn:aws:iam::'
            '111122223333:role/developers" client="127.0.0.1:53412" method=POST path=/authenticate',
        }
    ]
    logs.put_log_events(logGroupName=group, logStreamName=authenticator, logEvents=other)
    return Seeded(group, streams, len(events), len(other))
