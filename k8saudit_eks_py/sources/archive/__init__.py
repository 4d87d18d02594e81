"""An S3 archive (`s3://bucket/prefix`): CloudWatch Logs export tasks and Firehose deliveries of a
subscription, objects listed lazily and decompressed as a stream, then the end of the capture."""

from k8saudit_eks_py.sources.archive.source import ArchiveSource, open_archive

__all__ = ["ArchiveSource", "open_archive"]
