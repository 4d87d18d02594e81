"""The plugin's metric names, defined once, and snapshot() that turns source dicts into get_metrics rows.

Sources report `metrics() -> dict[str, int | float]` keyed by the constants below; Falco shows each row as
`k8saudit-eks.<name>` (and Prometheus as a plugins metric). Unknown keys are ignored, missing keys are 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "API_CALLS",
    "BYTES",
    "CALLS_DESCRIBE_LOG_STREAMS",
    "CALLS_DYNAMODB",
    "CALLS_FILTER_LOG_EVENTS",
    "CALLS_GET_LOG_EVENTS",
    "CALLS_GET_RECORDS",
    "CALLS_GET_SHARD_ITERATOR",
    "CALLS_LIST_SHARDS",
    "CHECKPOINT_WRITES",
    "CHECKPOINT_WRITES_REJECTED",
    "COUNTER",
    "COUNTERS",
    "DESCRIPTIONS",
    "DISORDER_MAX_SECONDS",
    "DUPLICATES_SUPPRESSED",
    "ERRORS",
    "EVENTS",
    "EVENTS_FOUND_BEHIND",
    "EVENTS_READ",
    "EVENTS_REDELIVERED_UNSURE",
    "EVENTS_TOO_LATE",
    "GAUGE",
    "GAUGES",
    "GROUPS_BEHIND",
    "LAG_SECONDS",
    "LEASE_LOSSES",
    "LEASE_TAKEOVERS",
    "MALFORMED",
    "METRICS",
    "MILLIS_BEHIND_LATEST",
    "OVERSIZE",
    "POLLS",
    "POLL_LAG_SECONDS",
    "QUEUE_BYTES",
    "QUEUE_DEPTH",
    "RESHARDS",
    "RETRIES",
    "ROLE_FAILURES",
    "SHARDS_HELD",
    "THROTTLES",
    "TRUNCATED_RECOVERED",
    "UNITS_HELD",
    "new_counters",
    "snapshot",
]

# Kinds as the shim expects them: 0 = monotonic counter (ss_plugin_metric U64), 1 = gauge (D).
COUNTER = 0
GAUGE = 1

# Counters: monotonic for the life of the plugin state (closed instances are folded in by plugin.py).
EVENTS = "events"  # events delivered to Falco by next_batch
BYTES = "bytes"  # payload bytes of those events
API_CALLS = "api_calls"  # AWS API requests sent, all services (each page counts)
THROTTLES = "throttles"  # ThrottlingException answers
ERRORS = "errors"  # failed API calls of any other kind (network, 5xx, AccessDenied, ...)
RETRIES = "retries"  # calls repeated after a throttle or an error
DUPLICATES_SUPPRESSED = "duplicates_suppressed"  # events seen again (overlap, redelivery) and not re-sent
TRUNCATED_RECOVERED = "truncated_recovered"  # `[Truncated...]` events delivered with recovered metadata
OVERSIZE = "oversize"  # events above max_event_size, delivered reduced to their metadata
MALFORMED = "malformed"  # messages that are not an audit event and could not be recovered (dropped)
CHECKPOINT_WRITES = "checkpoint_writes"  # checkpoint writes (file journal/snapshot or DynamoDB)
EVENTS_READ = "events_read"  # log events any API call returned (read amplification = events_read / events)
CALLS_FILTER_LOG_EVENTS = "api_calls_filter_log_events"
CALLS_DESCRIBE_LOG_STREAMS = "api_calls_describe_log_streams"
CALLS_GET_LOG_EVENTS = "api_calls_get_log_events"
CALLS_DYNAMODB = "api_calls_dynamodb"  # lease and checkpoint calls to coordination_table
CALLS_GET_RECORDS = "api_calls_get_records"
CALLS_GET_SHARD_ITERATOR = "api_calls_get_shard_iterator"
CALLS_LIST_SHARDS = "api_calls_list_shards"
LEASE_TAKEOVERS = "lease_takeovers"  # units (log groups, shards) taken from another or expired replica
LEASE_LOSSES = "lease_losses"  # units this replica lost (not renewed in time, or taken over)
CHECKPOINT_WRITES_REJECTED = "checkpoint_writes_rejected"  # conditional writes refused (lease moved)
RESHARDS = "reshards"  # closed Kinesis shards finished and replaced by their children
# poll mode: events CloudWatch made visible behind newer events of their stream, found by the re-read window
# or the trailing sweep and delivered
EVENTS_FOUND_BEHIND = "events_found_behind"
EVENTS_TOO_LATE = "events_too_late"  # poll mode: events read older than every read position (not delivered)
# poll mode: events the sweep delivered again because a late event arrived where a restart left only counts
EVENTS_REDELIVERED_UNSURE = "events_redelivered_unsure"
DISORDER_MAX_SECONDS = "disorder_max_seconds"  # poll mode: largest disorder seen (s behind the stream)
POLLS = "polls"  # poll mode: log group polls completed (FilterLogEvents calls per poll = calls / polls)
ROLE_FAILURES = "role_failures"  # poll mode: calls that failed because an account's role was not assumable

# Gauges: current values of the live instances.
LAG_SECONDS = "lag_seconds"  # now - newest CloudWatch ingestion time delivered (max over instances)
QUEUE_DEPTH = "queue_depth"  # events fetched and waiting for next_batch (sum over instances)
QUEUE_BYTES = "queue_bytes"  # bytes of those events (sum over instances)
UNITS_HELD = "units_held"  # work units (log groups, shards) this replica holds a lease on
SHARDS_HELD = "shards_held"  # Kinesis shards being read
MILLIS_BEHIND_LATEST = "millis_behind_latest"  # Kinesis lag: largest MillisBehindLatest over the shards
POLL_LAG_SECONDS = "poll_lag_seconds"  # poll mode: largest time since a log group was last read up to now
GROUPS_BEHIND = "groups_behind"  # poll mode: log groups read less often than their interval allows
CALLS_S3 = "api_calls_s3"  # archive replay: ListObjectsV2 and GetObject calls
ARCHIVE_OBJECTS = "archive_objects"  # archive replay: S3 objects read to their end
ARCHIVE_OBJECTS_BAD = "archive_objects_bad"  # archive replay: objects corrupt, foreign or unreadable

DESCRIPTIONS: dict[str, str] = {
    EVENTS: "audit events delivered to Falco",
    BYTES: "payload bytes delivered to Falco",
    API_CALLS: "AWS API calls (all services)",
    THROTTLES: "API calls answered with ThrottlingException",
    ERRORS: "API calls failed for another reason (network, 5xx, access denied)",
    RETRIES: "API calls repeated after a throttle or an error",
    DUPLICATES_SUPPRESSED: "events read again (the per-stream overlap) and not delivered twice",
    TRUNCATED_RECOVERED: "[Truncated...] events delivered with their recovered metadata",
    OVERSIZE: "events larger than max_event_size delivered reduced to their metadata",
    MALFORMED: "messages dropped because they are not an audit event",
    CHECKPOINT_WRITES: "checkpoint writes (file or DynamoDB)",
    EVENTS_READ: "log events returned by API calls (read amplification = events_read / events)",
    CALLS_FILTER_LOG_EVENTS: "FilterLogEvents calls",
    CALLS_DESCRIBE_LOG_STREAMS: "DescribeLogStreams calls",
    CALLS_GET_LOG_EVENTS: "GetLogEvents calls",
    CALLS_DYNAMODB: "DynamoDB calls for leases and checkpoints",
    CALLS_GET_RECORDS: "Kinesis GetRecords calls",
    CALLS_GET_SHARD_ITERATOR: "Kinesis GetShardIterator calls",
    CALLS_LIST_SHARDS: "Kinesis ListShards calls",
    LEASE_TAKEOVERS: "leases taken over from an expired, departed or overloaded replica",
    LEASE_LOSSES: "leases lost (not renewed in time, or taken by another replica)",
    CHECKPOINT_WRITES_REJECTED: "checkpoint writes rejected because the lease had moved",
    RESHARDS: "closed Kinesis shards finished and handed over to their children",
    EVENTS_FOUND_BEHIND: "poll mode: events found behind newer events of their stream (delivered)",
    EVENTS_TOO_LATE: "poll mode: events older than lookback behind every read position (not delivered)",
    EVENTS_REDELIVERED_UNSURE: "poll mode: events delivered again by the sweep after a restart (no loss)",
    DISORDER_MAX_SECONDS: "poll mode: largest disorder seen, seconds behind newer events of the stream",
    POLLS: "poll mode: log group polls completed (FilterLogEvents calls per poll = calls / polls)",
    ROLE_FAILURES: "poll mode: calls not made because an account's role could not be assumed (retried)",
    LAG_SECONDS: "seconds between now and the newest ingestion time delivered (max over instances)",
    QUEUE_DEPTH: "events fetched and waiting to be delivered",
    QUEUE_BYTES: "bytes of the events waiting to be delivered",
    UNITS_HELD: "log groups or shards this replica holds a lease on",
    SHARDS_HELD: "Kinesis shards being read",
    MILLIS_BEHIND_LATEST: "largest Kinesis MillisBehindLatest over the shards read",
    POLL_LAG_SECONDS: "poll mode: largest number of seconds since a log group was last read up to now",
    GROUPS_BEHIND: "poll mode: log groups polled late (more than their interval + 2 polling_interval)",
    CALLS_S3: "archive replay: S3 ListObjectsV2 and GetObject calls",
    ARCHIVE_OBJECTS: "archive replay: S3 objects read to their end",
    ARCHIVE_OBJECTS_BAD: "archive replay: S3 objects skipped or cut short (corrupt, foreign, unreadable)",
}

COUNTERS: tuple[str, ...] = (
    EVENTS,
    BYTES,
    API_CALLS,
    THROTTLES,
    ERRORS,
    RETRIES,
    DUPLICATES_SUPPRESSED,
    TRUNCATED_RECOVERED,
    OVERSIZE,
    MALFORMED,
    CHECKPOINT_WRITES,
    EVENTS_READ,
    CALLS_FILTER_LOG_EVENTS,
    CALLS_DESCRIBE_LOG_STREAMS,
    CALLS_GET_LOG_EVENTS,
    CALLS_DYNAMODB,
    CALLS_GET_RECORDS,
    CALLS_GET_SHARD_ITERATOR,
    CALLS_LIST_SHARDS,
    LEASE_TAKEOVERS,
    LEASE_LOSSES,
    CHECKPOINT_WRITES_REJECTED,
    RESHARDS,
    POLLS,
    ROLE_FAILURES,
    EVENTS_FOUND_BEHIND,
    EVENTS_TOO_LATE,
    EVENTS_REDELIVERED_UNSURE,
    CALLS_S3,
    ARCHIVE_OBJECTS,
    ARCHIVE_OBJECTS_BAD,
)
GAUGES: tuple[str, ...] = (
    LAG_SECONDS,
    QUEUE_DEPTH,
    QUEUE_BYTES,
    UNITS_HELD,
    SHARDS_HELD,
    MILLIS_BEHIND_LATEST,
    POLL_LAG_SECONDS,
    GROUPS_BEHIND,
    DISORDER_MAX_SECONDS,
)

# Every metric in get_metrics order, with its kind.
METRICS: tuple[tuple[str, int], ...] = (
    *((n, COUNTER) for n in COUNTERS),
    *((n, GAUGE) for n in GAUGES),
)

# How several live instances combine into one gauge value.
_GAUGE_MAX = frozenset({LAG_SECONDS, MILLIS_BEHIND_LATEST, POLL_LAG_SECONDS, DISORDER_MAX_SECONDS})


def new_counters() -> dict[str, int | float]:
    """A source's metric dict with every name present and zero (counters int, gauges float)."""
    values: dict[str, int | float] = dict.fromkeys(COUNTERS, 0)
    values.update(dict.fromkeys(GAUGES, 0.0))
    return values


def _number(value: object) -> float:
    # bool is an int: reject it along with anything that is not a real number (a source bug must not
    # make get_metrics fail, it reads as 0).
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return value


def snapshot(
    closed: Mapping[str, int | float], live: Iterable[Mapping[str, int | float]]
) -> list[tuple[str, int, int | float]]:
    """get_metrics rows (name, kind, value) for every metric, in METRICS order.

    Counters are `closed` (the sum of instances closed so far) plus every live instance; gauges come
    from the live instances only (lag: the largest, queues: the sum) and are 0.0 with none open.
    Safe to call from any thread: it only reads the given mappings.
    """
    live = [dict(m) for m in live]  # copy first: a source may update its dict while we read
    rows: list[tuple[str, int, int | float]] = []
    for name in COUNTERS:
        total = _number(closed.get(name, 0)) + sum(_number(m.get(name, 0)) for m in live)
        rows.append((name, COUNTER, max(0, int(total))))
    for name in GAUGES:
        values = [float(_number(m.get(name, 0.0))) for m in live]
        if not values:
            value = 0.0
        elif name in _GAUGE_MAX:
            value = max(values)
        else:
            value = sum(values)
        rows.append((name, GAUGE, value))
    return rows
