"""How many log groups and events per second poll mode serves under its FilterLogEvents cap, and the
warning `check` and open give when the configured clusters do not fit.

A busy log group costs about one FilterLogEvents call per poll, plus one per ~1 MB page of events (about
700 audit events of 1.5 KB). A group read at least every 2 × polling_interval stays less than
3 × polling_interval behind, so one cap of C calls/s serves about C × 2 × polling_interval busy groups (a
quiet group is polled up to 6 times less often and counts for less) and about C × 700 events/s in all.
"""

from __future__ import annotations

import math

__all__ = ["EVENTS_PER_CALL", "FILTER_QUOTA", "capacity_problem", "events_served", "groups_served"]

FILTER_QUOTA = 5.0  # FilterLogEvents requests/s per account and Region
EVENTS_PER_CALL = 700  # 1 MB page of ~1.5 KB audit events
_POLLS_PER_LAG = 2  # a group is read at least every 2 × polling_interval


def groups_served(cap: float, polling_interval: float) -> int:
    """Busy log groups a FilterLogEvents cap of `cap` calls/s reads every 2 × polling_interval."""
    return int(cap * _POLLS_PER_LAG * max(polling_interval, 1))


def events_served(cap: float) -> int:
    """Events/s (1.5 KB) a cap of `cap` FilterLogEvents calls/s can read at most, in all."""
    return int(cap * EVENTS_PER_CALL)


def capacity_problem(groups: int, cap: float, polling_interval: float) -> str | None:
    """None when `groups` busy log groups fit the cap; else what to change, in one sentence."""
    served = groups_served(cap, polling_interval)
    if groups <= served:
        return None
    period = _POLLS_PER_LAG * max(polling_interval, 1)
    need = groups / period
    interval = math.ceil(groups / (_POLLS_PER_LAG * cap))
    raise_cap = (
        f"Raise max_api_calls_per_second to {need:.1f} if no other reader uses the account's "
        f"{FILTER_QUOTA:g}/s FilterLogEvents quota, "
        if need <= FILTER_QUOTA
        else ""
    )
    return (
        f"{groups} log groups need about {need:.1f} FilterLogEvents calls/s to be read every {period:g}s "
        f"(2 x polling_interval) while busy, but max_api_calls_per_second {cap:g} serves about {served}: "
        f"busy groups will fall behind. {raise_cap}"
        f"{'raise' if raise_cap else 'Raise'} polling_interval to {interval}, or use stream mode "
        "(open_params kinesis://STREAM: no FilterLogEvents quota)"
    )
