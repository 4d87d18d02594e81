"""A time range of CloudWatch Logs (`my-cluster?from=-7d&to=now`): each audit stream of each log group
whose events fall in the range, read once in timestamp order, then the end of the capture."""

from k8saudit_eks_py.sources.cloudwatch_range.source import RangeSource, open_range

__all__ = ["RangeSource", "open_range"]
