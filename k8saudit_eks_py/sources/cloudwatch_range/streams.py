"""Which streams of a log group hold events of a window: DescribeLogStreams' first and last event
timestamps (the last one lags by up to an hour, so a stream is kept while last + an hour reaches the
window), in stream-name order (the order a checkpoint's position counts on)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from k8saudit_eks_py.sources.history.window import Window

__all__ = ["LAST_EVENT_LAG_MS", "StreamSpan", "overlapping"]

LAST_EVENT_LAG_MS = 3_600_000  # lastEventTimestamp is eventually consistent: up to an hour behind


@dataclass(frozen=True, slots=True)
class StreamSpan:
    name: str
    start_ms: int  # the part of the window the stream may hold events of: [start_ms, end_ms)
    end_ms: int

    @property
    def span_ms(self) -> int:
        return max(1, self.end_ms - self.start_ms)


def span_of(stream: dict[str, Any], window: Window) -> StreamSpan | None:
    """The stream's part of the window, or None when it holds no event of it (or none at all)."""
    first, last = stream.get("firstEventTimestamp"), stream.get("lastEventTimestamp")
    if not isinstance(first, int) or first >= window.to_ms:
        return None
    newest = last + LAST_EVENT_LAG_MS if isinstance(last, int) else window.to_ms
    if newest < window.from_ms:
        return None
    return StreamSpan(str(stream["logStreamName"]), max(first, window.from_ms), min(newest + 1, window.to_ms))


def overlapping(
    describe: Callable[[dict[str, Any]], dict[str, Any]],
    request: dict[str, str],
    prefix: str,
    window: Window,
) -> Iterator[StreamSpan]:
    """The streams (with `prefix`) of the group in `request` holding events of `window`, by name.
    `describe` is one DescribeLogStreams call (retried by the caller)."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {**request, **({"logStreamNamePrefix": prefix} if prefix else {})}
        if token:
            kwargs["nextToken"] = token
        page = describe(kwargs)
        for stream in page.get("logStreams", []):
            name = stream.get("logStreamName")
            if isinstance(name, str) and name.startswith(prefix):  # (moto ignores the prefix)
                span = span_of(stream, window)
                if span is not None:
                    yield span
        token = page.get("nextToken")
        if not token:
            return
