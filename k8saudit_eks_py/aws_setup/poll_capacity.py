"""How many log groups and events per second poll mode serves under its FilterLogEvents cap, and the
warning `check` and open give when the configured clusters do not fit.

A busy log group costs about one FilterLogEvents call per poll, and a group read at least every
2 × polling_interval stays less than 3 × polling_interval behind. The trailing sweep (visibility disorder)
reads every group's past once more: at least one call per group per `SWEEP_STEP_S`, and every event a
second time, so a 1 MB page of ~700 audit events of 1.5 KB carries about 700 / `READS_PER_EVENT` events
delivered. One cap of C calls/s thus serves about C / (1 / (2 × polling_interval) + 1 / SWEEP_STEP_S)
busy groups (a quiet group is polled up to 6 times less often and counts for less) and about
C × 700 / READS_PER_EVENT events/s in all (benchmarks/bench_poll.py: 20 clusters at 30 events/s each,
more than either bound at the default cap, were all delivered with the cap full and a p99 lag of 51 s).
"""

from __future__ import annotations

import math

__all__ = [
    "EVENTS_PER_CALL",
    "FILTER_QUOTA",
    "READS_PER_EVENT",
    "SWEEP_STEP_S",
    "capacity_problem",
    "events_served",
    "groups_served",
]

FILTER_QUOTA = 5.0  # FilterLogEvents requests/s per account and Region
EVENTS_PER_CALL = 700  # 1 MB page of ~1.5 KB audit events
READS_PER_EVENT = 2.2  # the head reads' and the sweep's (measured: 2.16-2.25)
SWEEP_STEP_S = 60  # the sweep reads each group's past in steps of a minute (lookback >= 240 s)
_POLLS_PER_LAG = 2  # a group is read at least every 2 × polling_interval


def _calls_per_group(polling_interval: float) -> float:
    """FilterLogEvents calls/s a busy log group needs at the least: its polls and its sweep."""
    return 1 / (_POLLS_PER_LAG * max(polling_interval, 1)) + 1 / SWEEP_STEP_S


def groups_served(cap: float, polling_interval: float) -> int:
    """Busy log groups a FilterLogEvents cap of `cap` calls/s reads every 2 × polling_interval (and
    sweeps)."""
    return int(cap / _calls_per_group(polling_interval))


def events_served(cap: float) -> int:
    """Events/s (1.5 KB) a cap of `cap` FilterLogEvents calls/s can deliver at most, in all."""
    return int(cap * EVENTS_PER_CALL / READS_PER_EVENT)


def capacity_problem(groups: int, cap: float, polling_interval: float) -> str | None:
    """None when `groups` busy log groups fit the cap; else what to change, in one sentence."""
    served = groups_served(cap, polling_interval)
    if groups <= served:
        return None
    period = _POLLS_PER_LAG * max(polling_interval, 1)
    need = groups * _calls_per_group(polling_interval)
    raise_cap = (
        f"Raise max_api_calls_per_second to {need:.1f} if no other reader uses the account's "
        f"{FILTER_QUOTA:g}/s FilterLogEvents quota, "
        if need <= FILTER_QUOTA
        else ""
    )
    # the polling_interval at which the polls and the sweeps of `groups` fit the cap, if one does
    spare = cap / groups - 1 / SWEEP_STEP_S
    interval = math.ceil(1 / (_POLLS_PER_LAG * spare)) if spare > 0 else 0
    slower = (
        f"{'raise' if raise_cap else 'Raise'} polling_interval to {interval}, or use stream mode"
        if interval
        else f"{'use' if raise_cap else 'Use'} stream mode"
    )
    return (
        f"{groups} log groups need about {need:.1f} FilterLogEvents calls/s to be read every {period:g}s "
        f"(2 x polling_interval) and swept every {SWEEP_STEP_S}s while busy, but max_api_calls_per_second "
        f"{cap:g} serves about {served}: busy groups will fall behind. {raise_cap}{slower} "
        "(open_params kinesis://STREAM: no FilterLogEvents quota)"
    )
