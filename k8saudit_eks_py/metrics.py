"""The plugin's metric names, defined once, and snapshot() that turns source dicts into get_metrics rows.

Sources report `metrics() -> dict[str, int | float]` keyed by the constants below; Falco shows each row as
`k8saudit-eks.<name>` (and Prometheus as a plugins metric). Unknown keys are ignored, missing keys are 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "API_CALLS",
    "BYTES",
    "CHECKPOINT_WRITES",
    "COUNTER",
    "COUNTERS",
    "DESCRIPTIONS",
    "DUPLICATES_SUPPRESSED",
    "ERRORS",
    "EVENTS",
    "GAUGE",
    "GAUGES",
    "LAG_SECONDS",
    "MALFORMED",
    "METRICS",
    "OVERSIZE",
    "QUEUE_BYTES",
    "QUEUE_DEPTH",
    "RETRIES",
    "THROTTLES",
    "TRUNCATED_RECOVERED",
    "new_counters",
    "snapshot",
]

# Kinds as the shim expects them: 0 = monotonic counter (ss_plugin_metric U64), 1 = gauge (D).
COUNTER = 0
GAUGE = 1

# Counters: monotonic for the life of the plugin state (closed instances are folded in by plugin.py).
EVENTS = "events"  # events delivered to Falco by next_batch
BYTES = "bytes"  # payload bytes of those events
API_CALLS = "api_calls"  # CloudWatch Logs API requests sent (each page counts)
THROTTLES = "throttles"  # ThrottlingException answers
ERRORS = "errors"  # failed API calls of any other kind (network, 5xx, AccessDenied, ...)
RETRIES = "retries"  # calls repeated after a throttle or an error
DUPLICATES_SUPPRESSED = "duplicates_suppressed"  # events seen again (lookback re-read) and not re-sent
TRUNCATED_RECOVERED = "truncated_recovered"  # `[Truncated...]` events delivered with recovered metadata
OVERSIZE = "oversize"  # events above max_event_size, delivered reduced to their metadata
MALFORMED = "malformed"  # messages that are not an audit event and could not be recovered (dropped)
CHECKPOINT_WRITES = "checkpoint_writes"  # checkpoint files written

# Gauges: current values of the live instances.
LAG_SECONDS = "lag_seconds"  # now - newest CloudWatch ingestion time delivered (max over instances)
QUEUE_DEPTH = "queue_depth"  # events fetched and waiting for next_batch (sum over instances)
QUEUE_BYTES = "queue_bytes"  # bytes of those events (sum over instances)

DESCRIPTIONS: dict[str, str] = {
    EVENTS: "audit events delivered to Falco",
    BYTES: "payload bytes delivered to Falco",
    API_CALLS: "CloudWatch Logs API calls",
    THROTTLES: "API calls answered with ThrottlingException",
    ERRORS: "API calls failed for another reason (network, 5xx, access denied)",
    RETRIES: "API calls repeated after a throttle or an error",
    DUPLICATES_SUPPRESSED: "events read again (lookback) and not delivered twice",
    TRUNCATED_RECOVERED: "[Truncated...] events delivered with their recovered metadata",
    OVERSIZE: "events larger than max_event_size delivered reduced to their metadata",
    MALFORMED: "messages dropped because they are not an audit event",
    CHECKPOINT_WRITES: "checkpoint files written",
    LAG_SECONDS: "seconds between now and the newest ingestion time delivered (max over instances)",
    QUEUE_DEPTH: "events fetched and waiting to be delivered",
    QUEUE_BYTES: "bytes of the events waiting to be delivered",
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
)
GAUGES: tuple[str, ...] = (LAG_SECONDS, QUEUE_DEPTH, QUEUE_BYTES)

# Every metric in get_metrics order, with its kind.
METRICS: tuple[tuple[str, int], ...] = (
    *((n, COUNTER) for n in COUNTERS),
    *((n, GAUGE) for n in GAUGES),
)

# How several live instances combine into one gauge value.
_GAUGE_MAX = frozenset({LAG_SECONDS})


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
