"""A checkpoint file of an earlier release (version 1: horizon + delivered eventIds per log group) is read
into today's states: nothing after the horizon is lost, nothing it delivered is delivered again."""

from __future__ import annotations

from pathlib import Path

import orjson

from k8saudit_eks_py.checkpoint_migrate import LEGACY_IDS
from k8saudit_eks_py.checkpoint_store import FileStore
from k8saudit_eks_py.sources.cloudwatch.streams import GroupPositions, ReadParams

KEY = "aws|us-east-1|/aws/eks/prod/cluster"
PARAMS = ReadParams(
    lookback_ms=600_000, overlap_ms=500, together_ms=500, idle_every_ms=15_000, retire_ms=3_600_000
)


def write_v1(path: Path, horizon: int, ids: list[tuple[str, int]], journal: list[dict[str, object]]) -> None:
    doc = {"version": 1, "groups": {KEY: {"horizon": horizon, "ids": [list(i) for i in ids]}}}
    path.write_bytes(orjson.dumps(doc))
    if journal:
        Path(f"{path}.journal").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in journal))


def test_a_version_1_file_and_its_journal_become_one_state_per_group(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    write_v1(
        path,
        1_000,
        [("e1", 999), ("e2", 1_000), ("e3", 1_500)],
        # a later batch moved the horizon and delivered e4; a torn last line never returned
        [{KEY: [1_200, [["e4", 1_600]]]}],
    )
    with Path(f"{path}.journal").open("ab") as journal:
        journal.write(b'{"torn')
    state = FileStore(str(path)).load(KEY)
    assert state is not None
    assert (state["origin"], state["front"], state["streams"]) == (1_200, 1_200, {})
    assert state[LEGACY_IDS] == {"e3": 1_500, "e4": 1_600}  # e1, e2 are before the horizon: not read
    GroupPositions.check_state(state)


def test_a_migrated_file_is_rewritten_in_todays_version_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    write_v1(path, 1_000, [("e3", 1_500)], [])
    store = FileStore(str(path))
    state = store.load(KEY)
    assert state is not None
    store.save({KEY: state})
    store.close()
    assert orjson.loads(path.read_bytes())["version"] == 2
    assert FileStore(str(path)).load(KEY) == state


def test_ids_delivered_before_the_upgrade_are_skipped_and_move_their_stream() -> None:
    state = {"version": 1, "origin": 1_000, "front": 1_000, "streams": {}, LEGACY_IDS: {"e2": 1_100}}
    g = GroupPositions(PARAMS, state, now_ms=5_000, shift_ms=0)
    g.found("s1")
    (read,) = g.plan(5_000)
    assert read.start == 1_000  # every stream is read again from the old horizon
    assert g.accept("s1", "e1", 1_050)  # after the horizon, never delivered: delivered now
    g.streams["s1"].queued += 1
    g.delivered("s1", "e1", 1_050)
    assert not g.accept("s1", "e2", 1_100)  # delivered by the earlier release
    assert g.accept("s1", "e3", 1_200)
    g.streams["s1"].queued += 1
    assert g.state(5_000)[LEGACY_IDS] == {}  # kept until a whole poll has gone past the horizon
    g.finished(read, {"s1": 2}, 5_000)
    g.followed(5_000)
    g.delivered("s1", "e3", 1_200)
    after = g.state(5_000)
    assert LEGACY_IDS not in after
    assert after["streams"] == {"s1": [1_200, ["e3"]]}


def test_a_skipped_id_does_not_move_a_stream_past_events_still_queued() -> None:
    state = {"version": 1, "origin": 1_000, "front": 1_000, "streams": {}, LEGACY_IDS: {"e2": 1_100}}
    g = GroupPositions(PARAMS, state, now_ms=5_000, shift_ms=0)
    g.found("s1")
    assert g.accept("s1", "e1", 1_050)
    g.streams["s1"].queued += 1  # queued for Falco, not yet delivered (as the source counts it)
    assert not g.accept("s1", "e2", 1_100)
    assert g.state(5_000)["streams"] == {}  # nothing delivered yet: a restart reads e1 again
