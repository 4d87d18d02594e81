"""The objects under an S3 prefix, in key order, one ListObjectsV2 page (at most 1,000 keys) at a time:
never the whole listing in memory. What a key tells: the stream of an export object, the cluster of a
log group named in the path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["S3Object", "cluster_in_key", "export_stream", "list_objects", "split_location"]

_EKS_PATH = re.compile(r"aws/eks/([^/]+)/cluster(?:/|$)")
_WRITE_TEST = "aws-logs-write-test"  # what CreateExportTask writes to check it may write the bucket


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    size: int


def split_location(location: str) -> tuple[str, str]:
    """`bucket/prefix` → (bucket, prefix); the prefix may be empty."""
    bucket, _, prefix = location.partition("/")
    return bucket, prefix


def list_objects(
    list_page: Callable[[dict[str, Any]], dict[str, Any]], bucket: str, prefix: str, start_at: str | None
) -> Iterator[S3Object]:
    """The objects of `bucket` under `prefix` in key order, from `start_at` (included) on.
    `list_page` is one ListObjectsV2 call (retried by the caller)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_at:
        kwargs["StartAfter"] = start_at[:-1]  # keys after it: start_at and the few between (skipped below)
    while True:
        page = list_page(kwargs)
        for item in page.get("Contents", []):
            key = str(item.get("Key", ""))
            if start_at and key < start_at:
                continue
            if key.endswith("/") or key.rsplit("/", 1)[-1] == _WRITE_TEST:
                continue  # folder markers and the export's permission check are not archives
            yield S3Object(key, int(item.get("Size", 0)))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = token


def export_stream(key: str) -> str:
    """The log stream of an export object: the folder it sits in (PREFIX/TASK/STREAM/000000.gz)."""
    parts = key.rsplit("/", 2)
    return parts[-2] if len(parts) == 3 else ""


def cluster_in_key(key: str) -> str | None:
    """The cluster of an `aws/eks/NAME/cluster` log group named in the key's path, if any."""
    m = _EKS_PATH.search(key)
    return m.group(1) if m else None
