"""The event sources and open_source() choosing one from open_params.

types.py holds what every source is (Event, Source); delivery.py what the AWS sources share between their
reader thread and Falco; cloudwatch/ and kinesis/ how each one reads; truncation.py and replay.py are
shared by both.
"""

from __future__ import annotations

from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.sources.types import Event, Source

__all__ = ["Event", "Source", "open_source"]


def open_source(params: str, config: PluginConfig) -> Source:
    """open_params → a started Source. `file://PATH` replays a file, `kinesis://STREAM` reads a stream fed by
    a CloudWatch Logs subscription; anything else names EKS clusters."""
    params = params.strip()
    if params.startswith("kinesis://"):
        from k8saudit_eks_py.sources.kinesis.source import open_kinesis

        return open_kinesis(params[len("kinesis://") :], config)
    if params.startswith("file://"):
        from k8saudit_eks_py.sources.replay import ReplaySource

        return ReplaySource(params[len("file://") :], config)
    from k8saudit_eks_py.sources.cloudwatch.source import open_cloudwatch

    return open_cloudwatch(params, config)
