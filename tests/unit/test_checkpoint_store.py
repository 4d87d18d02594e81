"""checkpoint_store: per-unit states survive a restart, torn journal lines, compaction and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8saudit_eks_py.checkpoint_store import MAX_STATE_BYTES, FileStore, MemoryStore, clear_memory
from k8saudit_eks_py.errors import OpenError


def test_saved_states_are_loaded_by_a_new_store(tmp_path: Path) -> None:
    path = str(tmp_path / "cp")
    store = FileStore(path)
    store.save({"a": {"streams": {"s1": [10, ["e1"]]}}})
    store.save({"b": {"seq": "42"}})
    store.save({"a": {"streams": {"s1": [11, ["e2"]]}}})
    # no close: a kill -9 after the last save returned
    again = FileStore(path)
    assert again.load("a") == {"streams": {"s1": [11, ["e2"]]}}
    assert again.load("b") == {"seq": "42"}
    assert again.load("c") is None
    assert store.writes == 3


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = str(tmp_path / "cp")
    store = FileStore(path)
    store.save({"a": {"n": 1}})
    with open(path + ".journal", "ab") as f:
        f.write(b'{"a":{"n":')
    again = FileStore(path)
    assert again.load("a") == {"n": 1}
    assert again.skipped_lines == 1


def test_compaction_keeps_every_unit_and_empties_the_journal(tmp_path: Path) -> None:
    path = str(tmp_path / "cp")
    store = FileStore(path, compact_bytes=200)
    for i in range(50):
        store.save({f"u{i % 3}": {"n": i}})
    assert (tmp_path / "cp").stat().st_size > 0
    assert (tmp_path / "cp.journal").stat().st_size < 200
    again = FileStore(path)
    assert [again.load(f"u{k}") for k in range(3)] == [{"n": 48}, {"n": 49}, {"n": 47}]
    store.close()
    assert (tmp_path / "cp.journal").stat().st_size == 0
    assert FileStore(path).load("u1") == {"n": 49}


def test_a_state_too_large_for_one_dynamodb_item_is_refused(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "cp"))
    with pytest.raises(ValueError, match="over"):
        store.save({"a": {"ids": ["x" * MAX_STATE_BYTES]}})
    assert FileStore(str(tmp_path / "cp")).load("a") is None


@pytest.mark.parametrize(
    "content", [b"not json", b'{"version": 1, "groups": []}', b'{"version": 7, "units": {}}', b"[1]"]
)
def test_an_unreadable_snapshot_fails_open_with_the_fix(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "cp").write_bytes(content)
    with pytest.raises(OpenError, match="move it away"):
        FileStore(str(tmp_path / "cp")).load("a")


def test_memory_store_survives_a_reopen_in_the_same_process() -> None:
    clear_memory()
    MemoryStore().save({"a": {"n": 1}})
    assert MemoryStore().load("a") == {"n": 1}
    clear_memory()
    assert MemoryStore().load("a") is None
