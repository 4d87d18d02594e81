"""docs/operating.md lists exactly the metrics metrics.py defines, with the same kinds."""

from __future__ import annotations

import re
from pathlib import Path

from k8saudit_eks_py import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"


def test_metric_table_matches_metrics_py() -> None:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (counter|gauge) \|", DOC.read_text(), flags=re.M)
    kinds = {"counter": metrics.COUNTER, "gauge": metrics.GAUGE}
    assert [(name, kinds[kind]) for name, kind in rows] == list(metrics.METRICS)
