"""CloudWatch Logs source: EKS cluster names → one work unit per log group → a poller thread → a bounded
queue → next_batch.

A poll of a unit is one FilterLogEvents over the audit prefix from the group's common position (new and
revived streams show up in it), plus a read by logStreamNames for a stream that lags, each from its own
position (streams.py plans them). Listing the streams (DescribeLogStreams: the most recently written every
`list_every_s`, all of them every `full_list_every_s` and at start) runs beside the polls, for streams
whose events all arrive behind the common position. Each operation is paced against its own quota
(aws.CallPacer); the poller picks, among the calls whose slot is free, the one due the longest (oldest
first: no unit starves), and a unit whose polls find nothing is polled less often (up to
`quiet_max_polls` × polling_interval), so quiet groups leave the calls to busy ones. How far behind each
group is gets reported (metrics poll_lag_seconds, groups_behind; a rate-limited log line).

Events are shaped (truncation.py) and queued in the order read; the poller blocks while the queue is full
(buffer_size events AND buffer_bytes). The units a batch touched are saved to the checkpoint store when
Falco asks for the next batch (or at close), so a restart resumes each stream right after the events Falco
finished with. Every run-time failure is retried with jittered backoff; only open fails.

Units can be added and removed while the source runs (`add_unit`, `remove_unit`): open() adds one per
cluster; with coordination_table set, open() adds none and the log groups follow this replica's leases
(unit_leases.py): the lease table is the checkpoint store, and a unit's events reach Falco only while
its lease is safely held.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.aws_setup import poll_capacity
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources import Event
from k8saudit_eks_py.sources.streams import GroupPositions, Read, ReadParams
from k8saudit_eks_py.sources.truncation import Rejected, shape
from k8saudit_eks_py.sources.unit_leases import LogGroup, UnitLeases

__all__ = ["CloudWatchSource", "Tuning", "group_request", "open_cloudwatch", "parse_clusters", "unit_key"]

_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
_CLUSTER_MAP_MIN = 8192
_LIST_PAGE = 50  # DescribeLogStreams returns at most 50 streams per page
_OPERATION_METRICS = {
    "FilterLogEvents": metrics.CALLS_FILTER_LOG_EVENTS,
    "DescribeLogStreams": metrics.CALLS_DESCRIBE_LOG_STREAMS,
}


@dataclass(frozen=True, slots=True)
class Tuning:
    """Internals that are not user configuration; tests shrink them."""

    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    page_limit: int | None = None  # None: the service maximum (10,000 events or 1 MB)
    reads: ReadParams | None = None  # None: derived from lookback and polling_interval
    full_list_every_s: float = 300.0  # complete stream listing (the safety net for lastEventTimestamp)
    list_every_s: float = 60.0  # listing of the most recently written streams (streams arriving late)
    quiet_max_polls: int = 6  # a group whose polls find nothing is polled at most this much less often
    preflight_attempts: int = 3
    close_timeout_s: float = 10.0
    log_every_s: float = 30.0


class IncompleteResponse(Exception):
    """A 200 answer without its list (cut short on the way): not the end of the data."""


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
    """Arguments selecting a log group given by name or by ARN (cross-account)."""
    if log_group.startswith("arn:"):
        return {"logGroupIdentifier": log_group.removesuffix(":*")}
    return {"logGroupName": log_group}


def unit_key(config: PluginConfig, region: str, log_group: str) -> str:
    """The checkpoint key of a log group (the same across restarts and replicas)."""
    return f"{config.endpoint_url or 'aws'}|{region}|{log_group}"


def open_cloudwatch(
    params: str,
    config: PluginConfig,
    *,
    tuning: Tuning | None = None,
    clock: Callable[[], float] = time.time,
    store: CheckpointStore | None = None,
) -> CloudWatchSource:
    tuning = tuning or Tuning()
    clusters = parse_clusters(params)
    if config.log_group and len(clusters) > 1:
        raise OpenError(
            "log_group is set but open_params names several clusters: log_group overrides the group of a "
            "single cluster; remove it or open one cluster"
        )
    region = aws.resolve_region(config)
    if store is None:  # with coordination_table the lease table takes its place (follow_leases)
        use_file = config.checkpoint_file and not config.coordination_table
        store = FileStore(config.checkpoint_file) if use_file else MemoryStore()
    groups = [(cluster, config.log_group or f"/aws/eks/{cluster}/cluster") for cluster in clusters]
    source = CloudWatchSource(
        config, region, tuning, store, clock, clusters[0] if len(clusters) == 1 else None
    )
    try:
        for cluster, log_group in groups:
            source.check_unit(cluster, log_group)
        if config.coordination_table:
            # The lease table replaces the store; units arrive as leases are acquired (next_batch).
            leased = {unit_key(config, region, g): LogGroup(c, g) for c, g in groups}
            source.follow_leases(UnitLeases.start(config, region, leased, source.origin_state))
        else:
            for cluster, log_group in groups:
                key = unit_key(config, region, log_group)
                source.add_unit(key, cluster, log_group, store.load(key))
    except BaseException:
        source.close(snapshot=False)
        raise
    source.tell_capacity(len(groups))
    source.start()
    return source


# ---------------------------------------------------------------------------------------------- log


def _log(message: str, key: str | None = None) -> None:
    """Routine lines are info; keyed lines are the repeated kind (errors, retries): warning, rate-limited."""
    if key is None:
        log.info(message)
    else:
        log.warning(message, key=key)


# ---------------------------------------------------------------------------------------------- units


class _Queued(NamedTuple):
    ts_ns: int
    payload: bytes
    unit: str
    stream: str
    event_id: str
    ts_ms: int
    audit_id: str | None


@dataclass(slots=True)
class _Step:
    """One paginated API call sequence: list recent streams, list all streams (the listing track), or a
    read of a poll (the poll track)."""

    kind: str  # "recent" | "all" | "read"
    read: Read | None = None
    token: str | None = None
    names: list[str] = field(default_factory=list)  # "all": names listed so far
    found: Counter[str] = field(default_factory=Counter)  # "read": new events per stream


@dataclass(slots=True)
class _Unit:
    key: str
    cluster: str
    log_group: str
    request: dict[str, str]
    positions: GroupPositions
    steps: deque[_Step] = field(default_factory=deque)  # the reads of the current poll
    listing: _Step | None = None  # the stream listing in progress
    poll_ms: int = 0  # now_ms when the current poll began
    poll_began: float = 0.0  # monotonic, same moment
    due: float = 0.0  # next call of the poll track
    list_due: float = 0.0  # next call of the listing track
    failures: int = 0
    next_full_list: float = 0.0
    # monotonic start of the last poll that finished: the group is read up to it
    read_up_to: float = field(default_factory=time.monotonic)
    interval: float = 0.0  # seconds between polls now (longer while the group is quiet)
    poll_found: int = 0  # new events the current poll found
    first_delivered: bool = False
    removed: bool = False


# ---------------------------------------------------------------------------------------------- source

_COUNTERS = (
    metrics.EVENTS,
    metrics.BYTES,
    metrics.EVENTS_READ,
    metrics.THROTTLES,
    metrics.ERRORS,
    metrics.RETRIES,
    metrics.DUPLICATES_SUPPRESSED,
    metrics.TRUNCATED_RECOVERED,
    metrics.OVERSIZE,
    metrics.MALFORMED,
    metrics.POLLS,
)


class CloudWatchSource:
    def __init__(
        self,
        config: PluginConfig,
        region: str,
        tuning: Tuning,
        store: CheckpointStore,
        clock: Callable[[], float],
        default_cluster: str | None,
    ) -> None:
        self.config = config
        self.region = region
        self.tuning = tuning
        self.default_cluster = default_cluster
        self._params = tuning.reads or ReadParams.derive(config.lookback, config.polling_interval)
        self._clock = clock
        self._stop = threading.Event()
        self._cond = threading.Condition()  # guards the queue, the units and their positions
        self._queue: deque[_Queued] = deque()
        self._queue_bytes = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._store = store
        self._leases: UnitLeases | None = None
        self._units: dict[str, _Unit] = {}
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._newest_ingestion_ms = 0
        self._clusters_by_audit_id: dict[str, str] = {}
        # States of the units the batch last returned touched, saved when Falco asks for the next one.
        self._pending: dict[str, UnitState] = {}
        self._cluster_map_cap = max(_CLUSTER_MAP_MIN, 4 * config.buffer_size)
        self._pacer = aws.CallPacer(config.max_api_calls_per_second, self._stop)
        self._groups_behind = 0
        self._next_lag_check = 0.0
        try:
            self._client: Any = self._new_client()
        except Exception as exc:
            self._client = None
            group = config.log_group or f"/aws/eks/{default_cluster or '<cluster>'}/cluster"
            text = aws.open_failure(exc, cluster=default_cluster or "", region=region, log_group=group)
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

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -------------------------------------------------------------------------------- units

    def check_unit(self, cluster: str, log_group: str) -> None:
        """One FilterLogEvents and one DescribeLogStreams of the group, so that a missing group, a denied
        action, bad credentials or a bad filter pattern fail open with the fix. Transient failures only
        get logged."""
        now_ms = self._now_ms()
        request = group_request(log_group)
        calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
            (
                self._client.filter_log_events,
                {
                    **request,
                    "startTime": now_ms - 60_000,
                    "endTime": now_ms,
                    "limit": 1,
                    **({"logStreamNamePrefix": p} if (p := self.config.log_stream_prefix) else {}),
                    **({"filterPattern": f} if (f := self.config.filter_pattern) else {}),
                },
            ),
            (self._client.describe_log_streams, {**request, "limit": 1}),
        ]
        for call, kwargs in calls:
            for attempt in range(self.tuning.preflight_attempts):
                try:
                    call(**kwargs)
                    break
                except aws.Cancelled:
                    raise
                except Exception as exc:
                    if not aws.is_aws_error(exc):
                        raise
                    text = aws.open_failure(exc, cluster=cluster, region=self.region, log_group=log_group)
                    if text is not None:
                        raise OpenError(text) from None
                    if attempt + 1 == self.tuning.preflight_attempts:
                        _log(f"open: {log_group}: {aws.describe(exc)}; starting anyway, will retry")
                    else:
                        self._stop.wait(self._backoff(attempt))

    def origin_state(self, key: str) -> UnitState:
        """Where a log group never read before starts: now - shift (called by the lease thread)."""
        return GroupPositions.start_state(self._now_ms(), self.config.shift * 1000)

    def add_unit(self, key: str, cluster: str, log_group: str, state: UnitState | None) -> None:
        """Start reading a log group from a saved state (None: from now − shift). A state this release
        cannot read (written by another release, or damaged) must not stop Falco: one warning names what
        is dropped, and the group is read from now − shift."""
        if state is not None:
            try:
                GroupPositions.check_state(state)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    f"the checkpoint of {log_group} ({key}) cannot be read by this release ({exc}); "
                    f"dropped it ({_summary(state)}); reading {log_group} from now - shift instead",
                    key=f"bad-checkpoint:{key}",
                )
                state = None
        positions = GroupPositions(self._params, state, self._now_ms(), self.config.shift * 1000)
        unit = _Unit(key, cluster, log_group, group_request(log_group), positions, due=time.monotonic())
        with self._cond:
            if key in self._units:
                raise ValueError(f"unit {key} is already being read")
            self._units[key] = unit
            self._cond.notify_all()
        if state is None:
            origin = f"no checkpoint, shift {self.config.shift}s"
        elif state.get("streams"):
            origin = f"checkpoint restored, {len(positions.streams)} streams"
        else:
            origin = "no events delivered yet: from the origin recorded in its lease"
        _log(
            f"open: cluster {cluster}: reading {log_group} in {self.region}, streams "
            f"{self.config.log_stream_prefix or '(all)'}*, new streams from "
            f"{_iso(positions.new_floor())} ({origin})"
        )

    def tell_capacity(self, groups: int) -> None:
        """Warn when `groups` log groups cannot all be polled often enough under the cap."""
        problem = poll_capacity.capacity_problem(
            groups, self.config.max_api_calls_per_second, self.config.polling_interval
        )
        if problem:
            log.warning(f"open: {problem}")

    def remove_unit(self, key: str) -> None:
        """Stop reading a unit now: its queued events that next_batch has not returned are dropped (the
        next reader of the unit finds them again from its saved state)."""
        with self._cond:
            unit = self._units.pop(key, None)
            if unit is None:
                return
            unit.removed = True
            kept = deque(item for item in self._queue if item.unit != key)
            self._queue_bytes = sum(len(item.payload) for item in kept)
            self._queue = kept
            self._pending.pop(key, None)
            self._cond.notify_all()

    def units(self) -> list[str]:
        with self._cond:
            return list(self._units)

    def follow_leases(self, leases: UnitLeases) -> None:
        """Read the log groups this replica leases; checkpoints go to the lease table (fenced writes)."""
        self._store.close()
        self._store = leases.coordinator.store
        self._leases = leases

    # -------------------------------------------------------------------------------- poller thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8saudit-eks-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                job = self._next_job()
            if job is None:
                self._stop.wait(0.2)
                continue
            at, unit, listing = job
            wait = at - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.5))  # short: a unit added meanwhile may be due sooner
                continue
            try:
                if listing:
                    self._list_step(unit)
                else:
                    self._step(unit)
            except aws.Cancelled:
                break
            except Exception as exc:  # a bug must not end the stream: report, back off, go on
                self._counters[metrics.ERRORS] += 1
                delay = self._backoff(unit.failures)
                unit.failures += 1
                unit.due = unit.list_due = time.monotonic() + delay
                unit.steps.clear()
                unit.listing = None
                _log(f"internal error polling {unit.log_group}: {exc!r}; retry in {delay:.1f}s", "internal")
            self._report_lag()

    def _next_job(self) -> tuple[float, _Unit, bool] | None:
        """The call to make next: the soonest one whose operation's slot is free, and among those the one
        due the longest (the pacer's slots, not the order of units, decide when a call goes)."""
        reads = self._pacer.free_at("FilterLogEvents")
        lists = self._pacer.free_at("DescribeLogStreams")
        best: tuple[float, float, _Unit, bool] | None = None
        for u in self._units.values():
            for due, free, listing in ((u.due, reads, False), (u.list_due, lists, True)):
                key = (max(due, free), due, u, listing)
                if best is None or key[:2] < best[:2]:
                    best = key
        return None if best is None else (best[0], best[2], best[3])

    def _report_lag(self) -> None:
        """Once a second: count the groups polled later than their interval allows; name them in a
        rate-limited line (they are waiting for their share of the calls)."""
        now = time.monotonic()
        if now < self._next_lag_check:
            return
        self._next_lag_check = now + 1.0
        poll = float(max(self.config.polling_interval, 1))
        with self._cond:
            behind = sorted(
                ((now - u.read_up_to, u) for u in self._units.values() if self._late(u, now, poll)),
                key=lambda pair: pair[0],
                reverse=True,
            )
        self._groups_behind = len(behind)
        if behind:
            worst = ", ".join(f"{u.log_group} {lag:.0f}s" for lag, u in behind[:3])
            hint = poll_capacity.capacity_problem(
                len(self._units), self.config.max_api_calls_per_second, poll
            )
            _log(
                f"poll mode behind: {len(behind)} of {len(self._units)} log groups last read up to more "
                f"than {3 * poll:.0f}s ago (worst: {worst}); "
                + (hint or "the FilterLogEvents cap is spent on catching up (backlog or failures)"),
                "behind",
            )

    def _late(self, u: _Unit, now: float, poll: float) -> bool:
        return now - u.read_up_to > max(u.interval, poll) + 2 * poll

    def group_lags(self) -> dict[str, float]:
        """Seconds since each log group was last read up to now (its poll lag)."""
        now = time.monotonic()
        with self._cond:
            return {u.log_group: now - u.read_up_to for u in self._units.values()}

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.tuning.backoff_max_s, self.tuning.backoff_min_s * 2 ** min(failures, 30))
        return ceiling * random.uniform(0.5, 1.0)

    def _call(self, u: _Unit, step: _Step) -> dict[str, Any]:
        request: dict[str, Any] = dict(u.request)
        if step.token:
            request["nextToken"] = step.token
        if step.kind == "read":
            read = step.read
            assert read is not None
            request.update(startTime=read.start, endTime=read.end)
            if not read.prefix:
                request["logStreamNames"] = list(read.names)
            elif self.config.log_stream_prefix:
                request["logStreamNamePrefix"] = self.config.log_stream_prefix
            if self.config.filter_pattern:
                request["filterPattern"] = self.config.filter_pattern
            if self.tuning.page_limit:
                request["limit"] = self.tuning.page_limit
            page = self._client.filter_log_events(**request)
            if not isinstance(page.get("events"), list):
                raise IncompleteResponse("200 response without an events list")
            return dict(page)
        request["limit"] = _LIST_PAGE
        if step.kind == "recent":  # orderBy LastEventTime cannot take a prefix: names are filtered here
            request.update(orderBy="LastEventTime", descending=True)
        else:
            request["orderBy"] = "LogStreamName"
            if self.config.log_stream_prefix:
                request["logStreamNamePrefix"] = self.config.log_stream_prefix
        page = self._client.describe_log_streams(**request)
        if not isinstance(page.get("logStreams"), list):
            raise IncompleteResponse("200 response without a logStreams list")
        return dict(page)

    def _attempt(self, u: _Unit, step: _Step) -> dict[str, Any] | None:
        """One call of `step`; None when it failed (backed off) or the unit went away meanwhile."""
        try:
            page = self._call(u, step)
        except aws.Cancelled:
            raise
        except Exception as exc:
            self._failed(u, step, exc)
            return None
        if u.removed:
            return None
        if u.failures:
            _log(f"{u.log_group}: CloudWatch Logs calls work again after {u.failures} failures", "recovered")
        u.failures = 0
        return page

    def _step(self, u: _Unit) -> None:
        """One FilterLogEvents call of unit `u`'s current poll."""
        if not u.steps:
            u.poll_ms = self._now_ms()
            u.poll_began = time.monotonic()
            u.poll_found = 0
            with self._cond:
                u.steps.extend(_Step("read", read) for read in u.positions.plan(u.poll_ms, discover=True))
        step = u.steps[0]
        page = self._attempt(u, step)
        if page is None:
            return
        self._take(u, step, page["events"])
        token = page.get("nextToken")
        if token:  # an empty page with a token only means "the service stopped early; continue"
            step.token = token
            u.due = time.monotonic()
            return
        u.steps.popleft()
        with self._cond:
            assert step.read is not None
            u.positions.finished(step.read, step.found)
            u.poll_found += sum(step.found.values())
            if u.steps:
                u.due = time.monotonic()
                return
            u.positions.followed(u.poll_ms)
            u.read_up_to = u.poll_began
            self._counters[metrics.POLLS] += 1
            poll = float(self.config.polling_interval)
            if u.poll_found or u.positions.wants_read():
                u.interval = poll
            else:  # quiet: back off, so that busy groups get the calls
                u.interval = min(max(u.interval, poll) * 2, poll * self.tuning.quiet_max_polls)
        u.due = max(time.monotonic(), u.poll_began + u.interval)

    def _list_step(self, u: _Unit) -> None:
        """One DescribeLogStreams call of unit `u`'s listing track."""
        if u.listing is None:
            now = time.monotonic()
            if now >= u.next_full_list:
                u.next_full_list = now + self.tuning.full_list_every_s
                u.listing = _Step("all")
            else:
                u.listing = _Step("recent")
        step = u.listing
        page = self._attempt(u, step)
        if page is None:
            return
        self._listed(u, step, page["logStreams"])
        token = page.get("nextToken")
        # The recent listing reads only its first page: the most recently written streams.
        if token and step.kind != "recent":
            step.token = token
            u.list_due = time.monotonic()
            return
        u.listing = None
        with self._cond:
            if step.kind == "all":
                u.positions.listed_completely(step.names)
            moved = u.positions.wants_read()
        now = time.monotonic()
        u.list_due = now + self.tuning.list_every_s
        if moved and not u.steps and u.interval > self.config.polling_interval:
            u.due = min(u.due, now)  # a quiet group with a stream that moved: poll it now

    def _listed(self, u: _Unit, step: _Step, streams: list[dict[str, Any]]) -> None:
        prefix = self.config.log_stream_prefix
        with self._cond:
            for entry in streams:
                name = entry.get("logStreamName")
                if not isinstance(name, str) or not name.startswith(prefix):
                    continue
                last = entry.get("lastEventTimestamp")
                u.positions.found(name, last if isinstance(last, int) else None)
                step.names.append(name)

    def _take(self, u: _Unit, step: _Step, events: list[dict[str, Any]]) -> None:
        self._counters[metrics.EVENTS_READ] += len(events)
        for ev in events:
            stream = ev.get("logStreamName")
            event_id = ev.get("eventId")
            ts_ms = ev.get("timestamp")
            if not isinstance(event_id, str) or not isinstance(ts_ms, int) or not isinstance(stream, str):
                self._counters[metrics.MALFORMED] += 1
                _log(f"{u.log_group}: event without eventId/timestamp/logStreamName skipped", "noid")
                continue
            if not stream.startswith(self.config.log_stream_prefix):
                continue  # another kind of stream (a prefix read where the prefix is not applied)
            with self._cond:
                assert step.read is not None
                new = u.positions.take(step.read, stream, event_id, ts_ms)
            if not new:
                self._counters[metrics.DUPLICATES_SUPPRESSED] += 1
                continue
            step.found[stream] += 1
            ingestion = ev.get("ingestionTime")
            if isinstance(ingestion, int) and ingestion > self._newest_ingestion_ms:
                self._newest_ingestion_ms = ingestion
            shaped = shape(str(ev.get("message", "")), ts_ms, self.config.max_event_size)
            if isinstance(shaped, Rejected):
                self._counters[metrics.MALFORMED] += 1
                _log(
                    f"{u.log_group}: skipped a line that is not an audit event ({shaped.reason}), stream "
                    f"{stream}, eventId {event_id}",
                    "malformed",
                )
                continue
            if shaped.status != "ok":
                self._counters[
                    metrics.TRUNCATED_RECOVERED if shaped.status == "truncated" else metrics.OVERSIZE
                ] += 1
                _log(
                    f"{u.log_group}: {shaped.status} event of {shaped.original_size} bytes, auditID "
                    f"{shaped.audit_id}: delivered as its metadata ({len(shaped.payload)} bytes)",
                    "reduced",
                )
            item = _Queued(shaped.ts_ns, shaped.payload, u.key, stream, event_id, ts_ms, shaped.audit_id)
            if not self._put(u, item):
                raise aws.Cancelled()

    def _put(self, u: _Unit, item: _Queued) -> bool:
        size = len(item.payload)
        limit_n, limit_b = self.config.buffer_size, self.config.buffer_bytes
        with self._cond:
            while self._queue and (len(self._queue) >= limit_n or self._queue_bytes + size > limit_b):
                if self._stop.is_set():
                    return False
                self._cond.wait(1.0)
            if self._stop.is_set():
                return False
            if u.removed:
                return True  # dropped with its unit
            self._queue.append(item)
            self._queue_bytes += size
            u.positions.streams[item.stream].queued += 1
            self._cond.notify_all()
        return True

    def _failed(self, u: _Unit, step: _Step, exc: BaseException) -> None:
        operation = "FilterLogEvents" if step.kind == "read" else "DescribeLogStreams"
        kind = "incomplete" if isinstance(exc, IncompleteResponse) else aws.classify(exc)
        # A throttle is counted once, as a throttle; `errors` is every other failed call.
        self._counters[metrics.THROTTLES if kind == "throttle" else metrics.ERRORS] += 1
        self._counters[metrics.RETRIES] += 1
        delay = self._backoff(u.failures)
        u.failures += 1
        if step.kind == "read":
            u.due = time.monotonic() + delay
        else:
            u.list_due = time.monotonic() + delay
        hint = ""
        if kind == "credentials":
            hint = "; refreshing credentials"
            try:
                old, self._client = self._client, self._new_client()
                old.close()
            except Exception as rebuild:
                hint = f"; credentials not refreshed yet ({aws.describe(rebuild)})"
        elif kind in ("denied", "not_found", "invalid"):
            fix = aws.open_failure(exc, cluster=u.cluster, region=self.region, log_group=u.log_group)
            hint = f". {fix}" if fix else ""
            if kind == "invalid" and step.token:
                step.token = (
                    None  # an expired/invalid nextToken: redo this call sequence (dedup makes it safe)
                )
            if kind == "not_found" and step.kind == "read":
                # A stream gone (deleted, expired) fails the read: list the streams again, then read.
                u.steps.clear()
                u.next_full_list = 0.0
                u.listing = None
                u.list_due = time.monotonic()
        _log(
            f"{u.log_group}: {operation} failed: {aws.describe(exc)}{hint}; retry {u.failures} in "
            f"{delay:.1f}s",
            f"fail:{u.key}:{kind}",
        )

    # -------------------------------------------------------------------------------- Falco's thread

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        # Falco asks for the next batch only once it has processed the previous one: that is when the
        # previous batch is safe to checkpoint. A kill -9 in the middle of a batch therefore delivers
        # that batch again after the restart instead of losing its unprocessed events.
        self._commit_pending()
        if self._leases is not None:
            self._leases.apply_changes(self)
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while True:
                if self._closed and not self._queue:
                    return [], True
                allowed = self._deliverable()
                if allowed is None:
                    if self._queue:
                        break
                elif any(item.unit in allowed for item in self._queue):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Releases the GIL while waiting; short under leases: deliverability changes unannounced.
                self._cond.wait(remaining if allowed is None else min(remaining, 0.05))
            items = self._take_deliverable(max_events, allowed)
            touched: dict[str, _Unit] = {}
            for item in items:
                self._queue_bytes -= len(item.payload)
                unit = self._units[item.unit]
                unit.positions.delivered(item.stream, item.event_id, item.ts_ms)
                touched[item.unit] = unit
            now_ms = self._now_ms()
            self._pending = {key: unit.positions.state(now_ms) for key, unit in touched.items()}
            if items:
                self._cond.notify_all()
        self._account(items, touched)
        return [(item.ts_ns, item.payload) for item in items], False

    def _deliverable(self) -> set[str] | None:
        """Units whose events may be handed to Falco now (None: every unit, no leases)."""
        if self._leases is None:
            return None
        return self._leases.deliverable(self._units)

    def _take_deliverable(self, max_events: int, allowed: set[str] | None) -> list[_Queued]:
        """Pop up to max_events queued events of allowed units, in queue order; the others stay queued
        (their lease is being renewed, or will be lost and the events dropped)."""
        if allowed is None:
            return [self._queue.popleft() for _ in range(min(max_events, len(self._queue)))]
        items: list[_Queued] = []
        kept: deque[_Queued] = deque()
        while self._queue and len(items) < max_events:
            item = self._queue.popleft()
            (items if item.unit in allowed else kept).append(item)
        kept.extend(self._queue)
        self._queue = kept
        return items

    def _account(self, items: list[_Queued], units: dict[str, _Unit]) -> None:
        multi = self.default_cluster is None
        nbytes = 0
        for item in items:
            nbytes += len(item.payload)
            unit = units[item.unit]
            if multi and item.audit_id:
                self._remember_cluster(item.audit_id, unit.cluster)
            if not unit.first_delivered:
                unit.first_delivered = True
                _log(f"first event delivered from cluster {unit.cluster} ({unit.log_group})")
        self._counters[metrics.EVENTS] += len(items)
        self._counters[metrics.BYTES] += nbytes

    def _commit_pending(self) -> None:
        states, self._pending = self._pending, {}
        if not states:
            self._store.save({})  # under leases: tells a unit being handed over that all is committed
            return
        try:
            self._store.save(states)
        except CheckpointRejected as exc:  # another replica holds these units now: stop reading them
            _log(str(exc), "rejected")
            if self._leases is not None:
                self._leases.apply_changes(self)
        except (OSError, ValueError) as exc:  # delivery goes on; a restart may then repeat these events
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

    def checkpoint_states(self) -> dict[str, UnitState]:
        """Every unit's current checkpoint state (what close() saves)."""
        now_ms = self._now_ms()
        with self._cond:
            return {key: unit.positions.state(now_ms) for key, unit in self._units.items()}

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
        for operation, count in list(self._pacer.calls_by_operation.items()):
            name = _OPERATION_METRICS.get(operation)
            if name is not None:
                out[name] = count
        out[metrics.CHECKPOINT_WRITES] = self._store.writes
        out[metrics.LAG_SECONDS] = max(self._lag(), 0.0)
        out[metrics.QUEUE_DEPTH] = len(self._queue)
        out[metrics.QUEUE_BYTES] = self._queue_bytes
        out[metrics.POLL_LAG_SECONDS] = max(self.group_lags().values(), default=0.0)
        out[metrics.GROUPS_BEHIND] = self._groups_behind
        if self._leases is not None:
            out.update(self._leases.coordinator.metrics())
            out[metrics.API_CALLS] += int(out.get(metrics.CALLS_DYNAMODB, 0))
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
                states = self.checkpoint_states()
                if states:
                    self._store.save(states)
        except CheckpointRejected as exc:
            _log(f"checkpoint write at close: {exc}")
        except (OSError, ValueError) as exc:
            _log(f"checkpoint write at close failed: {exc}")
        finally:
            try:
                self._store.close()
            except OSError as exc:
                _log(f"checkpoint compaction at close failed: {exc}")
            if self._client is not None:
                self._client.close()
        if snapshot:
            _log(f"closed after {self._counters[metrics.EVENTS]} events")


def _summary(state: UnitState) -> str:
    text = repr(state)
    return text if len(text) <= 200 else text[:200] + "..."


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
