"""`k8saudit-eks-py check` run as a user runs it, against the moto server (sts, eks, logs, iam, dynamodb),
and an IAM user whose policy moto enforces: shared by the check and setup-coordination tests."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from tests.support.moto_server import MotoServer, dummy_environ

__all__ = [
    "AUDIT_STREAM",
    "ENABLE",
    "REGION",
    "ROOT",
    "check",
    "client",
    "iam_enforced",
    "iam_user",
    "make_cluster",
]

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
AUDIT_STREAM = "kube-apiserver-audit-" + "0123456789abcdef" * 2
ENABLE = (
    "aws eks update-cluster-config --name {name} --region us-east-1 "
    """--logging '{{"clusterLogging":[{{"types":["audit"],"enabled":true}}]}}'"""
)


def client(server: MotoServer, service: str, **keys: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=keys.get("id", "testing"),
        aws_secret_access_key=keys.get("secret", "testing"),
    )


def make_cluster(
    server: MotoServer, name: str, *, audit: bool = True, group: bool = True, age_s: int = 30
) -> None:
    client(server, "eks").create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": []},
        logging={"clusterLogging": [{"types": ["api", "audit"] if audit else ["api"], "enabled": True}]},
    )
    if not group:
        return
    logs = client(server, "logs")
    g = f"/aws/eks/{name}/cluster"
    logs.create_log_group(logGroupName=g)
    for stream in (AUDIT_STREAM, "authenticator-" + "f" * 32):
        logs.create_log_stream(logGroupName=g, logStreamName=stream)
    ts = int((time.time() - age_s) * 1000)
    logs.put_log_events(
        logGroupName=g,
        logStreamName=AUDIT_STREAM if audit else "authenticator-" + "f" * 32,
        logEvents=[{"timestamp": ts, "message": '{"kind":"Event","verb":"get"}'}],
    )


def check(server: MotoServer, name: str, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    e = env or dummy_environ()
    e["AWS_ENDPOINT_URL"] = server.url  # STS and EKS (and IAM) go to the local server too
    e["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8saudit_eks_py",
            "check",
            name,
            "--region",
            REGION,
            "--endpoint-url",
            server.url,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def iam_user(server: MotoServer, name: str, actions: list[str] | None = None) -> dict[str, str]:
    """An IAM user (allowed `actions` on every resource, or nothing) and an environment with its keys."""
    iam = client(server, "iam")
    iam.create_user(UserName=name)
    if actions:
        allow = {"Effect": "Allow", "Action": actions, "Resource": "*"}
        iam.put_user_policy(
            UserName=name,
            PolicyName="partial",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
        )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    env = dummy_environ()
    env.pop("AWS_SESSION_TOKEN")
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key["AccessKeyId"], key["SecretAccessKey"]
    return env


@contextmanager
def iam_enforced(server: MotoServer) -> Iterator[None]:
    """Within it, moto authorizes every request against IAM (by default it allows everything)."""
    _reset_auth(server, "0")
    try:
        yield
    finally:
        _reset_auth(server, "inf")


def _reset_auth(server: MotoServer, value: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/moto-api/reset-auth", body=value, headers={"Content-Type": "text/plain"})
        assert conn.getresponse().status == 200
    finally:
        conn.close()
