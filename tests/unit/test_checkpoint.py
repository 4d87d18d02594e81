"""checkpoint.py: snapshot + journal round trips, torn appends, idempotent replay, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from k8saudit_eks_py.checkpoint import FileCheckpoint, GroupState, MemoryCheckpoint, clear_memory
from k8saudit_eks_py.errors import OpenError


def test_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    assert FileCheckpoint(str(tmp_path / "none" / "cp.json")).load() == {}


def test_journal_records_survive_without_a_snapshot(tmp_path: Path) -> None:
    path = str(tmp_path / "cp.json")
    cp = FileCheckpoint(path)
    cp.record({"g": (100, [("a", 100), ("b", 150)])})
    cp.record({"g": (120, [("c", 130)]), "h": (5, [("z", 7)])})
    # no close: a kill -9 leaves the journal as it is
    state = FileCheckpoint(path).load()
    assert state["g"] == GroupState(120, {"b": 150, "c": 130})
    assert state["h"] == GroupState(5, {"z": 7})


def test_snapshot_replaces_atomically_and_empties_the_journal(tmp_path: Path) -> None:
    path = str(tmp_path / "cp.json")
    cp = FileCheckpoint(path)
    cp.record({"g": (1, [("a", 1)])})
    cp.snapshot({"g": GroupState(2, {"b": 2})})
    assert os.path.getsize(cp.journal_path) == 0
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    cp.record({"g": (2, [("c", 3)])})
    cp.close()
    assert FileCheckpoint(path).load() == {"g": GroupState(2, {"b": 2, "c": 3})}
    assert cp.writes == 3


def test_replaying_an_old_journal_over_a_newer_snapshot_is_harmless(tmp_path: Path) -> None:
    """A crash between the snapshot's rename and the journal truncation."""
    path = str(tmp_path / "cp.json")
    cp = FileCheckpoint(path)
    cp.record({"g": (10, [("a", 10), ("b", 20)])})
    journal = Path(cp.journal_path).read_bytes()
    cp.snapshot({"g": GroupState(15, {"b": 20, "c": 30})})
    Path(cp.journal_path).write_bytes(journal)
    assert FileCheckpoint(path).load() == {"g": GroupState(15, {"b": 20, "c": 30})}


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = str(tmp_path / "cp.json")
    cp = FileCheckpoint(path)
    cp.record({"g": (10, [("a", 10)])})
    cp.close()
    with open(cp.journal_path, "ab") as f:
        f.write(b'{"g":[10,[["b",1')
    reloaded = FileCheckpoint(path)
    assert reloaded.load() == {"g": GroupState(10, {"a": 10})}
    assert reloaded.skipped_lines == 1


def test_compaction_threshold(tmp_path: Path) -> None:
    cp = FileCheckpoint(str(tmp_path / "cp.json"), compact_bytes=200)
    cp.record({"g": (1, [("a", 1)])})
    assert not cp.needs_compaction()
    cp.record({"g": (1, [(f"id-{i}", 1) for i in range(20)])})
    assert cp.needs_compaction()
    cp.snapshot({"g": GroupState(1, {"a": 1})})
    assert not cp.needs_compaction()


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 99, "groups": {}}', b'{"version": 1}'])
def test_unreadable_snapshot_fails_open_with_the_fix(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    with pytest.raises(OpenError, match="move it away"):
        FileCheckpoint(str(path)).load()


def test_memory_checkpoint_survives_close_and_open() -> None:
    clear_memory()
    first = MemoryCheckpoint()
    assert first.load() == {}
    first.snapshot({"k": GroupState(3, {"x": 4})})
    loaded = MemoryCheckpoint().load()
    assert loaded == {"k": GroupState(3, {"x": 4})}
    loaded["k"].ids["y"] = 5  # a copy: mutating it does not change the stored state
    assert MemoryCheckpoint().load()["k"].ids == {"x": 4}
    clear_memory()
    assert MemoryCheckpoint().load() == {}
