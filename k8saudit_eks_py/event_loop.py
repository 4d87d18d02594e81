"""The event loop shared by `tail` and `demo`: next_batch until EOF, a count, a deadline or a signal."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from k8saudit_eks_py.host import EOF, Event, Instance, State

__all__ = ["Progress", "RunResult", "run", "stop_on_signals"]


@dataclass(slots=True)
class RunResult:
    events: int = 0
    eof: bool = False  # the source ended (file replay)
    stopped: bool = False  # a signal or the caller asked to stop
    timed_out: bool = False  # the deadline passed first


class Progress:
    """A status line on stderr every `interval` seconds while a person waits: events, rate, lag, queue."""

    def __init__(
        self, interval: float, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._stream = stream
        self._clock = clock
        self._start = self._last = clock()
        self._last_events = 0

    def tick(self, events: int, state: State) -> None:
        if self.interval <= 0:
            return
        now = self._clock()
        if now - self._last < self.interval:
            return
        rate = (events - self._last_events) / (now - self._last)
        self._last, self._last_events = now, events
        (self._stream or sys.stderr).write(self.line(events, rate, state.metrics()) + "\n")

    @staticmethod
    def line(events: int, rate: float, metrics: list[tuple[str, int, int | float]]) -> str:
        values = {name.rsplit(".", 1)[-1]: value for name, _, value in metrics}
        parts = [f"{events} events", f"{rate:.1f}/s"]
        if "lag_seconds" in values:
            parts.append(f"lag {float(values['lag_seconds']):.1f}s")
        if "queue_depth" in values:
            parts.append(f"queued {int(values['queue_depth'])}")
        for name in ("throttles", "errors"):
            if values.get(name):
                parts.append(f"{name} {int(values[name])}")
        return "[k8saudit-eks-py] " + ", ".join(parts)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` instead of raising inside plugin code (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    state: State,
    instance: Instance,
    on_event: Callable[[Event], None],
    *,
    count: int | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    after_batch: Callable[[], None] = lambda: None,
) -> RunResult:
    """Read like Falco: TIMEOUT → call next_batch again; each event is handled before the next read.
    `after_batch` runs once the events of a batch are handled (flush output before waiting again)."""
    result = RunResult()
    stop = stop or threading.Event()
    while True:
        if stop.is_set():
            result.stopped = True
            return result
        if deadline is not None and clock() >= deadline:
            result.timed_out = True
            return result
        rc, batch = instance.next_batch()
        for event in batch:
            on_event(event)
            result.events += 1
            if count is not None and result.events >= count:
                return result
        if batch:
            after_batch()
        if rc == EOF:
            result.eof = True
            return result
        if progress is not None:
            progress.tick(result.events, state)
