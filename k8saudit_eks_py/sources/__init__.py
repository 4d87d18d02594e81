"""The Source protocol every event source implements, and open_source() choosing one from open_params."""

from __future__ import annotations

from typing import Protocol

from k8saudit_eks_py.config import PluginConfig

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


def open_source(params: str, config: PluginConfig) -> Source:
    """open_params → a started Source. `file://PATH` replays a file, `kinesis://STREAM` reads a stream fed by
    a CloudWatch Logs subscription; anything else names EKS clusters."""
    params = params.strip()
    if params.startswith("kinesis://"):
        from k8saudit_eks_py.sources.kinesis import open_kinesis

        return open_kinesis(params[len("kinesis://") :], config)
    if params.startswith("file://"):
        from k8saudit_eks_py.sources.replay import ReplaySource

        return ReplaySource(params[len("file://") :], config)
    from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch

    return open_cloudwatch(params, config)
