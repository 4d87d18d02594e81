"""Per-stream read positions of one log group: what is read, what is new, what the checkpoint holds."""

from __future__ import annotations

import orjson
import pytest

from k8saudit_eks_py.checkpoint_store import MAX_STATE_BYTES
from k8saudit_eks_py.sources.cloudwatch.streams import MAX_NAMES, GroupPositions, Read, ReadParams

PARAMS = ReadParams(
    lookback_ms=60_000, overlap_ms=1_000, together_ms=500, idle_every_ms=15_000, retire_ms=600_000
)
NOW = 10_000_000


def fresh(shift_ms: int = 60_000, now: int = NOW) -> GroupPositions:
    return GroupPositions(PARAMS, None, now, shift_ms)


def read_all(g: GroupPositions, read: Read, events: list[tuple[str, str, int]]) -> list[str]:
    """Feed a read's events; return the ids accepted; finish the read."""
    got = [eid for name, eid, ts in events if name in read.names and read.start <= ts <= read.end]
    accepted = [eid for name, eid, ts in events if eid in got and g.accept(name, eid, ts)]
    found: dict[str, int] = {}
    for name, eid, _ts in events:
        if eid in accepted:
            found[name] = found.get(name, 0) + 1
    g.finished(read, found, read.end)
    return accepted


def test_first_start_reads_new_streams_from_now_minus_shift() -> None:
    g = fresh(shift_ms=3_600_000)
    g.found("a")
    (read,) = g.plan(NOW)
    assert read == Read(("a",), NOW - 3_600_000, NOW)


def test_each_stream_is_read_from_its_own_position_minus_the_overlap() -> None:
    g = fresh()
    g.found("a")
    g.found("b")
    (read,) = g.plan(NOW)
    events = [("a", "a1", NOW - 500), ("a", "a2", NOW - 100), ("b", "b1", NOW - 300)]
    assert read_all(g, read, events) == ["a1", "a2", "b1"]
    g.followed(NOW)
    (again,) = g.plan(NOW + 5_000)
    assert again.start == NOW - 300 - 1_000  # b's position minus the overlap, within together_ms of a's
    more = [*events, ("a", "a3", NOW + 4_000), ("b", "b2", NOW + 4_500)]
    assert read_all(g, again, more) == ["a3", "b2"]  # the overlap's events are recognised, not repeated


def test_same_millisecond_bursts_and_overlap_repeats_are_accepted_once() -> None:
    g = fresh()
    g.found("a")
    (read,) = g.plan(NOW)
    burst = [("a", f"e{i}", NOW - 2 + i % 3) for i in range(3000)]
    assert len(read_all(g, read, burst)) == 3000
    (again,) = g.plan(NOW + 1)
    assert read_all(g, again, burst) == []


def test_a_late_stream_is_read_from_the_front_minus_lookback_not_before() -> None:
    g = fresh()
    g.found("a")
    (read,) = g.plan(NOW)
    read_all(g, read, [("a", "a1", NOW - 10)])
    g.followed(NOW)
    later = NOW + 200_000
    g.followed(later)
    g.found("late")  # appears with events 3 minutes old and some beyond lookback
    reads = g.plan(later + 1)
    late_read = next(r for r in reads if "late" in r.names)
    assert late_read.start == later - 60_000
    events = [("late", "old", later - 70_000), ("late", "l1", later - 50_000), ("late", "l2", later - 40_000)]
    assert read_all(g, late_read, events) == ["l1", "l2"]


def test_a_lagging_stream_gets_a_read_of_its_own_and_does_not_drag_the_others_back() -> None:
    g = fresh(shift_ms=300_000)
    g.found("fast")
    g.found("slow")
    (read,) = g.plan(NOW)
    read_all(g, read, [("fast", "f1", NOW - 10), ("slow", "s1", NOW - 200_000)])
    g.followed(NOW)
    reads = g.plan(NOW + 5_000)
    by_name = {name: r for r in reads for name in r.names}
    assert by_name["fast"].start == NOW - 10 - 1_000
    assert by_name["slow"].start == NOW - 200_000 - 1_000
    assert by_name["fast"] is not by_name["slow"]
    # The slow stream catches up: once its position is within together_ms it shares the read again.
    read_all(g, by_name["slow"], [("slow", "s2", NOW + 4_990)])
    read_all(g, by_name["fast"], [("fast", "f2", NOW + 4_990)])
    (merged,) = g.plan(NOW + 10_000)
    assert set(merged.names) == {"fast", "slow"}


def test_quiet_streams_are_read_every_idle_period_or_when_listed_as_moved() -> None:
    g = fresh(shift_ms=600_000)
    g.found("busy")
    g.found("quiet")
    (read,) = g.plan(NOW)
    read_all(g, read, [("busy", "b1", NOW - 10), ("quiet", "q1", NOW - 120_000)])
    # busy found events: read again next poll; quiet too (it found one). Afterwards quiet finds nothing.
    reads = g.plan(NOW + 5_000)
    for r in reads:
        read_all(g, r, [("busy", "b2", NOW + 4_000)])
    names = {n for r in g.plan(NOW + 10_000) for n in r.names}
    assert names == {"busy"}  # quiet: not moved, idle period not over
    g.found("quiet", last_event_ms=NOW + 9_000)  # DescribeLogStreams: it moved
    assert {n for r in g.plan(NOW + 11_000) for n in r.names} >= {"quiet"}
    g2 = fresh(shift_ms=600_000)
    g2.found("quiet")
    (r0,) = g2.plan(NOW)
    read_all(g2, r0, [])
    g2.followed(NOW)
    assert g2.plan(NOW + 5_000) == []
    assert [r.names for r in g2.plan(NOW + 15_000)] == [("quiet",)]  # the idle period is the safety net


def test_streams_listed_with_a_long_past_last_event_are_read_only_once_they_move() -> None:
    g = fresh()
    g.followed(NOW)
    g.found("gone", last_event_ms=NOW - PARAMS.retire_ms - 1)  # an API server replaced long ago
    g.found("live", last_event_ms=NOW - 1_000)
    assert [r.names for r in g.plan(NOW + 1)] == [("live",)]
    assert [r.names for r in g.plan(NOW + PARAMS.idle_every_ms + 2)] == [("live",)]
    g.found("gone", last_event_ms=NOW + 5)
    back = next(r for r in g.plan(NOW + PARAMS.idle_every_ms + 3) if "gone" in r.names)
    read_all(g, back, [("gone", "g1", NOW + 5)])
    read_all(g, back, [])  # quiet again: now read on idle rounds like any other stream
    assert "gone" in {n for r in g.plan(NOW + 3 * PARAMS.idle_every_ms) for n in r.names}


def test_at_most_100_names_per_read() -> None:
    g = fresh()
    for i in range(250):
        g.found(f"s{i:03d}")
    reads = g.plan(NOW)
    assert [len(r.names) for r in reads] == [MAX_NAMES, MAX_NAMES, 50]
    assert len({n for r in reads for n in r.names}) == 250


def test_checkpoint_restores_positions_exactly() -> None:
    g = fresh()
    g.found("a")
    (read,) = g.plan(NOW)
    events = [("a", "x", NOW - 5), ("a", "y", NOW - 1), ("a", "z", NOW - 1)]
    read_all(g, read, events)
    for s in g.streams.values():
        s.queued = 3
    g.delivered("a", "x", NOW - 5)
    g.delivered("a", "y", NOW - 1)  # z read but not delivered
    state = orjson.loads(orjson.dumps(g.state(NOW)))
    GroupPositions.check_state(state)
    assert state["streams"] == {"a": [NOW - 1, ["y"]]}
    restored = GroupPositions(PARAMS, state, NOW + 60_000, 0)
    (again,) = restored.plan(NOW + 60_000)
    assert again.start == NOW - 1  # no overlap after a restart: nothing before the position is repeated
    assert read_all(restored, again, events) == ["z"]


def test_checkpoint_front_stays_behind_streams_with_undelivered_events() -> None:
    g = fresh()
    g.followed(NOW)
    g.found("new")
    (read,) = g.plan(NOW + 1)
    read_all(g, read, [("new", "n1", NOW - 30_000)])
    g.streams["new"].queued = 1
    g.followed(NOW + 5_000)
    state = g.state(NOW + 5_000)
    assert state["front"] == NOW and state["streams"] == {}
    restored = GroupPositions(PARAMS, state, NOW + 100_000, 0)
    restored.found("new")
    (again,) = restored.plan(NOW + 100_000)
    assert again.start <= NOW - 30_000  # the undelivered event is found again


def test_checkpoint_stays_small_and_forgets_retired_streams() -> None:
    g = fresh()
    for i in range(300):
        g.found(f"s{i}")
    (r1, r2, r3) = g.plan(NOW)
    events = [(f"s{i}", f"{i:056d}", NOW - i) for i in range(300)]
    for r in (r1, r2, r3):
        read_all(g, r, events)
    for name, eid, ts in events:
        g.streams[name].queued = 1
        g.delivered(name, eid, ts)
    state = g.state(NOW)
    assert len(state["streams"]) == PARAMS.max_streams  # the newest
    assert len(orjson.dumps(state)) < 16_384 < MAX_STATE_BYTES
    later = g.state(NOW + PARAMS.retire_ms + 1_000)
    assert later["streams"] == {}


def test_invalid_states_are_refused() -> None:
    for bad in ({}, {"version": 9, "origin": 1, "front": 1, "streams": {}}, {"version": 1, "origin": "x"}):
        with pytest.raises((ValueError, KeyError, TypeError)):
            GroupPositions.check_state(bad)


def test_derived_defaults() -> None:
    p = ReadParams.derive(600, 5)
    assert p == ReadParams(
        lookback_ms=600_000,
        overlap_ms=500,
        together_ms=500,
        idle_every_ms=15_000,
        retire_ms=3_600_000,
        window_max_ms=500,  # disorder is waited for (settle), not re-read
        settle_max_ms=10_000,
        sweep_step_ms=60_000,
        sweep_margin_ms=5_000,
    )
    assert ReadParams.derive(20, 1).sweep_step_ms == 10_000  # whole buckets, at least one
    assert ReadParams.derive(0, 0).idle_every_ms == 3_000


# ------------------------------------------------------------------ discovery: one prefix read per poll


def read_prefix(g: GroupPositions, read: Read, events: list[tuple[str, str, int]]) -> list[str]:
    """Feed what a read returns (a prefix read: every stream's events in its range); return the ids
    taken; finish the read."""
    found: dict[str, int] = {}
    taken = []
    for name, eid, ts in events:
        if (
            read.start <= ts <= read.end
            and (read.prefix or name in read.names)
            and g.take(read, name, eid, ts)
        ):
            taken.append(eid)
            found[name] = found.get(name, 0) + 1
    g.finished(read, found, read.end)
    return taken


def poll(g: GroupPositions, now: int, events: list[tuple[str, str, int]]) -> tuple[list[Read], list[str]]:
    reads = g.plan(now, discover=True)
    taken = [eid for r in reads for eid in read_prefix(g, r, events)]
    g.followed(now)
    return reads, taken


def test_first_start_needs_no_listing_new_streams_come_with_the_prefix_read() -> None:
    g = fresh(shift_ms=60_000)
    (read,) = g.plan(NOW, discover=True)
    assert read == Read((), NOW - 60_000, NOW, prefix=True)
    events = [("a", "a1", NOW - 30_000), ("b", "b1", NOW - 10)]
    assert read_prefix(g, read, events) == ["a1", "b1"]
    assert set(g.streams) == {"a", "b"}


def test_a_new_stream_in_the_prefix_read_is_then_read_from_the_front_minus_lookback() -> None:
    g = fresh()
    events = [("a", f"a{i}", NOW + i * 10) for i in range(3_000)]  # 100 events/s
    for i in range(4):  # steady state: one prefix read per poll
        reads, _ = poll(g, NOW + i * 5_000, events)
        assert len(reads) == 1 and reads[0].prefix
    # A new API server's stream: events from 40 s ago (ingested late) up to now.
    now = NOW + 20_000
    new = [("b", f"b{i}", now - 40_000 + i * 10_000) for i in range(5)]
    new += [("b", f"c{i}", now + i * 10) for i in range(1_000)]  # and from now on, like "a"
    reads, taken = poll(g, now, events + new)
    # b's range starts before the read: not taken here, but known now and marked to be read
    assert not [t for t in taken if t.startswith("b")] and g.streams["b"].moved
    reads, taken = poll(g, now + 5_000, events + new)
    by_name = {n: r for r in reads for n in r.names}
    assert not by_name["b"].prefix and by_name["b"].start == now - 60_000  # front - lookback
    assert sorted(t for t in taken if t.startswith("b")) == [f"b{i}" for i in range(5)]
    reads, taken = poll(g, now + 10_000, events + new)
    assert len(reads) == 1 and set(reads[0].names) == {"a", "b"}  # together again


def test_a_revived_stream_is_read_from_its_own_position_so_its_late_events_are_not_skipped() -> None:
    g = fresh(shift_ms=600_000)
    busy = [("busy", f"b{i}", NOW - 10_000 + i) for i in range(0, 40_000, 50)]  # 20 events/s
    events = [("old", "o1", NOW - 500_000), *busy]
    poll(g, NOW, events)
    poll(g, NOW + 5_000, events)
    poll(g, NOW + 10_000, events)
    poll(g, NOW + 15_000, events)  # an idle round: "old" read on its own, nothing new
    # "old" wakes up: an event now and one ingested late, between its position and the busy read's start.
    later = [*events, ("old", "o2", NOW - 200_000), ("old", "o3", NOW + 14_000)]
    reads, taken = poll(g, NOW + 20_000, later)
    assert [r.prefix for r in reads] == [True] and "o3" not in taken and g.streams["old"].moved
    reads, taken = poll(g, NOW + 25_000, later)
    own = next(r for r in reads if "old" in r.names and not r.prefix)
    assert own.start == NOW - 500_000 - PARAMS.overlap_ms
    assert sorted(t for t in taken if t.startswith("o")) == ["o2", "o3"]


def test_a_lagging_stream_of_a_busy_group_keeps_its_own_read_a_quiet_groups_merge_into_one() -> None:
    busy = fresh(shift_ms=300_000)
    dense = [("fast", f"f{i}", NOW - 20_000 + i) for i in range(0, 20_000, 20)]  # 50 events/s
    poll(busy, NOW - 5_000, dense)
    poll(busy, NOW, dense)
    busy.found("slow")  # a listing finds a stream whose events are all behind the common position
    reads, taken = poll(busy, NOW + 5_000, [*dense, ("slow", "s1", NOW - 50_000)])
    assert [r.prefix for r in reads] == [True, False]  # merging would re-read ~a minute of "fast"
    assert reads[1].names == ("slow",) and taken == ["s1"]
    quiet = fresh(shift_ms=300_000)
    sparse = [("a", "a1", NOW - 20_000), ("b", "b1", NOW - 120_000)]
    poll(quiet, NOW - 5_000, sparse)
    poll(quiet, NOW, sparse)
    for t in range(NOW + 5_000, NOW + 40_000, 5_000):  # idle rounds included: one read each poll
        reads, taken = poll(quiet, t, sparse)
        assert len(reads) == 1 and reads[0].prefix and taken == []
    assert reads[0].start <= NOW - 120_000  # covering both streams' positions


def test_a_prefix_read_never_moves_a_stream_it_does_not_cover() -> None:
    g = fresh(shift_ms=300_000)
    poll(g, NOW, [("fast", "f1", NOW - 10), ("slow", "s1", NOW - 100_000)])
    (head, *_) = g.plan(NOW + 5_000, discover=True)
    assert head.prefix and "slow" not in head.names
    assert not g.take(head, "slow", "s2", NOW + 4_000)  # would skip slow's events before head.start
    assert g.streams["slow"].pos == NOW - 100_000 and g.streams["slow"].moved
