"""Kinesis stream mode: source.py (open, leases, what delivery asks), reading.py (the reader thread),
shards.py / shard_reader.py (shard lineage and positions), shard_leases.py (shards under coordination_table),
subscription.py / stream_events.py (records → log events → audit events), stream_errors.py. The modules
import each other, never this face."""

from k8saudit_eks_py.sources.kinesis.reading import StreamTuning
from k8saudit_eks_py.sources.kinesis.source import KinesisSource, open_kinesis

__all__ = ["KinesisSource", "StreamTuning", "open_kinesis"]
