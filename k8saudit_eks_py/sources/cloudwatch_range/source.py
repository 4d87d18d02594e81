"""The range source: open_params `CLUSTER[,CLUSTER...]?from=TIME[&to=TIME]` → per log group, per audit
stream (by name), FilterLogEvents of [from, to) page by page → the bounded queue → EOF at the end.

A log group's checkpoint is the stream being read, its newest delivered timestamp and the eventIds
delivered at that millisecond: a restart skips the streams before it, reads that stream again from that
millisecond (dropping what was delivered) and the streams after it whole. Calls are paced per operation
by max_api_calls_per_second, like poll mode.
"""

from __future__ import annotations

import time
from typing import Any

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.cloudwatch.source import parse_clusters
from k8saudit_eks_py.sources.cloudwatch.units import group_request
from k8saudit_eks_py.sources.cloudwatch_range.streams import StreamSpan, overlapping
from k8saudit_eks_py.sources.history.feed import HistoryItem, HistorySource
from k8saudit_eks_py.sources.history.retry import Retrier, Tuning
from k8saudit_eks_py.sources.history.window import Window, notes, parse_query, split_params

__all__ = ["RangeSource", "open_range"]

_OPERATIONS = {
    "FilterLogEvents": metrics.CALLS_FILTER_LOG_EVENTS,
    "DescribeLogStreams": metrics.CALLS_DESCRIBE_LOG_STREAMS,
}


def open_range(
    params: str, config: PluginConfig, *, tuning: Tuning | None = None, now_ms: int | None = None
) -> RangeSource:
    base, query = split_params(params)
    if "cluster" in query:
        raise OpenError(f"open_params {params!r}: cluster= is for s3:// archives; name the clusters first")
    refs = parse_clusters(base)
    by_arn = [r.qualified for r in refs if r.by_arn]
    if by_arn:
        raise OpenError(
            f"open_params {params!r}: a time range reads clusters by name, in the configured account and "
            f"Region; name {', '.join(by_arn)} by its name, with region (and role_arn) set for its account"
        )
    clusters = [r.name for r in refs]
    if config.log_group and len(clusters) > 1:
        raise OpenError(
            "log_group is set but open_params names several clusters: remove it or open one cluster"
        )
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window = parse_query(query, now, need_from=True)
    assert window is not None
    region = aws.resolve_region(config)
    for note in notes(window, now, config.coordination_table):
        log.warning(f"open: {note}")
    store: CheckpointStore = FileStore(config.checkpoint_file) if config.checkpoint_file else MemoryStore()
    groups = [(c, config.log_group or f"/aws/eks/{c}/cluster") for c in clusters]
    source = RangeSource(config, region, store, window, groups, tuning or Tuning())
    try:
        source.check_groups()
    except BaseException:
        source.close(commit=False)
        raise
    source.start()
    return source


class _Group:
    def __init__(self, key: str, cluster: str, log_group: str, window: Window, state: UnitState) -> None:
        self.key = key
        self.cluster = cluster
        self.log_group = log_group
        self.window = window
        self.state = state
        self.streams: list[StreamSpan] = []


class RangeSource(HistorySource):
    def __init__(
        self,
        config: PluginConfig,
        region: str,
        store: CheckpointStore,
        window: Window,
        groups: list[tuple[str, str]],
        tuning: Tuning,
    ) -> None:
        super().__init__(config, store, groups[0][0] if len(groups) == 1 else None, (), tuning)
        self.region = region
        self._pacer = aws.CallPacer(config.max_api_calls_per_second, self._stop)
        self._client = self._new_client()
        self._retry = Retrier(tuning, self._counters, self._stop, self._pacer, self._renew_client)
        self._groups: list[_Group] = []
        for cluster, log_group in groups:
            key = f"range|{config.endpoint_url or 'aws'}|{region}|{log_group}|{window.text}"
            state = store.load(key)
            unit_window = window
            if state is not None and isinstance(state.get("from"), int) and isinstance(state.get("to"), int):
                unit_window = Window(state["from"], state["to"], window.text)  # as first opened
            else:
                state = {"from": window.from_ms, "to": window.to_ms}
            self._groups.append(_Group(key, cluster, log_group, unit_window, state))
            self._states[key] = state
        self._total_ms = 0
        self._done_ms = 0
        self._where = "listing streams"

    def _new_client(self) -> Any:
        return aws.make_logs_client(
            self.config,
            self.region,
            self._pacer,
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
        )

    def check_groups(self) -> None:
        """One DescribeLogStreams per log group, so a missing group, a denied action or bad credentials
        fail open with the fix; a transient failure is only logged (the reader retries)."""
        for group in self._groups:
            try:
                self._client.describe_log_streams(**group_request(group.log_group), limit=1)
            except Exception as exc:
                if not aws.is_aws_error(exc):
                    raise
                text = aws.open_failure(
                    exc, cluster=group.cluster, region=self.region, log_group=group.log_group
                )
                if text is not None:
                    raise OpenError(text) from None
                log.warning(f"open: {group.log_group}: {aws.describe(exc)}; starting anyway, will retry")
            state = group.state
            resumed = f", resuming at stream {state['stream']}" if state.get("stream") else ""
            already = state.get("done")
            log.info(
                f"open: cluster {group.cluster}: reading {group.log_group} in {self.region}, "
                f"{group.window.describe()}"
                + (
                    ": already read to its end by an earlier run (checkpoint_file); remove that file, or "
                    "change from/to, to read it again"
                    if already
                    else resumed
                )
            )

    # -------------------------------------------------------------------------------- reader thread

    def _read(self) -> None:
        todo = [g for g in self._groups if not g.state.get("done")]
        for group in todo:
            self._where = f"listing the streams of {group.log_group}"

            def describe(kwargs: dict[str, Any], group: _Group = group) -> dict[str, Any]:
                return self._retry.call(
                    "DescribeLogStreams",
                    group.log_group,
                    lambda: self._client.describe_log_streams(**kwargs),
                    complete=lambda page: "logStreams" in page,
                )

            spans = overlapping(
                describe, group_request(group.log_group), self.config.log_stream_prefix, group.window
            )
            group.streams = sorted(spans, key=lambda s: s.name)
            self._total_ms += sum(s.span_ms for s in group.streams)
        for group in todo:
            for span in group.streams:
                if not self._read_stream(group, span):
                    return
            count, window = len(group.streams), group.window.describe()
            log.info(f"{group.log_group}: {count} stream{'s' if count != 1 else ''} of {window} read")

    def _read_stream(self, group: _Group, span: StreamSpan) -> bool:
        """Every event of the stream in the window, from the checkpoint on; False when closing."""
        state = group.state
        resume_at = state.get("stream")
        if isinstance(resume_at, str) and span.name < resume_at:
            self._done_ms += span.span_ms
            return True
        skip: set[str] = set()
        start = group.window.from_ms
        if span.name == resume_at and isinstance(state.get("ts"), int):
            start, skip = state["ts"], set(state.get("ids", []))
        self._where = f"{group.log_group} stream {span.name}"
        kwargs: dict[str, Any] = {
            **group_request(group.log_group),
            "logStreamNames": [span.name],
            "startTime": start,
            "endTime": group.window.to_ms - 1,  # (inclusive)
            **({"filterPattern": f} if (f := self.config.filter_pattern) else {}),
            **({"limit": n} if (n := self.tuning.page_limit) else {}),
        }
        counted = 0  # ms of the span counted as done so far
        while True:
            page = self._retry.call(
                "FilterLogEvents",
                group.log_group,
                lambda: self._client.filter_log_events(**kwargs),
                complete=lambda page: "events" in page,
            )
            for ev in page.get("events", []):
                ts, event_id = ev.get("timestamp"), ev.get("eventId")
                if not isinstance(ts, int) or not isinstance(event_id, str) or not group.window.contains(ts):
                    continue
                if ts == start and event_id in skip:
                    self._counters[metrics.DUPLICATES_SUPPRESSED] += 1
                    continue
                now_done = max(0, min(ts, span.end_ms) - span.start_ms)
                self._done_ms += max(0, now_done - counted)
                counted = max(counted, now_done)
                where = (span.name, ts, event_id)
                if not self._offer(
                    group.key, group.cluster, str(ev.get("message", "")), ts, where, span.name
                ):
                    return False
            token = page.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        self._done_ms += span.span_ms - counted
        return True

    def _advance(self, state: UnitState, item: HistoryItem) -> UnitState:
        stream, ts, event_id = item.where
        if state.get("stream") == stream and state.get("ts") == ts:
            ids = [*state.get("ids", []), event_id]
        else:
            ids = [event_id]
        return {"from": state["from"], "to": state["to"], "stream": stream, "ts": ts, "ids": ids}

    def fraction_done(self) -> float | None:
        if not self._total_ms:
            return None if not self._exhausted else 1.0
        return min(1.0, self._done_ms / self._total_ms)

    def _position_text(self) -> str:
        return self._where

    def metrics(self) -> dict[str, int | float]:
        out = self._base_metrics(self._pacer.calls)
        for operation, count in list(self._pacer.calls_by_operation.items()):
            name = _OPERATIONS.get(operation)
            if name is not None:
                out[name] = count
        return out
