"""window.py against a simulated CloudWatch: events become visible after a delay; scans see the visible."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from k8saudit_eks_py.sources.window import Delivered, Scan, Window, WindowParams

PARAMS = WindowParams(lookback_ms=60_000, overlap_ms=5_000, sweep_every_ms=15_000, step_ms=180_000)


def simulate(
    events: list[tuple[str, int, int]],
    params: WindowParams,
    start_ms: int,
    end_ms: int,
    poll_ms: int,
    seed: int,
) -> dict[str, int]:
    """events: (eventId, timestamp, visible_at). Returns eventId → times accepted."""
    rng = random.Random(seed)
    window = Window(params, start_ms)
    accepted: dict[str, int] = {}
    now = start_ms
    while now <= end_ms:
        scan = window.plan(now)
        assert scan.start >= window.horizon and scan.end <= now
        visible = [e for e in events if e[2] <= now and scan.start <= e[1] <= scan.end]
        rng.shuffle(visible)  # pages come in any order (stream by stream, interleaved, ...)
        for event_id, ts, _ in visible:
            if window.accept(event_id, ts):
                accepted[event_id] = accepted.get(event_id, 0) + 1
        window.complete(scan)
        # catch-up scans run back to back; caught-up scans wait a polling interval
        now += 1 if scan.end < now else poll_ms
    return accepted


@settings(max_examples=60, deadline=None)
@given(
    delays=st.lists(st.integers(0, 60_000), min_size=1, max_size=120),
    seed=st.integers(0, 2**32),
    poll=st.sampled_from([1_000, 5_000, 20_000]),
)
def test_every_event_within_lookback_accepted_exactly_once(delays: list[int], seed: int, poll: int) -> None:
    rng = random.Random(seed)
    t0 = 1_000_000
    events = []
    for i, delay in enumerate(delays):
        ts = t0 + rng.randrange(0, 120_000)
        events.append((f"e{i}", ts, ts + delay))
    accepted = simulate(
        events, PARAMS, t0, t0 + 120_000 + 60_000 + 2 * PARAMS.sweep_every_ms + poll, poll, seed
    )
    assert accepted == {e[0]: 1 for e in events}


def test_events_later_than_lookback_are_not_read_again() -> None:
    t0 = 1_000_000
    events = [("late", t0 + 1_000, t0 + 1_000 + 200_000), ("ok", t0 + 1_000, t0 + 1_000 + 30_000)]
    accepted = simulate(events, PARAMS, t0, t0 + 400_000, 5_000, 0)
    assert accepted == {"ok": 1}


def test_catch_up_scans_in_chunks_and_memory_stays_bounded() -> None:
    t0 = 0
    window = Window(PARAMS, t0)
    now = 10 * PARAMS.step_ms
    largest = 0
    scans = 0
    while window.behind(now):
        scan = window.plan(now)
        assert scan.sweep and scan.end - scan.start <= PARAMS.step_ms + PARAMS.lookback_ms
        for ts in range(scan.start, scan.end + 1, 100):  # one event every 100 ms
            window.accept(f"{ts}", ts)
        largest = max(largest, len(window))
        window.complete(scan)
        scans += 1
    assert scans >= 9
    assert largest <= (PARAMS.step_ms + PARAMS.lookback_ms) // 100 + 1


def test_head_scans_overlap_and_sweeps_reach_back_by_lookback() -> None:
    window = Window(PARAMS, 0)
    first = window.plan(1_000)
    assert first == Scan(0, 1_000, False)
    window.complete(first)
    head = window.plan(6_000)
    assert head == Scan(0, 6_000, False)  # overlap reaches the horizon
    window.complete(head)
    window.complete(window.plan(100_000))  # a sweep: horizon moves to 100 s - lookback
    assert window.horizon == 40_000
    assert window.plan(105_000) == Scan(95_000, 105_000, False)
    sweep = window.plan(100_000 + PARAMS.sweep_every_ms)
    assert sweep == Scan(40_000, 115_000, True)


def test_horizon_never_moves_back_before_the_start() -> None:
    window = Window(PARAMS, 500_000)
    window.complete(Scan(500_000, 510_000, True))
    assert window.horizon == 500_000
    assert not window.accept("old", 499_999)


def test_restored_window_suppresses_delivered_ids() -> None:
    window = Window(PARAMS, 1_000, [("a", 1_000), ("b", 2_000), ("gone", 999)])
    assert len(window) == 2
    assert not window.accept("a", 1_000)
    assert window.accept("c", 1_500)
    assert window.accept("gone", 1_001)


def test_delivered_prunes_below_horizon_only_forward() -> None:
    d = Delivered(100, [("x", 100), ("y", 200)])
    assert not d.advance(50)
    assert d.advance(150)
    assert d.ids == {"y": 200}
    d.add("z", 300)
    assert d.horizon == 150 and set(d.ids) == {"y", "z"}


def test_derived_defaults() -> None:
    p = WindowParams.derive(600, 5)
    assert p == WindowParams(
        lookback_ms=600_000, overlap_ms=30_000, sweep_every_ms=150_000, step_ms=1_800_000
    )
    zero = WindowParams.derive(0, 0)
    assert zero.overlap_ms == 0 and zero.lookback_ms == 0 and zero.sweep_every_ms == 1_000
