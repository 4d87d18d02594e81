"""Stream mode's log events → deliverable audit events: which records are ours (audit streams of the
accepted clusters), the eventId window against the subscription's duplicate deliveries, and the same
shaping as poll mode (truncated / oversize recovery, malformed lines counted and logged).

Across accounts (a CloudWatch Logs destination in front of the stream, subscriptions in member accounts)
each record carries `owner`, its log group's account: a cluster of the stream's own account is shown by its
name, one of another account as ACCOUNT/NAME, so that two `prod` clusters in two accounts stay apart.
stream_clusters accepts both forms."""

from __future__ import annotations

from collections import OrderedDict

from k8saudit_eks_py import log, metrics
from k8saudit_eks_py.sources.subscription import cluster_of
from k8saudit_eks_py.sources.truncation import Rejected, shape

__all__ = ["EventGate"]


class EventGate:
    def __init__(
        self,
        counters: dict[str, int],
        *,
        clusters: frozenset[str],
        log_stream_prefix: str,
        max_event_size: int,
        dedup_window: int,
    ) -> None:
        self._counters = counters  # the source's counters, updated in place
        self.clusters = clusters
        self._prefix = log_stream_prefix
        self._max_event_size = max_event_size
        self._window = dedup_window
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.home = ""  # the stream's account (from its ARN): its clusters are shown by their plain name

    def label(self, owner: str, log_group: str) -> str | None:
        """The name a record's cluster is shown as: NAME, or OWNER/NAME from another account."""
        name = cluster_of(log_group)
        if name is None or not owner or not self.home or owner == self.home:
            return name
        return f"{owner}/{name}"

    def wanted(self, log_group: str, log_stream: str, owner: str = "") -> bool:
        if self._prefix and not log_stream.startswith(self._prefix):
            return False  # the subscription covers the whole log group: authenticator, scheduler, ...
        if not self.clusters:
            return True
        name = cluster_of(log_group)
        return name in self.clusters or (bool(owner) and f"{owner}/{name}" in self.clusters)

    def forget(self, key: tuple[str, str] | None) -> None:
        """An event read but never delivered (its shard's lease was lost): when read again, by this
        replica or after the shard comes back, it is not a duplicate. (One dict call: GIL-atomic.)"""
        if key is not None:
            self._seen.pop(key, None)

    def event(
        self, group: str, event_id: str | None, ts_ms: int, message: str | None
    ) -> tuple[int, bytes, str | None] | None:
        """(ts_ns, payload, auditID) to deliver, or None (counted: malformed or duplicate)."""
        if event_id is None or message is None:
            self._counters[metrics.MALFORMED] += 1
            log.warning(f"{group}: log event without id or message skipped", key="noid")
            return None
        key = (group, event_id)  # eventIds are unique within a log group
        if key in self._seen:
            self._counters[metrics.DUPLICATES_SUPPRESSED] += 1
            return None
        self._seen[key] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        shaped = shape(message, ts_ms, self._max_event_size)
        if isinstance(shaped, Rejected):
            self._counters[metrics.MALFORMED] += 1
            log.warning(
                f"{group}: skipped a line that is not an audit event ({shaped.reason}), eventId {event_id}",
                key="malformed",
            )
            return None
        if shaped.status != "ok":
            name = metrics.TRUNCATED_RECOVERED if shaped.status == "truncated" else metrics.OVERSIZE
            self._counters[name] += 1
            log.warning(
                f"{group}: {shaped.status} event of {shaped.original_size} bytes, auditID {shaped.audit_id}: "
                f"delivered as its metadata ({len(shaped.payload)} bytes)",
                key="reduced",
            )
        return shaped.ts_ns, shaped.payload, shaped.audit_id
