"""CloudWatch Logs polling: source.py (open, units, what delivery asks), polling.py (the poller thread),
units.py (a log group's unit and tuning), streams.py (per-stream positions), unit_leases.py (log groups
under coordination_table). The modules import each other, never this face."""

from k8saudit_eks_py.sources.cloudwatch.source import CloudWatchSource, open_cloudwatch, parse_clusters
from k8saudit_eks_py.sources.cloudwatch.units import Tuning, group_request, unit_key

__all__ = ["CloudWatchSource", "Tuning", "group_request", "open_cloudwatch", "parse_clusters", "unit_key"]
