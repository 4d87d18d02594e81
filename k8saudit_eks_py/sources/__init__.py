"""The event sources and open_source() choosing one from open_params.

types.py holds what every source is (Event, Source); delivery.py what the AWS sources share between their
reader thread and Falco; cloudwatch/ and kinesis/ how each one reads; truncation.py and replay.py are
shared by both; subscription.py decodes subscription documents (Kinesis records, Firehose objects).
history/ is what the sources of the past share; cloudwatch_range/ reads a time range of CloudWatch,
archive/ an S3 archive.
"""

from __future__ import annotations

from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.sources.types import Event, Source

__all__ = ["Event", "Source", "open_source"]


def open_source(params: str, config: PluginConfig) -> Source:
    """open_params → a started Source. `file://PATH` replays a file, `kinesis://STREAM` reads a stream fed by
    a CloudWatch Logs subscription, `s3://BUCKET/PREFIX` replays an archive in S3 (a CloudWatch export or a
    Firehose delivery); anything else names EKS clusters, with `?from=TIME&to=TIME` a time range of the
    past (archive and range end the capture like a file)."""
    params = params.strip()
    if params.startswith("kinesis://"):
        from k8saudit_eks_py.sources.kinesis.source import open_kinesis

        return open_kinesis(params[len("kinesis://") :], config)
    if params.startswith("file://"):
        from k8saudit_eks_py.sources.replay import ReplaySource

        return ReplaySource(params[len("file://") :], config)
    if params.startswith("s3://"):
        from k8saudit_eks_py.sources.archive.source import open_archive

        return open_archive(params[len("s3://") :], config)
    if "?" in params:  # CLUSTER[,CLUSTER]?from=TIME&to=TIME: a time range, then the end of the capture
        from k8saudit_eks_py.sources.cloudwatch_range.source import open_range

        return open_range(params, config)
    from k8saudit_eks_py.sources.cloudwatch.source import open_cloudwatch

    return open_cloudwatch(params, config)
