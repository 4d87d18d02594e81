"""CloudWatch Logs source: EKS cluster names or ARNs → one work unit per log group, read through the route
of its account and Region (routes.py) → a poller thread per route (polling.py) → the bounded queue
(delivery.py) → next_batch.

The units a batch touched are saved to the checkpoint store when Falco asks for the next batch (or at
close), so a restart resumes each stream right after the events Falco finished with. Every run-time
failure is retried with jittered backoff; only open fails.

Units can be added and removed while the source runs (`add_unit`, `remove_unit`): open() adds one per
cluster; with coordination_table set, open() adds none and the log groups follow this replica's leases
(unit_leases.py): the lease table is the checkpoint store, and a unit's events reach Falco only while
its lease is safely held.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from k8saudit_eks_py import aws, cluster_refs, log, metrics
from k8saudit_eks_py.aws_setup import poll_capacity
from k8saudit_eks_py.checkpoint_store import CheckpointStore, FileStore, MemoryStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected, Coordinator
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.cloudwatch.polling import Poller
from k8saudit_eks_py.sources.cloudwatch.routes import OWN, Route, Target, targets
from k8saudit_eks_py.sources.cloudwatch.streams import GroupPositions, ReadParams
from k8saudit_eks_py.sources.cloudwatch.unit_leases import LogGroup, UnitLeases
from k8saudit_eks_py.sources.cloudwatch.units import QueuedEvent, Tuning, Unit, group_request
from k8saudit_eks_py.sources.cloudwatch.units import log_line as _log

__all__ = ["CloudWatchSource", "open_cloudwatch", "parse_clusters"]

_OWN_COUNTERS = (
    metrics.POLLS,
    metrics.EVENTS_FOUND_BEHIND,
    metrics.EVENTS_TOO_LATE,
    metrics.EVENTS_REDELIVERED_UNSURE,
    metrics.ROLE_FAILURES,
)
_OPERATION_METRICS = {
    "FilterLogEvents": metrics.CALLS_FILTER_LOG_EVENTS,
    "DescribeLogStreams": metrics.CALLS_DESCRIBE_LOG_STREAMS,
}


def parse_clusters(params: str) -> list[cluster_refs.ClusterRef]:
    """open_params → the clusters it names (names, EKS cluster ARNs, log group ARNs); OpenError with the
    fix."""
    try:
        return cluster_refs.parse_items(params)
    except ValueError as exc:
        raise OpenError(f"{exc}; set open_params to your cluster's name or ARN") from None


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
    if config.log_group and (len(clusters) > 1 or clusters[0].by_arn):
        raise OpenError(
            "log_group is set but open_params names several clusters (or a cluster ARN): log_group overrides "
            "the group of a single cluster named by name; remove it or open one cluster"
        )
    region = aws.resolve_region(config)
    plain = [c.name for c in clusters if not c.by_arn]
    if plain and "{account}" in config.role_arn and config.cross_account == "role":
        raise OpenError(
            f"role_arn {config.role_arn} names a role per account, but open_params names cluster {plain[0]} "
            "without its account: name it by its ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME)"
        )
    if store is None:  # with coordination_table the lease table takes its place (follow_leases)
        use_file = config.checkpoint_file and not config.coordination_table
        store = FileStore(config.checkpoint_file) if use_file else MemoryStore()
    found = targets(config, region, clusters)
    source = CloudWatchSource(
        config, region, tuning, store, clock, found[0].cluster if len(found) == 1 else None
    )
    try:
        for target in found:
            source.add_target(target)
        for target in found:
            source.check_unit(target)
        if config.coordination_table:
            # The lease table replaces the store; units arrive as leases are acquired (next_batch).
            leased = {t.key: LogGroup(t.cluster, t.log_group) for t in found}
            source.follow_leases(UnitLeases.start(config, region, leased, source.origin_state))
        else:
            for t in found:
                source.add_unit(t.key, t.cluster, t.log_group, store.load(t.key))
    except BaseException:
        source.close(commit=False)
        raise
    source.tell_capacity()
    source.start()
    return source


class CloudWatchSource(Poller):
    def __init__(
        self,
        config: PluginConfig,
        region: str,
        tuning: Tuning,
        store: CheckpointStore,
        clock: Callable[[], float],
        default_cluster: str | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`clock` is wall time (event timestamps, start positions); `monotonic` schedules polls and
        backoff, with jitter from `rng`: a simulation passes virtual ones."""
        super().__init__(config, store, default_cluster, _OWN_COUNTERS, tuning.close_timeout_s)
        self.region = region
        self.tuning = tuning
        self._params = tuning.reads or ReadParams.derive(config.lookback, config.polling_interval)
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._leases: UnitLeases | None = None
        self._units: dict[str, Unit] = {}
        self._newest_ingestion_ms = 0
        self._disorder_max_s = 0.0
        self._pacer = aws.CallPacer(config.max_api_calls_per_second, self._stop, monotonic)
        self._count_lock = threading.Lock()
        self._own_route = (OWN, region)
        self._routes = {}
        self._route_pacers = {}
        self._route_clients = {}
        self._targets: dict[str, Target] = {}
        self._groups_behind = 0
        self._next_lag_check = 0.0
        # A log group's origin is now - shift as of open, whenever its first take comes: an event
        # written after Falco opened the plugin is never lost to the start-up (leases, listing).
        self._opened_ms = self._now_ms()
        try:
            self._client = self._new_client()
        except Exception as exc:
            self._client = None
            group = config.log_group or f"/aws/eks/{default_cluster or '<cluster>'}/cluster"
            text = aws.open_failure(exc, cluster=default_cluster or "", region=region, log_group=group)
            raise OpenError(
                text or f"cannot create the CloudWatch Logs client: {aws.describe(exc)}"
            ) from None

    # -------------------------------------------------------------------------------- units

    def add_target(self, target: Target) -> None:
        """Where the unit `target.key` is read: its route (account, Region, role) and request."""
        self._targets[target.key] = target
        if target.route.key != self._own_route:
            self.add_route(target.route)

    def check_unit(self, target: Target) -> None:
        """One FilterLogEvents and one DescribeLogStreams of the group, so that a missing group, a denied
        action, bad credentials or a bad filter pattern fail open with the fix. Transient failures only
        get logged, and so does a role that cannot be assumed: that account's clusters wait and retry,
        the others are read."""
        now_ms = self._now_ms()
        cluster, log_group, request = target.cluster, target.log_group, target.request
        client = self._client_of(target.route.key)
        calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
            (
                client.filter_log_events,
                {
                    **request,
                    "startTime": now_ms - 60_000,
                    "endTime": now_ms,
                    "limit": 1,
                    **({"logStreamNamePrefix": p} if (p := self.config.log_stream_prefix) else {}),
                    **({"filterPattern": f} if (f := self.config.filter_pattern) else {}),
                },
            ),
            (client.describe_log_streams, {**request, "limit": 1}),
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
                    if aws.role_failure(exc):
                        self._counters[metrics.ROLE_FAILURES] += 1
                        log.warning(
                            f"open: cluster {cluster}: cannot assume role {target.route.role_arn} for "
                            f"{target.route.name} ({aws.describe(exc)}); its log groups are retried with "
                            "backoff, the other clusters are read. Fix: let the role trust this plugin's "
                            "identity (and external_id if set), and allow sts:AssumeRole on it",
                            key=f"role:{target.route.account}:{target.route.region}",
                        )
                        return
                    region = target.route.region
                    name = target.name or cluster
                    text = aws.open_failure(exc, cluster=name, region=region, log_group=log_group)
                    if text is not None:
                        raise OpenError(text + self._no_role_hint(target)) from None
                    if attempt + 1 == self.tuning.preflight_attempts:
                        _log(f"open: {log_group}: {aws.describe(exc)}; starting anyway, will retry")
                    else:
                        self._stop.wait(self._backoff(attempt))

    def _no_role_hint(self, target: Target) -> str:
        """For a cluster of another account read with the plugin's own credentials (no role for it)."""
        if "logGroupIdentifier" not in target.request or self.config.cross_account == "observability":
            return ""
        account = target.log_group.split(":")[4]
        return (
            f". No role is configured for account {account}, so it was read by ARN with Falco's own "
            "credentials (CloudWatch cross-account observability): set role_arns, or role_arn with "
            "{account}, to read it through a role in that account"
        )

    def origin_state(self, key: str) -> UnitState:
        """Where a log group never read before starts: open time - shift (called by the lease thread)."""
        return GroupPositions.start_state(min(self._opened_ms, self._now_ms()), self.config.shift * 1000)

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
        target = self._targets.get(key)
        route = target.route if target is not None else Route(OWN, self.region, None)
        request = target.request if target is not None else group_request(log_group)
        unit = Unit(key, cluster, log_group, request, positions, due=self._monotonic(), route=route.key)
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
            f"open: cluster {cluster}: reading {log_group} in {route.name}, streams "
            f"{self.config.log_stream_prefix or '(all)'}*, new streams from "
            f"{_iso(positions.new_floor())} ({origin})"
        )

    def tell_capacity(self) -> None:
        """Warn for each (account, Region) whose log groups cannot all be polled often enough under its
        cap (the quotas, and so the caps, are per account and Region)."""
        per_route: dict[tuple[str, str], int] = {}
        for target in self._targets.values():
            per_route[target.route.key] = per_route.get(target.route.key, 0) + 1
        for key, groups in per_route.items():
            problem = poll_capacity.capacity_problem(
                groups, self.config.max_api_calls_per_second, self.config.polling_interval
            )
            if problem:
                where = f"{key[0] or 'own account'} in {key[1]}: " if len(per_route) > 1 else ""
                log.warning(f"open: {where}{problem}")

    def remove_unit(self, key: str) -> None:
        """Stop reading a unit now: its queued events that next_batch has not returned are dropped (the
        next reader of the unit finds them again from its saved state)."""
        with self._cond:
            unit = self._units.pop(key, None)
            if unit is None:
                return
            unit.removed = True
            self._drop_queued(key)
            self._pending.pop(key, None)

    def units(self) -> list[str]:
        with self._cond:
            return list(self._units)

    def follow_leases(self, leases: UnitLeases) -> None:
        """Read the log groups this replica leases; checkpoints go to the lease table (fenced writes)."""
        self._store.close()
        self._store = leases.coordinator.store
        self._leases = leases

    # -------------------------------------------------------------------------------- delivery's questions

    def _owns(self, owner: Unit) -> bool:
        return not owner.removed  # (a removed unit's events are dropped with it)

    def _on_queued(self, owner: Unit, item: QueuedEvent) -> None:
        owner.positions.streams[item.stream].queued += 1

    def _apply_lease_changes(self) -> None:
        if self._leases is not None:
            self._leases.apply_changes(self)

    def _deliverable(self) -> set[str] | None:
        if self._leases is None:
            return None
        allowed = self._leases.deliverable(self._units)
        return None if len(allowed) == len(self._units) else allowed

    def _delivered(self, items: list[QueuedEvent]) -> dict[str, UnitState]:
        touched: dict[str, Unit] = {}
        for item in items:
            unit = self._units[item.unit]
            unit.positions.delivered(item.stream, item.event_id, item.ts_ms, item.ingestion_ms)
            touched[item.unit] = unit
            if not unit.first_delivered:
                unit.first_delivered = True
                _log(f"first event delivered from cluster {unit.cluster} ({unit.log_group})")
        now_ms = self._now_ms()
        return {key: unit.positions.state(now_ms) for key, unit in touched.items()}

    def _rejected(self, exc: CheckpointRejected, states: dict[str, UnitState]) -> dict[str, UnitState]:
        _log(str(exc), "rejected")  # another replica holds these units now: stop reading them
        self._apply_lease_changes()
        return {}

    def _final_commit(self) -> None:
        """Every unit's state: Falco closes after processing everything returned."""
        self._pending = {}
        try:
            states = self.checkpoint_states()
            if states:
                self._store.save(states)
        except CheckpointRejected as exc:
            _log(f"checkpoint write at close: {exc}")
        except (OSError, ValueError) as exc:
            _log(f"checkpoint write at close failed: {exc}")

    def _coordinator(self) -> Coordinator | None:
        return None if self._leases is None else self._leases.coordinator

    def _behind_text(self) -> str | None:
        lag = self._lag()
        return f"lag {lag:.0f}s" if lag >= 0 else None

    # -------------------------------------------------------------------------------- Falco's thread

    def close(self, commit: bool = True) -> None:
        super().close(commit)
        self._close_route_clients()

    def checkpoint_states(self) -> dict[str, UnitState]:
        """Every unit's current checkpoint state (what close() saves)."""
        now_ms = self._now_ms()
        with self._cond:
            return {key: unit.positions.state(now_ms) for key, unit in self._units.items()}

    def _lag(self) -> float:
        if not self._newest_ingestion_ms:
            return -1.0
        return max(0.0, self._clock() - self._newest_ingestion_ms / 1000)

    def metrics(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self._counters)
        pacers = list(self.route_pacers().values())
        out[metrics.API_CALLS] = sum(p.calls for p in pacers)
        for pacer in pacers:
            for operation, count in list(pacer.calls_by_operation.items()):
                name = _OPERATION_METRICS.get(operation)
                if name is not None:
                    out[name] = out.get(name, 0) + count
        out[metrics.LAG_SECONDS] = max(self._lag(), 0.0)
        out[metrics.POLL_LAG_SECONDS] = max(self.group_lags().values(), default=0.0)
        out[metrics.GROUPS_BEHIND] = self._groups_behind
        out[metrics.DISORDER_MAX_SECONDS] = self._disorder_max_s
        return self._delivery_metrics(out)


def _summary(state: UnitState) -> str:
    text = repr(state)
    return text if len(text) <= 200 else text[:200] + "..."


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
