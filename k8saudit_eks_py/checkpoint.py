"""Durable read position per log group: a horizon (ms) and the eventIds already delivered at or after it.

Layout: `<checkpoint_file>` is a snapshot written atomically (temp file, fsync, rename, fsync of the
directory); `<checkpoint_file>.journal` gets one fsynced JSON line per delivered batch, so recording a batch
costs one small append instead of rewriting every id in the window. Loading replays the journal over the
snapshot; replay is idempotent (horizon = max, ids = union), so a crash between the rename and the journal
truncation is harmless, and a torn last line is a batch that was never returned (it is written before
next_batch returns).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import orjson

from k8saudit_eks_py.errors import OpenError

VERSION = 1


@dataclass(slots=True)
class GroupState:
    horizon: int
    ids: dict[str, int] = field(default_factory=dict)

    def merge(self, horizon: int, ids: Iterable[tuple[str, int]]) -> None:
        if horizon > self.horizon:
            self.horizon = horizon
            self.ids = {eid: ts for eid, ts in self.ids.items() if ts >= horizon}
        for eid, ts in ids:
            if ts >= self.horizon:
                self.ids[eid] = ts


State = dict[str, GroupState]
# One journal record: key → (horizon, ids delivered in this batch).
Delta = Mapping[str, tuple[int, list[tuple[str, int]]]]


def _apply(state: State, delta: Mapping[str, object]) -> None:
    for key, value in delta.items():
        horizon, ids = cast(tuple[int, list[tuple[str, int]]], value)
        entry = state.get(key)
        if entry is None:
            state[key] = entry = GroupState(int(horizon))
        entry.merge(int(horizon), ((str(e), int(t)) for e, t in ids))


def _encode(state: State) -> bytes:
    return orjson.dumps(
        {
            "version": VERSION,
            "groups": {k: {"horizon": g.horizon, "ids": list(g.ids.items())} for k, g in state.items()},
        }
    )


class FileCheckpoint:
    def __init__(self, path: str, compact_bytes: int = 4 << 20) -> None:
        self.path = os.path.abspath(path)
        self.journal_path = self.path + ".journal"
        self.compact_bytes = compact_bytes
        self.writes = 0
        self.skipped_lines = 0
        self._journal_fd: int | None = None
        self._journal_size = 0
        self._unsynced = False

    def load(self) -> State:
        """Snapshot + journal. OpenError (with the fix) when the snapshot is unreadable."""
        state: State = {}
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            raise OpenError(f"cannot read checkpoint_file {self.path}: {exc}") from None
        if raw:
            try:
                doc = orjson.loads(raw)
                if doc.get("version") != VERSION:
                    raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
                for key, g in doc["groups"].items():
                    state[key] = GroupState(int(g["horizon"]), {str(e): int(t) for e, t in g["ids"]})
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise OpenError(
                    f"checkpoint_file {self.path} is not a valid checkpoint ({exc}); move it away to start "
                    "from now - shift, or point checkpoint_file elsewhere"
                ) from None
        try:
            with open(self.journal_path, "rb") as f:
                for line in f:
                    try:
                        _apply(state, orjson.loads(line))
                    except (ValueError, TypeError):
                        self.skipped_lines += 1  # a torn append: that batch was never returned
        except FileNotFoundError:
            pass
        return state

    def _open_journal(self) -> int:
        if self._journal_fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._journal_size = os.fstat(self._journal_fd).st_size
        return self._journal_fd

    def record(self, delta: Delta) -> None:
        """Append one batch. Once write(2) returns, the record survives the death of the process (kill -9):
        that is the commit point; the source calls it when Falco asks for the next batch. The fdatasync
        that makes it survive a power loss is done for the previous record, before this one is written
        (group commit: after a power loss, at most the last batch is delivered again)."""
        if not delta:
            return
        fd = self._open_journal()
        if self._unsynced:
            os.fdatasync(fd)
        line = orjson.dumps({k: [h, ids] for k, (h, ids) in delta.items()}) + b"\n"
        os.write(fd, line)
        self._unsynced = True
        self._journal_size += len(line)
        self.writes += 1

    def needs_compaction(self) -> bool:
        return self._journal_size >= self.compact_bytes

    def snapshot(self, state: State) -> None:
        """Replace the snapshot atomically with `state`, then empty the journal it supersedes."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{self.path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _encode(state))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        fd = self._open_journal()
        os.ftruncate(fd, 0)
        os.fsync(fd)
        self._unsynced = False
        self._journal_size = 0
        self.writes += 1

    def close(self) -> None:
        fd, self._journal_fd = self._journal_fd, None
        if fd is not None:
            if self._unsynced:
                os.fdatasync(fd)
            os.close(fd)


# Without checkpoint_file, a close/open in the same process (Falco hot reload) still resumes where it was.
_MEMORY: State = {}
_MEMORY_LOCK = threading.Lock()


class MemoryCheckpoint:
    writes = 0

    def load(self) -> State:
        with _MEMORY_LOCK:
            return {k: GroupState(g.horizon, dict(g.ids)) for k, g in _MEMORY.items()}

    def record(self, delta: Delta) -> None:
        """Nothing to do: in-process state only matters for an orderly close, which snapshots."""

    def needs_compaction(self) -> bool:
        return False

    def snapshot(self, state: State) -> None:
        with _MEMORY_LOCK:
            for key, g in state.items():
                _MEMORY[key] = GroupState(g.horizon, dict(g.ids))

    def close(self) -> None:
        pass


def clear_memory() -> None:
    """Forget in-process positions (tests, or a deliberate fresh start)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


Checkpoint = FileCheckpoint | MemoryCheckpoint
