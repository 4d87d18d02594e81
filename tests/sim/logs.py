"""Simulated CloudWatch Logs: log groups whose streams receive events, and the client the real source reads.

An event has a timestamp (wall ms) and becomes visible when it is ingested: its stream's lag after the
timestamp (a lagging stream is a whole API server whose shipping is late), plus, in schedules with
visibility disorder, a delay of its batch (or its own), so that a stream's older events can become visible
after newer ones (events of one millisecond included): a batch ingested late, or ingested on time (its
ingestionTime) and searchable only later.
FilterLogEvents answers the visible events of the named streams in [startTime, endTime] in time order, in
small pages (so pagination is exercised); each page is read at the instant of its call. DescribeLogStreams
lists the streams created so far, by name or by last event time (newest first), with lastEventTimestamp of
the newest visible event.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogEvent", "SimLogGroup", "SimLogsClient"]


@dataclass(frozen=True, slots=True)
class LogEvent:
    ts: int  # wall ms
    event_id: str
    message: str
    visible_ms: int  # wall ms when FilterLogEvents can return it
    ingestion_ms: int = 0  # its batch's ingestionTime (0: visible_ms, ingested when it became visible)


@dataclass
class SimStream:
    name: str
    created_ms: int
    events: list[LogEvent] = field(default_factory=list)  # in timestamp order, visible in that order too
    keys: list[tuple[int, str]] = field(default_factory=list)  # (ts, event_id) of `events`
    visible: list[int] = field(default_factory=list)  # visible_ms of `events`


@dataclass
class SimLogGroup:
    name: str
    streams: dict[str, SimStream] = field(default_factory=dict)

    def add_stream(self, name: str, now_ms: int) -> SimStream:
        return self.streams.setdefault(name, SimStream(name, now_ms))

    def put(self, stream: str, event: LogEvent) -> None:
        s = self.streams[stream]
        key = (event.ts, event.event_id)
        assert not s.events or key > s.keys[-1], "events in timestamp order"
        s.keys.append(key)
        s.events.append(event)
        s.visible.append(event.visible_ms)


class SimLogsClient:
    def __init__(
        self,
        groups: dict[str, SimLogGroup],
        now_ms: Callable[[], int],
        page_events: int = 40,
        fault: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.groups = groups
        self.now_ms = now_ms
        self.page_events = page_events
        self.fault = fault  # raises the error a call gets (throttling), given the operation
        self.calls = 0

    def _group(self, kwargs: dict[str, Any]) -> SimLogGroup:
        name = kwargs.get("logGroupName") or kwargs.get("logGroupIdentifier")
        return self.groups[str(name)]

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.fault("FilterLogEvents")
        group = self._group(kwargs)
        now = self.now_ms()
        start, end = int(kwargs.get("startTime", 0)), int(kwargs.get("endTime", 1 << 62))
        names = kwargs.get("logStreamNames") or list(group.streams)
        after: tuple[int, str, str] | None = None
        if kwargs.get("nextToken"):
            ts, stream, eid = str(kwargs["nextToken"]).split("|", 2)
            after = (int(ts), stream, eid)
        limit = min(int(kwargs.get("limit") or self.page_events), self.page_events)
        found: list[tuple[int, str, str, LogEvent]] = []
        for name in names:
            s = group.streams.get(name)
            if s is None:
                continue
            lo = bisect.bisect_left(s.keys, (start, ""))
            for ev in s.events[lo:]:
                if ev.ts > end:
                    break
                if ev.visible_ms > now:
                    continue
                if after is None or (ev.ts, name, ev.event_id) > after:
                    found.append((ev.ts, name, ev.event_id, ev))
        found.sort(key=lambda f: (f[0], f[1], f[2]))
        page = found[:limit]
        answer: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": name,
                    "timestamp": ev.ts,
                    "message": ev.message,
                    "ingestionTime": ev.ingestion_ms or ev.visible_ms,
                    "eventId": eid,
                }
                for _, name, eid, ev in page
            ],
            "searchedLogStreams": [{"logStreamName": n, "searchedCompletely": True} for n in names],
        }
        if len(found) > limit:
            ts, name, eid, _ = page[-1]
            answer["nextToken"] = f"{ts}|{name}|{eid}"
        return answer

    def describe_log_streams(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.fault("DescribeLogStreams")
        group = self._group(kwargs)
        now = self.now_ms()
        listed = []
        prefix = kwargs.get("logStreamNamePrefix") or ""
        for s in group.streams.values():
            if s.created_ms > now or not s.name.startswith(prefix):
                continue
            entry: dict[str, Any] = {"logStreamName": s.name, "creationTime": s.created_ms}
            newest = max((ev.ts for ev in reversed(s.events) if ev.visible_ms <= now), default=None)
            if newest is not None:
                entry["lastEventTimestamp"] = newest
            listed.append(entry)
        if kwargs.get("orderBy") == "LastEventTime":
            listed.sort(key=lambda e: (e.get("lastEventTimestamp", 0), e["logStreamName"]))
        else:
            listed.sort(key=lambda e: e["logStreamName"])
        if kwargs.get("descending"):
            listed.reverse()
        offset = int(kwargs.get("nextToken") or 0)
        limit = int(kwargs.get("limit") or 50)
        answer: dict[str, Any] = {"logStreams": listed[offset : offset + limit]}
        if offset + limit < len(listed):
            answer["nextToken"] = str(offset + limit)
        return answer

    def close(self) -> None:
        pass
