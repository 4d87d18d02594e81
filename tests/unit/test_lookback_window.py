"""The time window of open_params (`?from=...&to=...`): the forms accepted and the messages for mistakes."""

from __future__ import annotations

import pytest

from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.cloudwatch_range.source import open_range
from k8saudit_eks_py.sources.history.window import Window, notes, parse_query, parse_time, split_params

NOW = 1_790_000_000_000  # 2026-09-21T...


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-7d", NOW - 7 * 86_400_000),
        ("7d", NOW - 7 * 86_400_000),
        ("-12h", NOW - 12 * 3_600_000),
        ("-30m", NOW - 1_800_000),
        ("-1.5h", NOW - 5_400_000),
        ("-1w", NOW - 7 * 86_400_000),
        ("2026-11-01T00:00:00Z", 1_793_491_200_000),
        ("2026-11-01T00:00:00.250Z", 1_793_491_200_250),
        ("2026-11-01T02:00:00+02:00", 1_793_491_200_000),
        ("2026-11-01", 1_793_491_200_000),
    ],
)
def test_time_forms(text: str, expected: int) -> None:
    assert parse_time(text, NOW, "from") == expected


def test_split_params_and_window() -> None:
    base, query = split_params("a,b?from=-2h&to=-1h")
    assert base == "a,b" and query == {"from": "-2h", "to": "-1h"}
    window = parse_query(query, NOW, need_from=True)
    assert window is not None
    assert (window.from_ms, window.to_ms) == (NOW - 7_200_000, NOW - 3_600_000)
    assert window.contains(NOW - 7_200_000) and not window.contains(NOW - 3_600_000)  # [from, to)
    assert window.text == "from=-2h&to=-1h"
    to_now = parse_query({"from": "-1h"}, NOW, need_from=True)
    assert to_now is not None and to_now.to_ms == NOW
    assert parse_query({}, NOW, need_from=False) is None  # an archive without a window: everything


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("c?from=yesterday", "from='yesterday' is not a time: write an ISO-8601 time"),
        ("c?from=-1h&to=-2h", "is not before to=-2h"),
        ("c?from=-1h&to=2999-01-01", "is in the future"),
        ("c?since=-1h", "'since=-1h' is not one of from=TIME, to=TIME, cluster=NAME"),
        ("c?from=-1h&from=-2h", "sets from twice"),
        ("c?to=-1h", "to= without from="),
    ],
)
def test_mistakes_say_what_to_write(params: str, message: str) -> None:
    with pytest.raises(OpenError) as info:
        _, query = split_params(params)
        parse_query(query, NOW, need_from=True)
    assert message in str(info.value)


def test_notes_for_a_window_ending_now_and_for_coordination() -> None:
    assert notes(Window(NOW - 86_400_000, NOW - 600_000, "x"), NOW, "") == []
    recent = notes(Window(NOW - 86_400_000, NOW - 60_000, "x"), NOW, "")
    assert len(recent) == 1 and "ends less than 5 minutes ago" in recent[0]
    assert ["coordination_table is not used" in n for n in notes(None, NOW, "table")] == [True]


def test_a_range_names_clusters_by_name_not_by_arn() -> None:
    arn = "arn:aws:eks:eu-west-1:111111111111:cluster/prod"
    with pytest.raises(OpenError) as info:
        open_range(f"{arn}?from=-1h", parse_config('{"region": "us-east-1"}'), now_ms=NOW)
    assert "a time range reads clusters by name" in str(info.value)
    assert "name 111111111111/eu-west-1/prod by its name" in str(info.value)
