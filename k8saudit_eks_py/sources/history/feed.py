"""A source that reads a finite past (a CloudWatch time range, an S3 archive) and then ends the capture.

A reader thread puts events into delivery.py's bounded queue; next_batch hands them out and commits the
position of the batch before (a kill -9 repeats at most the batch Falco was processing). Once the reader
has read everything and Falco has been handed the last event, next_batch answers EOF as file:// replay
does, so Falco prints its summary and exits; the checkpoint then marks every unit done, and opening the
same range again reads nothing (one log line says how to read it again).
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from typing import Any, NamedTuple

from k8saudit_eks_py import aws, log, metrics
from k8saudit_eks_py.checkpoint_store import CheckpointStore, UnitState
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.coordination import CheckpointRejected
from k8saudit_eks_py.sources.delivery import Delivery
from k8saudit_eks_py.sources.history.retry import Tuning
from k8saudit_eks_py.sources.truncation import Rejected, shape
from k8saudit_eks_py.sources.types import Event

__all__ = ["HistoryItem", "HistorySource"]


class HistoryItem(NamedTuple):
    ts_ns: int
    payload: bytes
    unit: str
    cluster: str | None
    audit_id: str | None
    where: tuple[Any, ...]  # the reader's position once this event is delivered (the source's own form)
    ts_ms: int  # its CloudWatch timestamp (progress)


class HistorySource(Delivery[HistoryItem, None]):
    _WORKER = "history reader"

    def __init__(
        self,
        config: PluginConfig,
        store: CheckpointStore,
        default_cluster: str | None,
        own_counters: tuple[str, ...],
        tuning: Tuning,
    ) -> None:
        super().__init__(config, store, default_cluster, own_counters, tuning.close_timeout_s)
        self.tuning = tuning
        self._exhausted = False  # the reader stopped (finished, failed or closed)
        self._complete = False  # the reader finished: everything was read
        self._states: dict[str, UnitState] = {}  # unit → state as of the last event handed to Falco
        self._started = time.monotonic()
        self._next_report = self._started + tuning.log_every_s
        self._reported_end = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8saudit-history", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read()
            self._complete = True
        except aws.Cancelled:
            pass
        except Exception as exc:  # a bug: end the capture with what was delivered, say what happened
            self._counters[metrics.ERRORS] += 1
            log.error(
                f"reading the past stopped: {type(exc).__name__}: {exc}; the events before it were delivered"
            )
        finally:
            with self._cond:
                self._exhausted = True
                self._cond.notify_all()

    # -------------------------------------------------------------------------------- the reader's part

    @abstractmethod
    def _read(self) -> None:
        """Read everything, putting each event with `_offer` (reader thread)."""

    @abstractmethod
    def _advance(self, state: UnitState, item: HistoryItem) -> UnitState:
        """The unit's state once `item` is delivered, from its state before (Falco's thread)."""

    @abstractmethod
    def fraction_done(self) -> float | None:
        """How much of the work is read, 0..1 (None: unknown)."""

    @abstractmethod
    def _position_text(self) -> str:
        """Where the reader is, for progress."""

    def _offer(
        self, unit: str, cluster: str | None, message: str, ts_ms: int, where: tuple[Any, ...], what: str
    ) -> bool:
        """Shape one log event and queue it; False when the source is closing. A line that is not an audit
        event is counted and logged, never delivered."""
        shaped = shape(message, ts_ms, self.config.max_event_size)
        if isinstance(shaped, Rejected):
            self._counters[metrics.MALFORMED] += 1
            log.warning(
                f"{what}: skipped a line that is not an audit event ({shaped.reason})", key="malformed"
            )
            return not self._stop.is_set()
        if shaped.status != "ok":
            name = metrics.TRUNCATED_RECOVERED if shaped.status == "truncated" else metrics.OVERSIZE
            self._counters[name] += 1
            log.warning(
                f"{what}: {shaped.status} event of {shaped.original_size} bytes, auditID {shaped.audit_id}: "
                f"delivered as its metadata ({len(shaped.payload)} bytes)",
                key="reduced",
            )
        self._counters[metrics.EVENTS_READ] += 1
        item = HistoryItem(shaped.ts_ns, shaped.payload, unit, cluster, shaped.audit_id, where, ts_ms)
        self._report()
        return self._put(None, item)

    def _report(self, final: bool = False) -> None:
        """A progress line every log_every_s (and one at the end): share of the range, events, ETA."""
        now = time.monotonic()
        if not final and now < self._next_report:
            return
        self._next_report = now + self.tuning.log_every_s
        done = self.fraction_done()
        events = self._counters[metrics.EVENTS_READ]
        elapsed = max(now - self._started, 1e-3)
        text = f"{events} events read ({events / elapsed:,.0f}/s), {self._position_text()}"
        if done is not None:
            text = f"{done * 100:.1f}% done, " + text
            if 0 < done < 1:
                text += f", ETA {_duration(elapsed * (1 - done) / done)}"
        log.info(("finished reading: " if final else "reading the past: ") + text)

    # -------------------------------------------------------------------------------- Falco's thread

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        events, _ = super().next_batch(max_events, timeout_s)
        with self._cond:
            eof = self._exhausted and not self._queue
        if eof and not self._closed:
            self._at_end()
        return events, eof

    def _at_end(self) -> None:
        """Everything read was handed to Falco: mark the units done (saved at close) when all was read."""
        if self._reported_end:
            return
        self._reported_end = True
        if self._complete:
            done = {unit: {**state, "done": True} for unit, state in self._states.items()}
            self._pending.update(done)
            self._report(final=True)

    def _finishing(self) -> bool:
        return self._exhausted  # nothing more will come: return at once

    def _delivered(self, items: list[HistoryItem]) -> dict[str, UnitState]:
        touched: dict[str, UnitState] = {}
        for item in items:
            state = self._advance(self._states[item.unit], item)
            self._states[item.unit] = state
            touched[item.unit] = state
        return touched

    def _owns(self, owner: None) -> bool:
        return True

    def _rejected(self, exc: CheckpointRejected, states: dict[str, UnitState]) -> dict[str, UnitState]:
        return {}  # (no lease table: a file or memory store never rejects)

    def _behind_text(self) -> str | None:
        return self._position_text()

    def progress(self) -> tuple[int, str]:
        done = self.fraction_done()
        pct = 0 if done is None else min(10000, int(done * 10000))
        return pct, f"{self._counters[metrics.EVENTS]} events, {self._position_text()}"

    def _base_metrics(self, calls: int) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self._counters)
        out[metrics.API_CALLS] = calls
        out[metrics.LAG_SECONDS] = 0.0
        return self._delivery_metrics(out)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
