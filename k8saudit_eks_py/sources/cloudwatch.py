"""CloudWatch Logs source: EKS cluster names → a poller thread per source → a bounded queue → next_batch.

The poller pages FilterLogEvents over the ranges window.py plans, drops eventIds it has seen, shapes each
message (truncation.py) and blocks while the queue is full (buffer_size events AND buffer_bytes). A batch
next_batch returned is recorded in the checkpoint when Falco asks for the next one (or at close), so a
restart re-reads from the checkpoint horizon and skips exactly the events Falco finished with. Every
run-time failure is retried with jittered backoff; only open fails.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint import FileCheckpoint, GroupState, MemoryCheckpoint, State
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources import Event
from k8saudit_eks_py.sources.truncation import Rejected, shape
from k8saudit_eks_py.sources.window import Delivered, Scan, Window, WindowParams

__all__ = ["CloudWatchSource", "Tuning", "group_request", "open_cloudwatch", "parse_clusters"]

_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
_CLUSTER_MAP_MIN = 8192


@dataclass(frozen=True, slots=True)
class Tuning:
    """Internals that are not user configuration; tests shrink them."""

    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    page_limit: int | None = None  # None: the service maximum (10,000 events or 1 MB)
    window: WindowParams | None = None  # None: derived from lookback and polling_interval
    preflight_attempts: int = 3
    close_timeout_s: float = 10.0
    log_every_s: float = 30.0


class IncompleteResponse(Exception):
    """A 200 answer without an `events` list (cut short on the way): not the end of the data."""


# ---------------------------------------------------------------------------------------------- open


def parse_clusters(params: str) -> list[str]:
    names = [n.strip() for n in params.split(",")]
    if not params.strip() or any(not n for n in names):
        raise OpenError(
            f"open_params {params!r} has an empty cluster name: write one EKS cluster name, or several "
            "separated by commas (e.g. prod-a,prod-b)"
        )
    for name in names:
        if not _CLUSTER_NAME.fullmatch(name):
            raise OpenError(
                f"{name[:120]!r} is not a valid EKS cluster name (1-100 characters: letters, digits, '-' "
                "and '_', starting with a letter or digit); set open_params to your cluster's name"
            )
    if len(set(names)) != len(names):
        raise OpenError(f"open_params {params!r} names a cluster twice")
    return names


def group_request(log_group: str) -> dict[str, str]:
    """FilterLogEvents arguments selecting a log group given by name or by ARN (cross-account)."""
    if log_group.startswith("arn:"):
        return {"logGroupIdentifier": log_group.removesuffix(":*")}
    return {"logGroupName": log_group}


@dataclass(slots=True)
class _Group:
    index: int
    cluster: str
    log_group: str
    key: str
    request: dict[str, str]
    window: Window
    delivered: Delivered
    scan: Scan | None = None
    token: str | None = None
    due: float = 0.0
    failures: int = 0
    floors: dict[int, int] = field(default_factory=dict)  # scan start → queued events from such scans
    first_delivered: bool = False


def open_cloudwatch(
    params: str,
    config: PluginConfig,
    *,
    tuning: Tuning | None = None,
    clock: Callable[[], float] = time.time,
) -> CloudWatchSource:
    tuning = tuning or Tuning()
    clusters = parse_clusters(params)
    if config.log_group and len(clusters) > 1:
        raise OpenError(
            "log_group is set but open_params names several clusters: log_group overrides the group of a "
            "single cluster; remove it or open one cluster"
        )
    region = aws.resolve_region(config)
    checkpoint: FileCheckpoint | MemoryCheckpoint = (
        FileCheckpoint(config.checkpoint_file) if config.checkpoint_file else MemoryCheckpoint()
    )
    state = checkpoint.load()
    source = CloudWatchSource(clusters, config, region, tuning, checkpoint, state, clock)
    try:
        source._preflight()
    except BaseException:
        source.close(snapshot=False)
        raise
    source._start()
    return source


# ---------------------------------------------------------------------------------------------- log


def _log(message: str, key: str | None = None) -> None:
    """Routine lines are info; keyed lines are the repeated kind (errors, retries): warning, rate-limited."""
    if key is None:
        log.info(message)
    else:
        log.warning(message, key=key)


# ---------------------------------------------------------------------------------------------- source

_COUNTERS = (
    metrics.EVENTS,
    metrics.BYTES,
    metrics.THROTTLES,
    metrics.ERRORS,
    metrics.RETRIES,
    metrics.DUPLICATES_SUPPRESSED,
    metrics.TRUNCATED_RECOVERED,
    metrics.OVERSIZE,
    metrics.MALFORMED,
)


class CloudWatchSource:
    def __init__(
        self,
        clusters: list[str],
        config: PluginConfig,
        region: str,
        tuning: Tuning,
        checkpoint: FileCheckpoint | MemoryCheckpoint,
        state: State,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.region = region
        self.tuning = tuning
        self.default_cluster: str | None = clusters[0] if len(clusters) == 1 else None
        self._clock = clock
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, bytes, str, int, int, int, str | None]] = deque()
        self._queue_bytes = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._checkpoint = checkpoint
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._newest_ingestion_ms = 0
        self._clusters_by_audit_id: dict[str, str] = {}
        # Checkpoint delta of the batch last returned, written when Falco asks for the next one.
        self._pending: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        self._cluster_map_cap = max(_CLUSTER_MAP_MIN, 4 * config.buffer_size)
        self._pacer = aws.CallPacer(config.max_api_calls_per_second, self._stop)
        self._client: Any = None

        params = tuning.window or WindowParams.derive(config.lookback, config.polling_interval)
        start_ms = int(clock() * 1000) - config.shift * 1000
        self._groups: list[_Group] = []
        for index, cluster in enumerate(clusters):
            log_group = config.log_group or f"/aws/eks/{cluster}/cluster"
            key = f"{config.endpoint_url or 'aws'}|{region}|{log_group}"
            saved = state.get(key)
            horizon = saved.horizon if saved else start_ms
            ids = list(saved.ids.items()) if saved else []
            self._groups.append(
                _Group(
                    index,
                    cluster,
                    log_group,
                    key,
                    group_request(log_group),
                    Window(params, horizon, ids),
                    Delivered(horizon, ids),
                )
            )
            origin = "checkpoint restored" if saved else f"no checkpoint, shift {config.shift}s"
            _log(
                f"open: cluster {cluster}: reading {log_group} in {region}, streams "
                f"{config.log_stream_prefix or '(all)'}*, from {_iso(horizon)} ({origin}; "
                f"{len(ids)} delivered eventIds in the window)"
            )
        try:
            self._client = self._new_client()
        except Exception as exc:
            g = self._groups[0]
            text = aws.open_failure(exc, cluster=g.cluster, region=region, log_group=g.log_group)
            raise OpenError(
                text or f"cannot create the CloudWatch Logs client: {aws.describe(exc)}"
            ) from None

    def _new_client(self) -> Any:
        return aws.make_logs_client(
            self.config,
            self.region,
            self._pacer,
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
        )

    # -------------------------------------------------------------------------------- open-time checks

    def _preflight(self) -> None:
        """One small FilterLogEvents per group, so that a missing group, a denied action, bad credentials
        or a bad filter pattern fail open with the fix. Transient failures only get logged."""
        now_ms = int(self._clock() * 1000)
        for g in self._groups:
            for attempt in range(self.tuning.preflight_attempts):
                request = self._request(g, Scan(now_ms - 60_000, now_ms, False), None)
                request["limit"] = 1
                try:
                    self._client.filter_log_events(**request)
                    break
                except aws.Cancelled:
                    raise
                except Exception as exc:
                    if not aws.is_aws_error(exc):
                        raise
                    text = aws.open_failure(exc, cluster=g.cluster, region=self.region, log_group=g.log_group)
                    if text is not None:
                        raise OpenError(text) from None
                    if attempt + 1 == self.tuning.preflight_attempts:
                        _log(f"open: {g.log_group}: {aws.describe(exc)}; starting anyway, will retry")
                    else:
                        self._stop.wait(self._backoff(attempt))

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8saudit-eks-poller", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------------------- poller thread

    def _request(self, g: _Group, scan: Scan, token: str | None) -> dict[str, Any]:
        request: dict[str, Any] = {**g.request, "startTime": scan.start, "endTime": scan.end}
        if self.config.log_stream_prefix:
            request["logStreamNamePrefix"] = self.config.log_stream_prefix
        if self.config.filter_pattern:
            request["filterPattern"] = self.config.filter_pattern
        if token:
            request["nextToken"] = token
        if self.tuning.page_limit:
            request["limit"] = self.tuning.page_limit
        return request

    def _run(self) -> None:
        while not self._stop.is_set():
            g = min(self._groups, key=lambda x: x.due)
            wait = g.due - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            try:
                self._step(g)
            except aws.Cancelled:
                break
            except Exception as exc:  # a bug must not end the stream: report, back off, go on
                self._counters[metrics.ERRORS] += 1
                delay = self._backoff(g.failures)
                g.failures += 1
                g.due = time.monotonic() + delay
                _log(f"internal error polling {g.log_group}: {exc!r}; retry in {delay:.1f}s", "internal")

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.tuning.backoff_max_s, self.tuning.backoff_min_s * 2 ** min(failures, 30))
        return ceiling * random.uniform(0.5, 1.0)

    def _step(self, g: _Group) -> None:
        if g.scan is None:
            g.scan = g.window.plan(int(self._clock() * 1000))
            g.token = None
            with self._cond:
                g.floors.setdefault(g.scan.start, 0)  # pins the checkpoint horizon while the scan runs
        scan = g.scan
        try:
            page = self._client.filter_log_events(**self._request(g, scan, g.token))
            if not isinstance(page.get("events"), list):
                raise IncompleteResponse("200 response without an events list")
        except aws.Cancelled:
            raise
        except Exception as exc:
            self._failed(g, exc)
            return
        if g.failures:
            _log(f"{g.log_group}: FilterLogEvents works again after {g.failures} failures", "recovered")
        g.failures = 0
        self._take(g, scan, page["events"])
        token = page.get("nextToken")
        if token:  # an empty page with a token only means "the service stopped early; continue"
            g.token = token
            g.due = time.monotonic()
            return
        now_ms = int(self._clock() * 1000)
        with self._cond:
            g.window.complete(scan)
            g.scan = None
            self._unpin(g, scan.start)
        caught_up = scan.end >= now_ms - 1000 * max(self.config.polling_interval, 1) and not g.window.behind(
            now_ms
        )
        g.due = time.monotonic() + (self.config.polling_interval if caught_up else 0)

    def _unpin(self, g: _Group, floor: int) -> None:
        count = g.floors.get(floor, 0)
        if count <= 0:
            g.floors.pop(floor, None)
        # else: queued events of that scan keep it pinned until next_batch takes them

    def _take(self, g: _Group, scan: Scan, events: list[dict[str, Any]]) -> None:
        prefix = self.config.log_stream_prefix
        for ev in events:
            if prefix and not str(ev.get("logStreamName", "")).startswith(prefix):
                continue  # some endpoints ignore logStreamNamePrefix
            event_id = ev.get("eventId")
            ts_ms = ev.get("timestamp")
            if not isinstance(event_id, str) or not isinstance(ts_ms, int):
                self._counters[metrics.MALFORMED] += 1
                _log(f"{g.log_group}: event without eventId/timestamp skipped", "noid")
                continue
            if not g.window.accept(event_id, ts_ms):
                self._counters[metrics.DUPLICATES_SUPPRESSED] += 1
                continue
            ingestion = ev.get("ingestionTime")
            if isinstance(ingestion, int) and ingestion > self._newest_ingestion_ms:
                self._newest_ingestion_ms = ingestion
            shaped = shape(str(ev.get("message", "")), ts_ms, self.config.max_event_size)
            if isinstance(shaped, Rejected):
                self._counters[metrics.MALFORMED] += 1
                _log(
                    f"{g.log_group}: skipped a line that is not an audit event ({shaped.reason}), stream "
                    f"{ev.get('logStreamName')}, eventId {event_id}",
                    "malformed",
                )
                continue
            if shaped.status != "ok":
                self._counters[
                    metrics.TRUNCATED_RECOVERED if shaped.status == "truncated" else metrics.OVERSIZE
                ] += 1
                _log(
                    f"{g.log_group}: {shaped.status} event of {shaped.original_size} bytes, auditID "
                    f"{shaped.audit_id}: delivered as its metadata ({len(shaped.payload)} bytes)",
                    "reduced",
                )
            item = (shaped.ts_ns, shaped.payload, event_id, ts_ms, g.index, scan.start, shaped.audit_id)
            if not self._put(g, item):
                raise aws.Cancelled()

    def _put(self, g: _Group, item: tuple[int, bytes, str, int, int, int, str | None]) -> bool:
        size = len(item[1])
        limit_n, limit_b = self.config.buffer_size, self.config.buffer_bytes
        with self._cond:
            while self._queue and (len(self._queue) >= limit_n or self._queue_bytes + size > limit_b):
                if self._stop.is_set():
                    return False
                self._cond.wait(1.0)
            if self._stop.is_set():
                return False
            self._queue.append(item)
            self._queue_bytes += size
            g.floors[item[5]] = g.floors.get(item[5], 0) + 1
            self._cond.notify_all()
        return True

    def _failed(self, g: _Group, exc: BaseException) -> None:
        kind = "incomplete" if isinstance(exc, IncompleteResponse) else aws.classify(exc)
        # A throttle is counted once, as a throttle; `errors` is every other failed call.
        self._counters[metrics.THROTTLES if kind == "throttle" else metrics.ERRORS] += 1
        self._counters[metrics.RETRIES] += 1
        delay = self._backoff(g.failures)
        g.failures += 1
        g.due = time.monotonic() + delay
        hint = ""
        if kind == "credentials":
            hint = "; refreshing credentials"
            try:
                old, self._client = self._client, self._new_client()
                old.close()
            except Exception as rebuild:
                hint = f"; credentials not refreshed yet ({aws.describe(rebuild)})"
        elif kind in ("denied", "not_found", "invalid"):
            fix = aws.open_failure(exc, cluster=g.cluster, region=self.region, log_group=g.log_group)
            hint = f". {fix}" if fix else ""
            if kind == "invalid" and g.token:
                g.token = None  # an expired/invalid nextToken: rescan this range (dedup makes it safe)
        _log(
            f"{g.log_group}: FilterLogEvents failed: {aws.describe(exc)}{hint}; retry {g.failures} in "
            f"{delay:.1f}s",
            f"fail:{g.index}:{kind}",
        )

    # -------------------------------------------------------------------------------- Falco's thread

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        # Falco asks for the next batch only once it has processed the previous one: that is when the
        # previous batch is safe to checkpoint. A kill -9 in the middle of a batch therefore delivers
        # that batch again after the restart instead of losing its unprocessed events.
        self._commit_pending()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while not self._queue:
                if self._closed:
                    return [], True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)  # releases the GIL while waiting
            items = [self._queue.popleft() for _ in range(min(max_events, len(self._queue)))]
            for item in items:
                self._queue_bytes -= len(item[1])
                g = self._groups[item[4]]
                left = g.floors[item[5]] - 1
                if left or (g.scan is not None and g.scan.start == item[5]):
                    g.floors[item[5]] = left
                else:
                    del g.floors[item[5]]
            # Everything not yet returned was read by a scan starting at a pinned floor or later.
            horizons = [min([g.window.horizon, *g.floors]) for g in self._groups]
            if items:
                self._cond.notify_all()
        self._record(items, horizons)
        return [(item[0], item[1]) for item in items], False

    def _record(
        self, items: list[tuple[int, bytes, str, int, int, int, str | None]], horizons: list[int]
    ) -> None:
        delta: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        for g, horizon in zip(self._groups, horizons, strict=True):
            if g.delivered.advance(horizon):
                delta[g.key] = (g.delivered.horizon, [])
        multi = self.default_cluster is None
        nbytes = 0
        for _ts, payload, event_id, ts_ms, index, _floor, audit_id in items:
            g = self._groups[index]
            g.delivered.add(event_id, ts_ms)
            delta.setdefault(g.key, (g.delivered.horizon, []))[1].append((event_id, ts_ms))
            nbytes += len(payload)
            if multi and audit_id:
                self._remember_cluster(audit_id, g.cluster)
            if not g.first_delivered:
                g.first_delivered = True
                _log(f"first event delivered from cluster {g.cluster} ({g.log_group})")
        self._counters[metrics.EVENTS] += len(items)
        self._counters[metrics.BYTES] += nbytes
        self._pending = delta

    def _commit_pending(self) -> None:
        delta, self._pending = self._pending, {}
        if not delta:
            return
        try:
            self._checkpoint.record(delta)
            if self._checkpoint.needs_compaction():
                self._checkpoint.snapshot(self._state())
        except OSError as exc:  # delivery goes on; a restart may then repeat these events
            self._counters[metrics.ERRORS] += 1
            _log(f"checkpoint write failed: {exc}", "checkpoint")

    def _remember_cluster(self, audit_id: str, cluster: str) -> None:
        m = self._clusters_by_audit_id
        m.pop(audit_id, None)
        m[audit_id] = cluster
        if len(m) > self._cluster_map_cap:
            del m[next(iter(m))]

    def cluster_for(self, audit_id: str) -> str | None:
        """The cluster of a recently delivered event (for ka.cluster.name without the EKS annotation)."""
        if self.default_cluster is not None:
            return self.default_cluster
        return self._clusters_by_audit_id.get(audit_id)

    def _state(self) -> State:
        return {g.key: GroupState(g.delivered.horizon, g.delivered.ids) for g in self._groups}

    def progress(self) -> tuple[int, str]:
        lag = self._lag()
        return 0, f"{self._counters[metrics.EVENTS]} events, lag {lag:.0f}s" if lag >= 0 else "waiting"

    def _lag(self) -> float:
        if not self._newest_ingestion_ms:
            return -1.0
        return max(0.0, self._clock() - self._newest_ingestion_ms / 1000)

    def metrics(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self._counters)
        out[metrics.API_CALLS] = self._pacer.calls
        out[metrics.CHECKPOINT_WRITES] = self._checkpoint.writes
        out[metrics.LAG_SECONDS] = max(self._lag(), 0.0)
        out[metrics.QUEUE_DEPTH] = len(self._queue)
        out[metrics.QUEUE_BYTES] = self._queue_bytes
        return out

    def close(self, snapshot: bool = True) -> None:
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(self.tuning.close_timeout_s)
            if thread.is_alive():
                _log("poller thread still in an HTTP call at close; it exits when the call returns")
        try:
            if snapshot:  # Falco closes after processing everything returned: all of it is delivered
                self._pending = {}
                self._checkpoint.snapshot(self._state())
        except OSError as exc:
            _log(f"checkpoint write at close failed: {exc}")
        finally:
            self._checkpoint.close()
            if self._client is not None:
                self._client.close()
        if snapshot:
            _log(f"closed after {self._counters[metrics.EVENTS]} events")


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
