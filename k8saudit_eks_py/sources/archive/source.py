"""The archive source: open_params `s3://BUCKET/PREFIX[?from=TIME&to=TIME&cluster=NAME]` → the objects
under PREFIX in key order → each one's events (export lines or Firehose documents) in the window → the
bounded queue → EOF at the end.

The checkpoint is the object being read and how many of its log events were delivered: objects are never
rewritten, so a restart lists from that key and skips that many. A corrupt or foreign object, or one that
cannot be read, is counted (`archive_objects_bad`) and logged with its key, and the next one is read.
Firehose documents repeat events when the subscription retries: an eventId seen lately (per log group) is
not delivered again.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import Any

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.archive.formats import Corrupt, detect, export_lines, firehose_documents
from k8saudit_eks_py.sources.archive.listing import (
    S3Object,
    cluster_in_key,
    export_stream,
    list_objects,
    split_location,
)
from k8saudit_eks_py.sources.history.feed import HistoryItem, HistorySource
from k8saudit_eks_py.sources.history.retry import Retrier, Tuning
from k8saudit_eks_py.sources.history.window import Window, notes, parse_query, split_params
from k8saudit_eks_py.sources.subscription import Bad, Control, cluster_of

__all__ = ["ArchiveSource", "open_archive"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CLUSTER = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
_OWN_COUNTERS = (metrics.CALLS_S3, metrics.ARCHIVE_OBJECTS, metrics.ARCHIVE_OBJECTS_BAD)
_DEDUP_WINDOW = 50_000  # events remembered (a 64-bit hash of log group and eventId) against repeats
_OBJECT_ATTEMPTS = 5  # reads of one object cut by the network before it is counted bad


def open_archive(
    location: str, config: PluginConfig, *, tuning: Tuning | None = None, now_ms: int | None = None
) -> ArchiveSource:
    base, query = split_params(location)
    bucket, prefix = split_location(base)
    if not _BUCKET.fullmatch(bucket):
        raise OpenError(
            f"open_params s3://{location}: {bucket!r} is not an S3 bucket name; write "
            "s3://BUCKET/PREFIX (e.g. s3://my-audit-archive/exports/prod)"
        )
    cluster = query.get("cluster")
    if cluster is not None and not _CLUSTER.fullmatch(cluster):
        raise OpenError(f"open_params cluster={cluster!r} is not a valid EKS cluster name")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window = parse_query(query, now, need_from=False)
    region = aws.resolve_region(config)
    for note in notes(None, now, config.coordination_table):  # (an archive holds what was delivered)
        log.warning(f"open: {note}")
    store: CheckpointStore = FileStore(config.checkpoint_file) if config.checkpoint_file else MemoryStore()
    source = ArchiveSource(config, region, store, bucket, prefix, window, cluster, tuning or Tuning())
    try:
        source.check_bucket()
    except BaseException:
        source.close(commit=False)
        raise
    source.start()
    return source


class ArchiveSource(HistorySource):
    def __init__(
        self,
        config: PluginConfig,
        region: str,
        store: CheckpointStore,
        bucket: str,
        prefix: str,
        window: Window | None,
        cluster: str | None,
        tuning: Tuning,
    ) -> None:
        super().__init__(config, store, None, _OWN_COUNTERS, tuning)
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self._cluster = cluster
        self._client = self._new_client()
        self._retry = Retrier(tuning, self._counters, self._stop, None, self._renew_client)
        self._unit = (
            f"s3|{config.s3_endpoint_url or 'aws'}|{bucket}/{prefix}|{window.text if window else 'all'}"
        )
        state = store.load(self._unit)
        if window is not None and state is not None and isinstance(state.get("from"), int):
            window = Window(state["from"], state["to"], window.text)  # the window as first opened
        self.window = window
        if state is None:
            state = {"from": window.from_ms, "to": window.to_ms} if window else {}
        self._states[self._unit] = state
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._progress_in_object = 0  # log events of the object being read that were handed on
        self._newest_ms = 0
        self._where = "listing"

    def _new_client(self) -> Any:
        return aws.make_client(
            "s3",
            self.config,
            self.region,
            endpoint_url=self.config.s3_endpoint_url,
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
        )

    def _call(
        self, operation: str, fn: Any, give_up: tuple[aws.ErrorClass, ...] = (), complete: Any = None
    ) -> Any:
        def counted() -> Any:
            self._counters[metrics.CALLS_S3] += 1
            return fn()

        return self._retry.call(operation, f"s3://{self.bucket}/{self.prefix}", counted, give_up, complete)

    def check_bucket(self) -> None:
        """One ListObjectsV2 of the prefix: an unknown bucket, a denied listing, bad credentials or an
        empty prefix fail open with the fix."""
        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            self._counters[metrics.CALLS_S3] += 1
            page = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except Exception as exc:
            if not aws.is_aws_error(exc):
                raise
            kind, cause = aws.classify(exc), aws.describe(exc)
            if kind == "not_found" or aws.error_code(exc) in ("NoSuchBucket", "404"):
                raise OpenError(
                    f"S3 bucket {self.bucket} not found ({cause}): check the bucket in open_params "
                    f"s3://BUCKET/PREFIX and the region ({self.region})"
                ) from None
            if kind == "denied" or aws.error_code(exc) in ("403", "AllAccessDisabled"):
                raise OpenError(
                    f"access denied listing {where} ({cause}): the IAM identity Falco runs as needs "
                    f"s3:ListBucket on arn:aws:s3:::{self.bucket} and s3:GetObject on "
                    f"arn:aws:s3:::{self.bucket}/{self.prefix}*"
                ) from None
            if kind == "credentials":
                raise OpenError(f"no usable AWS credentials ({cause}) to read {where}") from None
            log.warning(f"open: {where}: {cause}; starting anyway, will retry")
            return
        if not page.get("KeyCount") and not page.get("Contents"):
            raise OpenError(
                f"no object under {where}: check the prefix in open_params (a CloudWatch export is under "
                "DESTINATION_PREFIX/TASK_ID/, a Firehose delivery under its S3 prefix)"
            )
        state = self._states[self._unit]
        text = self.window.describe() if self.window else "all events"
        if state.get("done"):
            text += (
                ": already read to its end by an earlier run (checkpoint_file); remove that file, or change "
                "from/to, to read it again"
            )
        elif state.get("key"):
            text += f", resuming at {state['key']} after {state.get('n', 0)} events"
        log.info(f"open: reading {where} ({text})")

    # -------------------------------------------------------------------------------- reader thread

    def _read(self) -> None:
        state = self._states[self._unit]
        if state.get("done"):
            return
        resume_key = state.get("key") if isinstance(state.get("key"), str) else None
        pages = list_objects(
            lambda kwargs: self._call(
                "ListObjectsV2",
                lambda: self._client.list_objects_v2(**kwargs),
                complete=lambda page: "KeyCount" in page,
            ),
            self.bucket,
            self.prefix,
            resume_key,
        )
        for obj in pages:
            skip = int(state.get("n", 0)) if obj.key == resume_key else 0
            if not self._read_object(obj, skip):
                return

    def _read_object(self, obj: S3Object, skip: int) -> bool:
        """Every event of one object from index `skip` on; False when closing."""
        self._where = obj.key
        offered = skip  # the index of the next log event to hand on
        for attempt in range(_OBJECT_ATTEMPTS):
            try:
                body = self._call(
                    "GetObject",
                    lambda: self._client.get_object(Bucket=self.bucket, Key=obj.key)["Body"],
                    give_up=("not_found", "denied"),
                )
            except aws.Cancelled:
                raise
            except Exception as exc:
                return self._bad(obj, f"cannot be read ({aws.describe(exc)})")
            try:
                try:
                    result = self._events(obj, body, offered)
                finally:
                    body.close()
            except Corrupt as exc:
                return self._bad(obj, str(exc))
            except aws.Cancelled:
                raise
            except Exception as exc:
                if not (aws.is_aws_error(exc) or isinstance(exc, OSError)):
                    raise
                self._counters[metrics.ERRORS] += 1
                self._counters[metrics.RETRIES] += 1
                offered = self._progress_in_object
                log.warning(
                    f"s3://{self.bucket}/{obj.key}: read cut short ({aws.describe(exc)}); "
                    f"reading it again from event {offered}",
                    key="s3-read",
                )
                if self._stop.wait(min(self.tuning.backoff_max_s, self.tuning.backoff_min_s * 2**attempt)):
                    return False
                continue
            if isinstance(result, str):
                return self._bad(obj, result)
            if result:
                self._counters[metrics.ARCHIVE_OBJECTS] += 1
            return result
        return self._bad(obj, f"read cut short {_OBJECT_ATTEMPTS} times")

    def _bad(self, obj: S3Object, why: str) -> bool:
        self._counters[metrics.ARCHIVE_OBJECTS_BAD] += 1
        log.warning(f"s3://{self.bucket}/{obj.key} ({obj.size} bytes) skipped: {why}", key=None)
        return not self._stop.is_set()

    def _events(self, obj: S3Object, body: Any, skip: int) -> bool | str:
        """Hand on the object's events from index `skip`; False when closing, a text when it is not an
        archive object. `_progress_in_object` follows the index, for a read cut short."""
        self._progress_in_object = skip
        found = detect(body, self.tuning.read_chunk)
        if isinstance(found, str):
            return found
        layout, chunks = found
        key_cluster = cluster_in_key(obj.key) or self._cluster
        index = 0
        if layout == "export":
            stream = export_stream(obj.key)
            if self.config.log_stream_prefix and not stream.startswith(self.config.log_stream_prefix):
                return True  # another stream of the log group (authenticator, scheduler, ...)
            for line in export_lines(chunks):
                index += 1
                if index <= skip:
                    continue
                self._progress_in_object = index  # (a cut read raises between events, never inside one)
                if line.ts_ms is None:
                    self._counters[metrics.MALFORMED] += 1
                    log.warning(
                        f"{obj.key}: skipped a line without a timestamp: {line.message!r}", key="no-ts"
                    )
                    continue
                if not self._wanted(line.ts_ms):
                    continue
                if not self._offer(
                    self._unit, key_cluster, line.message, line.ts_ms, (obj.key, index), stream
                ):
                    return False
            return True
        for doc in firehose_documents(chunks):
            if isinstance(doc, Control):
                continue
            if isinstance(doc, Bad):
                self._counters[metrics.MALFORMED] += 1
                log.warning(f"{obj.key}: skipped a document: {doc.reason}", key="s3-bad-document")
                continue
            prefix = self.config.log_stream_prefix
            wanted_stream = not prefix or doc.log_stream.startswith(prefix)
            cluster = cluster_of(doc.log_group) or key_cluster
            for ev in doc.events:
                index += 1
                if index <= skip or not wanted_stream:
                    continue
                self._progress_in_object = index  # (a cut read raises between events, never inside one)
                if ev.event_id is None or ev.message is None:
                    self._counters[metrics.MALFORMED] += 1
                    log.warning(f"{obj.key}: log event without id or message skipped", key="noid")
                    continue
                if not self._wanted(ev.timestamp_ms):
                    continue
                seen = hash((doc.log_group, ev.event_id))  # (an int: a few MB at the window's size)
                if seen in self._seen:
                    self._counters[metrics.DUPLICATES_SUPPRESSED] += 1
                    continue
                self._seen[seen] = None
                if len(self._seen) > _DEDUP_WINDOW:
                    self._seen.popitem(last=False)
                where = (obj.key, index)
                if not self._offer(self._unit, cluster, ev.message, ev.timestamp_ms, where, doc.log_stream):
                    return False
        return True

    def _wanted(self, ts_ms: int) -> bool:
        if ts_ms > self._newest_ms:
            self._newest_ms = ts_ms
        return self.window is None or self.window.contains(ts_ms)

    # -------------------------------------------------------------------------------- Falco's thread

    def _advance(self, state: UnitState, item: HistoryItem) -> UnitState:
        key, index = item.where
        out: UnitState = {"key": key, "n": index}
        if "from" in state:
            out["from"], out["to"] = state["from"], state["to"]
        return out

    def fraction_done(self) -> float | None:
        if self._exhausted:
            return 1.0
        if self.window is None or not self._newest_ms:
            return None
        span = self.window.to_ms - self.window.from_ms
        return max(0.0, min(1.0, (self._newest_ms - self.window.from_ms) / span))

    def _position_text(self) -> str:
        return f"{self._counters[metrics.ARCHIVE_OBJECTS]} objects, at {self._where}"

    def metrics(self) -> dict[str, int | float]:
        return self._base_metrics(self._counters[metrics.CALLS_S3])
