"""Lease-table helpers for the coordination tests: a table on the moto server, Coordinators on it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from k8saudit_eks_py.aws_setup.lease_table_create import create_table
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import Coordinator, LeaseTable
from k8saudit_eks_py.coordination.lease import PRESENCE_PREFIX
from k8saudit_eks_py.coordination.start import dynamodb_client
from tests.support.moto_server import REGION


def dynamodb(url: str) -> Any:
    """A client for the tests' own reads and writes. Short timeouts: a call stalled in the local server
    fails in seconds instead of holding a test for botocore's default 60 s."""
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            connect_timeout=1.0,
            read_timeout=2.0,
        ),
    )


def new_table(url: str) -> str:
    name = f"leases-{uuid.uuid4().hex[:8]}"
    ok, message = create_table(dynamodb(url), name)
    assert ok, message
    return name


def coordinator(url: str, table: str, replica: str, units: list[str], lease_s: float = 3) -> Coordinator:
    """A Coordinator on the plugin's own DynamoDB client (botocore's retries off, timeouts by lease): a
    throttled call fails at once, as in the plugin, and the Coordinator's own retries are what is tried."""
    cfg = PluginConfig(coordination_endpoint_url=url, lease_duration=max(1, round(lease_s)))
    c = Coordinator(LeaseTable(dynamodb_client(cfg, REGION), table), replica, lease_s, units)
    c.start()
    return c


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def owners(url: str, table: str) -> dict[str, str]:
    items = dynamodb(url).scan(TableName=table, ConsistentRead=True)["Items"]
    return {
        i["unit"]["S"]: i.get("owner", {}).get("S", "")
        for i in items
        if not i["unit"]["S"].startswith(PRESENCE_PREFIX)  # replicas announcing themselves, not units
    }
