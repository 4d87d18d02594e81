"""What every event source is: the Event it hands to Falco and the Source protocol it implements."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Event", "Source"]

# One event handed to Falco: (timestamp in ns since the epoch = the audit event's stageTimestamp,
# payload = the audit event's JSON text).
Event = tuple[int, bytes]


class Source(Protocol):
    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        """Up to max_events events, waiting at most timeout_s (GIL released while waiting) when none is
        ready; the bool is True when the source is exhausted after these events (EOF)."""
        ...

    def progress(self) -> tuple[int, str]:
        """(progress in hundredths of a percent 0..10000, short text)."""
        ...

    def metrics(self) -> dict[str, int | float]:
        """Counters and gauges of this source (names from k8saudit_eks_py.metrics)."""
        ...

    def close(self) -> None:
        """Stop background work and release every thread, socket and file; idempotent."""
        ...
