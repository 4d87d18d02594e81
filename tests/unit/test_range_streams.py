"""Which streams a time range reads: a stream is kept while its first event is before `to` and its last
event (DescribeLogStreams says it up to an hour late) plus an hour reaches `from`; listed page by page,
streams of other prefixes dropped (moto ignores the prefix)."""

from __future__ import annotations

from typing import Any

from k8saudit_eks_py.sources.cloudwatch_range.streams import LAST_EVENT_LAG_MS, overlapping, span_of
from k8saudit_eks_py.sources.history.window import Window

W = Window(1_000_000_000_000, 1_000_086_400_000, "test")  # one day


def _stream(name: str, first: int | None, last: int | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"logStreamName": name}
    if first is not None:
        doc["firstEventTimestamp"] = first
    if last is not None:
        doc["lastEventTimestamp"] = last
    return doc


def test_spans() -> None:
    inside = span_of(_stream("a", W.from_ms + 10, W.from_ms + 20), W)
    assert inside is not None and (inside.start_ms, inside.end_ms) == (
        W.from_ms + 10,
        W.from_ms + 20 + LAST_EVENT_LAG_MS + 1,
    )
    assert span_of(_stream("b", W.to_ms, W.to_ms + 5), W) is None  # starts at `to`: excluded
    assert span_of(_stream("c", None, None), W) is None  # no event at all
    before = W.from_ms - LAST_EVENT_LAG_MS - 1
    assert span_of(_stream("d", before - 100, before), W) is None  # ended before, even an hour late
    late = span_of(_stream("e", W.from_ms - 5000, W.from_ms - 10), W)  # last event maybe an hour stale
    assert late is not None and late.start_ms == W.from_ms
    open_ended = span_of(_stream("f", W.from_ms - 5000, None), W)
    assert open_ended is not None and open_ended.end_ms == W.to_ms


def test_overlapping_pages_and_prefix() -> None:
    pages = [
        {"logStreams": [_stream("kube-apiserver-audit-1", W.from_ms, W.from_ms + 1)], "nextToken": "t1"},
        {"logStreams": [], "nextToken": "t2"},  # an empty page that still has a token
        {
            "logStreams": [
                _stream("authenticator-1", W.from_ms, W.from_ms + 1),
                _stream("kube-apiserver-audit-2", W.from_ms, W.from_ms + 1),
            ]
        },
    ]
    calls: list[dict[str, Any]] = []

    def describe(kwargs: dict[str, Any]) -> dict[str, Any]:
        calls.append(dict(kwargs))
        return pages[len(calls) - 1]

    names = [s.name for s in overlapping(describe, {"logGroupName": "g"}, "kube-apiserver-audit", W)]
    assert names == ["kube-apiserver-audit-1", "kube-apiserver-audit-2"]
    assert [c.get("nextToken") for c in calls] == [None, "t1", "t2"]
    assert all(c["logStreamNamePrefix"] == "kube-apiserver-audit" and c["logGroupName"] == "g" for c in calls)
