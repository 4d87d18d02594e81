"""S3 archives in the local moto server: CloudWatch export objects and Firehose deliveries of a
subscription, written in the formats AWS writes them."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable
from typing import Any

import boto3
import orjson

from tests.support.kinesis import event_id
from tests.support.moto_server import REGION, audit_event

__all__ = [
    "create_bucket",
    "export_object",
    "firehose_document",
    "firehose_object",
    "iso_ms",
    "s3_client",
]


def s3_client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_bucket(url: str, bucket: str) -> Any:
    s3 = s3_client(url)
    s3.create_bucket(Bucket=bucket)
    return s3


def iso_ms(ms: int) -> str:
    """CloudWatch export's timestamp form: 2026-11-01T00:00:00.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def export_object(events: Iterable[tuple[int, int]], pad: int = 0) -> bytes:
    """A CreateExportTask object: gzip of `timestamp message` lines; events as (n, timestamp ms)."""
    lines = [f"{iso_ms(ts)} {audit_event(n, ts, pad=pad)}\n" for n, ts in events]
    return gzip.compress("".join(lines).encode())


def firehose_document(
    log_group: str,
    stream: str,
    events: Iterable[tuple[int, int]],
    pad: int = 0,
    message_type: str = "DATA_MESSAGE",
) -> bytes:
    """One subscription document (not compressed) of audit events (n, timestamp ms), eventIds from n."""
    doc = {
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": stream,
        "subscriptionFilters": ["archive"],
        "logEvents": [
            {"id": event_id(n), "timestamp": ts, "message": audit_event(n, ts, pad=pad)} for n, ts in events
        ],
    }
    return orjson.dumps(doc)


def firehose_object(documents: Iterable[bytes], *, members: bool = False) -> bytes:
    """A Firehose object: the documents concatenated with no separator, gzip (`members`: each document
    gzip on its own, as the subscription sends them and Firehose stores them uncompressed)."""
    docs = list(documents)
    if members:
        return b"".join(gzip.compress(d) for d in docs)
    return gzip.compress(b"".join(docs))
