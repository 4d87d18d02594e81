"""The CloudWatch source's poller thread: which call goes next, and what each call does.

A poll of a unit is one FilterLogEvents over the audit prefix from the group's common position (new and
revived streams show up in it), plus a read by logStreamNames for a stream that lags, each from its own
position (streams.py plans them). Listing the streams (DescribeLogStreams: the most recently written every
`list_every_s`, all of them every `full_list_every_s` and at start) runs beside the polls, for streams
whose events all arrive behind the common position. Each operation is paced against its own quota
(aws.CallPacer); the poller picks, among the calls whose slot is free, the one due the longest (oldest
first: no unit starves), and a unit whose polls find nothing is polled less often (up to
`quiet_max_polls` × polling_interval), so quiet groups leave the calls to busy ones. How far behind each
group is gets reported (metrics poll_lag_seconds, groups_behind; a rate-limited log line).

The quotas are per account and Region: each Route (routes.py) has its own pacer, client and poller
thread, which schedules only its own units, so the clusters of one account never wait for another's calls,
and an account whose role cannot be assumed fails only its own log groups (counted in role_failures,
retried with backoff).

Events are shaped (truncation.py) and queued in the order read (delivery.py); every run-time failure is
retried with jittered backoff.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from k8saudit_eks_py import aws, metrics
from k8saudit_eks_py.aws_setup import poll_capacity
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.sources.cloudwatch.routes import Route, RouteKey
from k8saudit_eks_py.sources.cloudwatch.streams import ReadParams
from k8saudit_eks_py.sources.cloudwatch.units import IncompleteResponse, QueuedEvent, Step, Tuning, Unit
from k8saudit_eks_py.sources.cloudwatch.units import log_line as _log
from k8saudit_eks_py.sources.delivery import Delivery
from k8saudit_eks_py.sources.truncation import Rejected, shape

__all__ = ["Poller"]

_LIST_PAGE = 50  # DescribeLogStreams returns at most 50 streams per page


def _operation(step: Step) -> str:
    return "FilterLogEvents" if step.kind == "read" else "DescribeLogStreams"


def _iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class Poller(Delivery[QueuedEvent, Unit]):
    """The reading half of CloudWatchSource (source.py sets these up and answers delivery's questions)."""

    _WORKER = "poller thread"
    config: PluginConfig
    region: str
    tuning: Tuning
    _params: ReadParams
    _clock: Callable[[], float]
    _monotonic: Callable[[], float]
    _rng: random.Random
    _units: dict[str, Unit]
    _pacer: aws.CallPacer
    _groups_behind: int
    _next_lag_check: float
    _newest_ingestion_ms: int
    _disorder_max_s: float
    _own_route: RouteKey
    _routes: dict[RouteKey, Route]
    _route_pacers: dict[RouteKey, aws.CallPacer]
    _route_clients: dict[RouteKey, Any]
    _count_lock: threading.Lock

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

    def _count(self, name: str, n: int) -> None:
        """Add to a counter: several poller threads (one per account and Region) count the same ones."""
        with self._count_lock:
            self._counters[name] += n

    # -------------------------------------------------------------------------------- routes

    def add_route(self, route: Route) -> None:
        """Read log groups through `route` (another account or Region): its own pacer and client. The
        client assumes the route's role lazily, at its first call, so a role that cannot be assumed fails
        that route's calls only."""
        if route.key in self._routes:
            return
        self._routes[route.key] = route
        self._route_pacers[route.key] = aws.CallPacer(
            self.config.max_api_calls_per_second, self._stop, self._monotonic
        )
        self._route_clients[route.key] = self._route_client(route.key)

    def _route_client(self, key: RouteKey) -> Any:
        route = self._routes[key]
        return aws.make_logs_client(
            self.config,
            route.region,
            self._route_pacers[key],
            connect_timeout=self.tuning.connect_timeout_s,
            read_timeout=self.tuning.read_timeout_s,
            role_arn=route.role_arn,
        )

    def _pacer_of(self, key: RouteKey) -> aws.CallPacer:
        return self._pacer if key == self._own_route else self._route_pacers[key]

    def _client_of(self, key: RouteKey) -> Any:
        return self._client if key == self._own_route else self._route_clients[key]

    def _renew_route(self, key: RouteKey) -> str:
        """A new client for `key` in place of the one whose credentials failed (a new role session)."""
        if key == self._own_route:
            return self._renew_client()
        try:
            old, self._route_clients[key] = self._route_clients[key], self._route_client(key)
            old.close()
        except Exception as rebuild:
            return f"; credentials not refreshed yet ({aws.describe(rebuild)})"
        return "; refreshing credentials"

    def route_pacers(self) -> dict[RouteKey, aws.CallPacer]:
        """Each (account, Region)'s pacer (its calls per operation), the plugin's own first."""
        return {self._own_route: self._pacer, **self._route_pacers}

    def _close_route_clients(self) -> None:
        for client in self._route_clients.values():
            client.close()

    # -------------------------------------------------------------------------------- threads

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="k8saudit-eks-poller", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        """One poller thread per (account, Region): a slow or failing account never holds up another's
        calls. Joined here, so that close() waits for all of them."""
        threads = []
        for key in [self._own_route, *self._route_pacers]:
            t = threading.Thread(
                target=self._run,
                args=(key,),
                name=f"k8saudit-eks-poller-{key[0] or 'own'}-{key[1]}",
                daemon=True,
            )
            t.start()
            threads.append(t)
        self._stop.wait()
        deadline = time.monotonic() + self.tuning.close_timeout_s
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _run(self, route: RouteKey | None = None) -> None:
        while not self._stop.is_set():
            with self._cond:
                job = self._next_job(route)
            if job is None:
                self._stop.wait(0.2)
                continue
            at, unit, listing = job
            wait = at - self._monotonic()
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
                self._count(metrics.ERRORS, 1)
                delay = self._backoff(unit.failures)
                unit.failures += 1
                unit.due = unit.list_due = self._monotonic() + delay
                unit.steps.clear()
                unit.listing = None
                _log(f"internal error polling {unit.log_group}: {exc!r}; retry in {delay:.1f}s", "internal")
            self._report_lag()

    def _next_job(self, route: RouteKey | None = None) -> tuple[float, Unit, bool] | None:
        """The call to make next (of `route`'s units; None: of every unit): the soonest one whose
        operation's slot is free in its route's pacer, and among those the one due the longest (the
        pacer's slots, not the order of units, decide when a call goes)."""
        free: dict[RouteKey, tuple[float, float]] = {}
        best: tuple[float, float, Unit, bool] | None = None
        for u in self._units.values():
            if route is not None and u.route != route:
                continue
            slots = free.get(u.route)
            if slots is None:
                pacer = self._pacer_of(u.route)
                slots = free[u.route] = (
                    pacer.free_at("FilterLogEvents"),
                    pacer.free_at("DescribeLogStreams"),
                )
            reads, lists = slots
            for due, free_at, listing in ((u.due, reads, False), (u.list_due, lists, True)):
                key = (max(due, free_at), due, u, listing)
                if best is None or key[:2] < best[:2]:
                    best = key
        return None if best is None else (best[0], best[2], best[3])

    def _report_lag(self) -> None:
        """Once a second: count the groups polled later than their interval allows; name them in a
        rate-limited line (they are waiting for their share of the calls)."""
        now = self._monotonic()
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
            route = behind[0][1].route
            with self._cond:
                same_route = sum(u.route == route for u in self._units.values())
            hint = poll_capacity.capacity_problem(same_route, self.config.max_api_calls_per_second, poll)
            _log(
                f"poll mode behind: {len(behind)} of {len(self._units)} log groups last read up to more "
                f"than {3 * poll:.0f}s ago (worst: {worst}); "
                + (hint or "the FilterLogEvents cap is spent on catching up (backlog or failures)"),
                "behind",
            )

    def _late(self, u: Unit, now: float, poll: float) -> bool:
        return now - u.read_up_to > max(u.interval, poll) + 2 * poll

    def group_lags(self) -> dict[str, float]:
        """Seconds since each log group was last read up to now (its poll lag)."""
        now = self._monotonic()
        with self._cond:
            return {u.log_group: now - u.read_up_to for u in self._units.values()}

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.tuning.backoff_max_s, self.tuning.backoff_min_s * 2 ** min(failures, 30))
        return ceiling * self._rng.uniform(0.5, 1.0)

    def _call(self, u: Unit, step: Step) -> dict[str, Any]:
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
            page = self._client_of(u.route).filter_log_events(**request)
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
        page = self._client_of(u.route).describe_log_streams(**request)
        if not isinstance(page.get("logStreams"), list):
            raise IncompleteResponse("200 response without a logStreams list")
        return dict(page)

    def _attempt(self, u: Unit, step: Step) -> dict[str, Any] | None:
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

    def _step(self, u: Unit) -> None:
        """One FilterLogEvents call of unit `u`'s current poll."""
        if not u.steps:
            u.poll_ms = self._now_ms()
            u.poll_began = self._monotonic()
            u.poll_found = 0
            with self._cond:
                u.steps.extend(Step("read", read) for read in u.positions.plan(u.poll_ms, discover=True))
                sweep = u.positions.sweep_plan(u.poll_ms)
                if sweep is not None:
                    u.steps.append(Step("read", sweep))
        step = u.steps[0]
        page = self._attempt(u, step)
        if page is None:
            return
        self._take(u, step, page["events"])
        token = page.get("nextToken")
        if token:  # an empty page with a token only means "the service stopped early; continue"
            step.token = token
            u.due = self._monotonic()
            return
        u.steps.popleft()
        assert step.read is not None
        if step.read.sweep:
            self._release(u, step)
        with self._cond:
            u.positions.finished(step.read, step.found, self._now_ms())
            u.poll_found += sum(step.found.values())
            if u.steps:
                u.due = self._monotonic()
                return
            u.positions.followed(u.poll_ms)
            u.read_up_to = u.poll_began
            self._count(metrics.POLLS, 1)
            poll = float(self.config.polling_interval)
            if u.poll_found or u.positions.wants_read():
                u.interval = poll
            else:  # quiet: back off, so that busy groups get the calls
                u.interval = min(max(u.interval, poll) * 2, poll * self.tuning.quiet_max_polls)
        u.due = max(self._monotonic(), u.poll_began + u.interval)

    def _list_step(self, u: Unit) -> None:
        """One DescribeLogStreams call of unit `u`'s listing track."""
        if u.listing is None:
            now = self._monotonic()
            if now >= u.next_full_list:
                u.next_full_list = now + self.tuning.full_list_every_s
                u.listing = Step("all")
            else:
                u.listing = Step("recent")
        step = u.listing
        page = self._attempt(u, step)
        if page is None:
            return
        self._listed(u, step, page["logStreams"])
        token = page.get("nextToken")
        # The recent listing reads only its first page: the most recently written streams.
        if token and step.kind != "recent":
            step.token = token
            u.list_due = self._monotonic()
            return
        u.listing = None
        with self._cond:
            if step.kind == "all":
                u.positions.listed_completely(step.names)
            moved = u.positions.wants_read()
        now = self._monotonic()
        u.list_due = now + self.tuning.list_every_s
        if moved and not u.steps and u.interval > self.config.polling_interval:
            u.due = min(u.due, now)  # a quiet group with a stream that moved: poll it now

    def _listed(self, u: Unit, step: Step, streams: list[dict[str, Any]]) -> None:
        prefix = self.config.log_stream_prefix
        with self._cond:
            for entry in streams:
                name = entry.get("logStreamName")
                if not isinstance(name, str) or not name.startswith(prefix):
                    continue
                last = entry.get("lastEventTimestamp")
                u.positions.found(name, last if isinstance(last, int) else None)
                step.names.append(name)

    def _take(self, u: Unit, step: Step, events: list[dict[str, Any]]) -> None:
        self._count(metrics.EVENTS_READ, len(events))
        for ev in events:
            stream = ev.get("logStreamName")
            event_id = ev.get("eventId")
            ts_ms = ev.get("timestamp")
            if not isinstance(event_id, str) or not isinstance(ts_ms, int) or not isinstance(stream, str):
                self._count(metrics.MALFORMED, 1)
                _log(f"{u.log_group}: event without eventId/timestamp/logStreamName skipped", "noid")
                continue
            if not stream.startswith(self.config.log_stream_prefix):
                continue  # another kind of stream (a prefix read where the prefix is not applied)
            with self._cond:
                assert step.read is not None
                ingestion = ev.get("ingestionTime")
                new = u.positions.take(
                    step.read, stream, event_id, ts_ms, ingestion if isinstance(ingestion, int) else None
                )
            if new is None:  # the sweep decides once it has read the whole bucket
                step.held.append(ev)
                continue
            if not new:
                self._count(metrics.DUPLICATES_SUPPRESSED, 1)
                continue
            self._enqueue(u, step, ev, stream, event_id, ts_ms)
        self._positions_news(u)

    def _release(self, u: Unit, step: Step) -> None:
        """A sweep read finished: deliver those of its held events the ledger now places as new."""
        assert step.read is not None
        held = [
            (str(ev["logStreamName"]), str(ev["eventId"]), int(ev["timestamp"]), _ingestion(ev))
            for ev in step.held
        ]
        with self._cond:
            before = u.positions.unsure_delivered
            deliver = u.positions.release(step.read, held)
            repeated = u.positions.unsure_delivered - before
        if repeated:
            _log(
                f"{u.log_group}: {repeated} events behind a restart's positions delivered again by the "
                f"sweep ({len(deliver) - repeated} of the {len(deliver)} it delivered there were made "
                "visible late by CloudWatch; its checkpoint record could not tell which: no loss, "
                f"{repeated} repeats)",
                f"unsure:{u.key}",
            )
        for ev in step.held:
            if ev["eventId"] in deliver:
                self._enqueue(u, step, ev, str(ev["logStreamName"]), str(ev["eventId"]), int(ev["timestamp"]))
        step.held = []
        self._positions_news(u)

    def _positions_news(self, u: Unit) -> None:
        """What the unit's positions learnt while taking events: disorder found, events too late."""
        with self._cond:
            g = u.positions
            behind, g.found_behind = g.found_behind, 0
            repeated, g.unsure_delivered = g.unsure_delivered, 0
            late, g.too_late = g.too_late, []
            disorder = g.disorder_max_ms / 1000
        self._count(metrics.EVENTS_FOUND_BEHIND, behind)
        self._count(metrics.EVENTS_REDELIVERED_UNSURE, repeated)
        if disorder > self._disorder_max_s:
            self._disorder_max_s = disorder
        if late:
            self._count(metrics.EVENTS_TOO_LATE, len(late))
            stream, ts_ms = late[0]
            _log(
                f"{u.log_group}: {len(late)} events became visible more than lookback "
                f"({self.config.lookback}s) behind every read position and are not delivered (first: "
                f"stream {stream}, timestamp "
                f"{_iso_ms(ts_ms)}); raise lookback if this recurs",
                f"late:{u.key}",
            )

    def _enqueue(
        self, u: Unit, step: Step, ev: dict[str, Any], stream: str, event_id: str, ts_ms: int
    ) -> None:
        step.found[stream] += 1
        ingestion = ev.get("ingestionTime")
        if isinstance(ingestion, int) and ingestion > self._newest_ingestion_ms:
            self._newest_ingestion_ms = ingestion
        shaped = shape(str(ev.get("message", "")), ts_ms, self.config.max_event_size)
        if isinstance(shaped, Rejected):
            self._count(metrics.MALFORMED, 1)
            _log(
                f"{u.log_group}: skipped a line that is not an audit event ({shaped.reason}), stream "
                f"{stream}, eventId {event_id}",
                "malformed",
            )
            return
        if shaped.status != "ok":
            self._count(metrics.TRUNCATED_RECOVERED if shaped.status == "truncated" else metrics.OVERSIZE, 1)
            _log(
                f"{u.log_group}: {shaped.status} event of {shaped.original_size} bytes, auditID "
                f"{shaped.audit_id}: delivered as its metadata ({len(shaped.payload)} bytes)",
                "reduced",
            )
        item = QueuedEvent(
            shaped.ts_ns,
            shaped.payload,
            u.key,
            u.cluster,
            shaped.audit_id,
            stream,
            event_id,
            ts_ms,
            _ingestion(ev),
        )
        if not self._put(u, item):
            raise aws.Cancelled()

    def _failed(self, u: Unit, step: Step, exc: BaseException) -> None:
        operation = _operation(step)
        kind = "incomplete" if isinstance(exc, IncompleteResponse) else aws.classify(exc)
        # A throttle is counted once, as a throttle; `errors` is every other failed call.
        self._count(metrics.THROTTLES if kind == "throttle" else metrics.ERRORS, 1)
        self._count(metrics.RETRIES, 1)
        pacer = self._pacer_of(u.route)
        if kind == "throttle":
            # The quota is shared with someone else: slow the operation down for every group of the
            # account and Region (the pacer), and retry this call at its next slot, in turn with the other
            # groups' calls. A backoff of the group's own would silence it for minutes after a burst.
            pacer.throttled(operation)
            now = self._monotonic()
            if step.kind == "read":
                u.due = now
            else:
                u.list_due = now
            _log(
                f"{u.log_group}: {operation} throttled (the account's quota is shared with another "
                f"reader); slowed to {pacer.rate_of(operation):.2f} calls/s, back to the cap within "
                f"{aws.CallPacer.RECOVERY_S:.0f}s of the last throttle",
                f"throttle:{operation}",
            )
            return
        delay = self._backoff(u.failures)
        u.failures += 1
        if step.kind == "read":
            u.due = self._monotonic() + delay
        else:
            u.list_due = self._monotonic() + delay
        hint = ""
        if aws.role_failure(exc):
            self._role_failed(u, exc, delay)
            return
        if kind == "credentials":
            hint = self._renew_route(u.route)
        elif kind in ("denied", "not_found", "invalid"):
            fix = aws.open_failure(exc, cluster=u.cluster, region=u.route[1], log_group=u.log_group)
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
                u.list_due = self._monotonic()
        _log(
            f"{u.log_group}: {operation} failed: {aws.describe(exc)}{hint}; retry {u.failures} in "
            f"{delay:.1f}s",
            f"fail:{u.key}:{kind}",
        )

    def _role_failed(self, u: Unit, exc: BaseException, delay: float) -> None:
        """The role of u's account could not be assumed: only that account's log groups wait (each backs
        off on its own); the next attempt assumes the role afresh."""
        self._count(metrics.ROLE_FAILURES, 1)
        route = self._routes.get(u.route)
        role = route.role_arn if route is not None else ""
        self._renew_route(u.route)
        _log(
            f"cluster {u.cluster}: cannot assume role {role} ({aws.describe(exc)}); the log groups of "
            f"{route.name if route else u.route} wait, the others are read. Fix: let the role trust this "
            "plugin's identity (and external_id if set), and allow sts:AssumeRole on it; retry "
            f"{u.failures} in {delay:.1f}s",
            f"role:{u.route[0]}:{u.route[1]}",
        )


def _ingestion(ev: dict[str, Any]) -> int:
    """An event's ingestionTime (its PutLogEvents batch's), 0 when the answer lacks it."""
    value = ev.get("ingestionTime")
    return value if isinstance(value, int) else 0
