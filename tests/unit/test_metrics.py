"""metrics.py: the single list of names and snapshot() aggregation, including concurrent use."""

from __future__ import annotations

import threading

from k8saudit_eks_py import metrics
from k8saudit_eks_py.metrics import COUNTER, GAUGE, snapshot


def test_names_are_the_issue_list_once_each() -> None:
    names = [name for name, _ in metrics.METRICS]
    assert names == [
        "events",
        "bytes",
        "api_calls",
        "throttles",
        "errors",
        "retries",
        "duplicates_suppressed",
        "truncated_recovered",
        "oversize",
        "malformed",
        "checkpoint_writes",
        "events_read",
        "api_calls_filter_log_events",
        "api_calls_describe_log_streams",
        "api_calls_get_log_events",
        "api_calls_dynamodb",
        "api_calls_get_records",
        "api_calls_get_shard_iterator",
        "api_calls_list_shards",
        "lease_takeovers",
        "lease_losses",
        "checkpoint_writes_rejected",
        "reshards",
        "polls",
        "role_failures",
        "events_found_behind",
        "events_too_late",
        "events_redelivered_unsure",
        "api_calls_s3",
        "archive_objects",
        "archive_objects_bad",
        "lag_seconds",
        "queue_depth",
        "queue_bytes",
        "units_held",
        "shards_held",
        "millis_behind_latest",
        "poll_lag_seconds",
        "groups_behind",
        "disorder_max_seconds",
    ]
    assert len(set(names)) == len(names)
    assert set(metrics.DESCRIPTIONS) == set(names)
    assert {n for n, k in metrics.METRICS if k == GAUGE} == {
        "lag_seconds",
        "queue_depth",
        "queue_bytes",
        "units_held",
        "shards_held",
        "millis_behind_latest",
        "poll_lag_seconds",
        "groups_behind",
        "disorder_max_seconds",
    }


def test_new_counters_has_every_name_at_zero() -> None:
    values = metrics.new_counters()
    assert set(values) == {n for n, _ in metrics.METRICS}
    assert all(v == 0 for v in values.values())
    assert isinstance(values["events"], int)
    assert isinstance(values["lag_seconds"], float)


def test_snapshot_sums_counters_over_closed_and_live_and_combines_gauges() -> None:
    closed = {"events": 10, "bytes": 1000, "lag_seconds": 99.0}  # closed gauges must be ignored
    live = [
        {"events": 5, "bytes": 50, "lag_seconds": 3.5, "queue_depth": 2, "queue_bytes": 200},
        {"events": 1, "throttles": 4, "lag_seconds": 7.25, "queue_depth": 3, "queue_bytes": 300},
    ]
    rows = {name: (kind, value) for name, kind, value in snapshot(closed, live)}
    assert rows["events"] == (COUNTER, 16)
    assert rows["bytes"] == (COUNTER, 1050)
    assert rows["throttles"] == (COUNTER, 4)
    assert rows["malformed"] == (COUNTER, 0)
    assert rows["lag_seconds"] == (GAUGE, 7.25)
    assert rows["queue_depth"] == (GAUGE, 5.0)
    assert rows["queue_bytes"] == (GAUGE, 500.0)
    assert all(isinstance(v, int) for _, k, v in snapshot(closed, live) if k == COUNTER)
    assert all(isinstance(v, float) for _, k, v in snapshot(closed, live) if k == GAUGE)


def test_snapshot_with_nothing_open_reports_every_metric() -> None:
    rows = snapshot({}, [])
    assert [(n, k) for n, k, _ in rows] == list(metrics.METRICS)
    assert all(v == 0 for _, _, v in rows)


def test_snapshot_ignores_unknown_keys_and_bad_values() -> None:
    rows = dict((n, v) for n, _, v in snapshot({"nonsense": 5}, [{"events": True, "bytes": "x", "x": 1}]))
    assert "nonsense" not in rows and "x" not in rows
    assert rows["events"] == 0 and rows["bytes"] == 0
    rows = dict((n, v) for n, _, v in snapshot({}, [{"lag_seconds": float("nan")}]))
    assert rows["lag_seconds"] == 0.0


def test_snapshot_while_another_thread_mutates_the_source_dicts() -> None:
    live = metrics.new_counters()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            live["events"] = int(live["events"]) + 1
            live[f"transient{i % 50}"] = i  # grows and changes the dict's key set
            if i % 50 == 49:
                for k in [k for k in live if k.startswith("transient")]:
                    del live[k]
            i += 1

    def reader() -> None:
        try:
            last = 0
            for _ in range(2000):
                value = dict((n, v) for n, _, v in snapshot({}, [live]))["events"]
                assert value >= last  # monotonic as seen by a concurrent reader
                last = int(value)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    stop.set()
    t.join()
    assert errors == []
    assert live["events"] > 0
