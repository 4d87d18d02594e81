"""Pure read-window logic for one log group: which time range to scan next, and which eventIds are new.

No clock, no I/O: callers pass `now_ms` and feed back what CloudWatch returned. Invariant: an event whose
visibility delay (ingestion − timestamp) is at most `lookback_ms` is accepted exactly once, whatever order the
pages come in; memory holds only the eventIds with timestamp ≥ horizon.

Why every scan is not simply [newest − lookback, now]: that re-reads lookback/polling_interval times every
event (120× at the defaults) against an account-wide quota of ~5 calls/s. Instead:
  * head scans  [head_end − overlap, now] every poll: low latency for events that arrive on time;
  * sweeps      [horizon, now] every `sweep_every_ms`, horizon = (end of the previous sweep) − lookback: the
    first sweep planned after an event becomes visible starts at most `lookback` before that moment, so it
    covers any event delayed by ≤ lookback;
  * catch-up    (head far behind now, e.g. after a restart): sweeps in chunks of `step_ms`, so the seen-set
    stays bounded by lookback + step instead of the whole backlog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scan:
    start: int  # ms, inclusive (FilterLogEvents startTime)
    end: int  # ms, inclusive (endTime)
    sweep: bool


@dataclass(frozen=True, slots=True)
class WindowParams:
    lookback_ms: int
    overlap_ms: int
    sweep_every_ms: int
    step_ms: int

    @staticmethod
    def derive(lookback_s: float, polling_interval_s: float) -> WindowParams:
        """Defaults from the two user-facing knobs: overlap catches events a few polls late without waiting
        for a sweep; sweeping every lookback/4 keeps each event read ~5 times by sweeps."""
        lookback = int(lookback_s * 1000)
        poll = int(max(polling_interval_s, 1) * 1000)
        return WindowParams(
            lookback_ms=lookback,
            overlap_ms=min(lookback, max(3 * poll, 30_000)),
            sweep_every_ms=max(poll, lookback // 4),
            step_ms=max(3 * lookback, 300_000),
        )


class Window:
    def __init__(
        self,
        params: WindowParams,
        horizon_ms: int,
        seen: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.params = params
        self.horizon = horizon_ms
        # Restored state starts in catch-up mode from the horizon: nothing after it is known to be read.
        self.head_end = horizon_ms
        self._last_sweep_end = horizon_ms
        self._seen: dict[str, int] = {eid: ts for eid, ts in seen if ts >= horizon_ms}

    def __len__(self) -> int:
        return len(self._seen)

    def behind(self, now_ms: int) -> bool:
        return now_ms - self.head_end > self.params.step_ms

    def plan(self, now_ms: int) -> Scan:
        p = self.params
        if self.behind(now_ms):
            return Scan(self.horizon, max(self.horizon, min(now_ms, self.head_end + p.step_ms)), True)
        if now_ms - self._last_sweep_end >= p.sweep_every_ms:
            return Scan(self.horizon, max(self.horizon, now_ms), True)
        start = max(self.horizon, self.head_end - p.overlap_ms)
        return Scan(start, max(start, now_ms), False)

    def accept(self, event_id: str, ts_ms: int) -> bool:
        """True the first time an event is seen. Events older than the horizon are refused: they were read
        (and possibly forgotten) before, or are later than the lookback allows."""
        if ts_ms < self.horizon or event_id in self._seen:
            return False
        self._seen[event_id] = ts_ms
        return True

    def complete(self, scan: Scan) -> None:
        """The scan was paginated to its end (a page without nextToken that was not suspicious)."""
        self.head_end = max(self.head_end, scan.end)
        if scan.sweep:
            self._last_sweep_end = max(self._last_sweep_end, scan.end)
            horizon = scan.end - self.params.lookback_ms
            if horizon > self.horizon:
                self.horizon = horizon
                self._seen = {eid: ts for eid, ts in self._seen.items() if ts >= horizon}


class Delivered:
    """eventIds already returned by next_batch with timestamp ≥ the checkpoint horizon: what a checkpoint
    must hold so that a restart re-reads from that horizon without delivering any of them again."""

    def __init__(self, horizon_ms: int, ids: Iterable[tuple[str, int]] = ()) -> None:
        self.horizon = horizon_ms
        self.ids: dict[str, int] = {eid: ts for eid, ts in ids if ts >= horizon_ms}

    def add(self, event_id: str, ts_ms: int) -> None:
        self.ids[event_id] = ts_ms

    def advance(self, horizon_ms: int) -> bool:
        """Move the horizon forward (never back); True when it moved and old ids were forgotten."""
        if horizon_ms <= self.horizon:
            return False
        self.horizon = horizon_ms
        self.ids = {eid: ts for eid, ts in self.ids.items() if ts >= horizon_ms}
        return True
