"""Durable read positions, one small JSON object per work unit (a log group, a Kinesis shard).

A work unit's state is whatever its source needs to resume exactly where Falco stopped (per-stream
positions of a log group, the sequence number of a shard). It must stay small (a few KB) whatever the
event rate: the same states go into one DynamoDB item per unit when several replicas share the work.

`save()` is the commit point. Sources call it when Falco asks for the next batch, for the units the
previous batch touched; once it returns the states survive a kill -9 of the process.

FileStore layout: `<path>` is a snapshot written atomically (temp file, fsync, rename, fsync of the
directory); `<path>.journal` gets one JSON line per save with the full states of the units saved (later
lines win), so a save costs one small append. Loading replays the journal over the snapshot; a torn last
line is a save that never returned.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from k8saudit_eks_py import log
from k8saudit_eks_py.checkpoint_migrate import is_v1_delta, merge_v1_delta, migrate_v1
from k8saudit_eks_py.errors import OpenError

__all__ = ["MAX_STATE_BYTES", "CheckpointStore", "FileStore", "MemoryStore", "UnitState", "clear_memory"]

UnitState = dict[str, Any]
VERSION = 2
# A state larger than this is a bug (it would not fit a DynamoDB item beside the lease attributes).
MAX_STATE_BYTES = 256 * 1024


class CheckpointStore(Protocol):
    writes: int

    def load(self, unit: str) -> UnitState | None:
        """The unit's last saved state, or None when it has none."""
        ...

    def save(self, states: Mapping[str, UnitState]) -> None:
        """Durably record these units' states (each replaces the unit's previous state)."""
        ...

    def close(self) -> None: ...


def encode_state(unit: str, state: UnitState) -> bytes:
    """The state's JSON text; ValueError when it is larger than MAX_STATE_BYTES."""
    raw = orjson.dumps(state)
    if len(raw) > MAX_STATE_BYTES:
        raise ValueError(f"checkpoint state of {unit} is {len(raw)} bytes, over {MAX_STATE_BYTES}")
    return raw


class FileStore:
    def __init__(self, path: str, compact_bytes: int = 1 << 20) -> None:
        self.path = os.path.abspath(path)
        self.journal_path = self.path + ".journal"
        self.compact_bytes = compact_bytes
        self.writes = 0
        self.skipped_lines = 0
        self._states: dict[str, UnitState] | None = None
        self._journal_fd: int | None = None
        self._journal_size = 0
        self._unsynced = False

    def _all(self) -> dict[str, UnitState]:
        if self._states is None:
            self._states = self._read()
        return self._states

    def _read(self) -> dict[str, UnitState]:
        """Snapshot + journal. OpenError (with the fix) when the snapshot is unreadable."""
        states: dict[str, UnitState] = {}
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
                version = doc.get("version") if isinstance(doc, dict) else None
                if version == 1:  # an earlier release's file: read into today's states
                    states.update(migrate_v1(doc))
                    log.info(
                        f"checkpoint_file {self.path} was written by an earlier release (version 1): "
                        f"{len(states)} log groups migrated; it is rewritten in version {VERSION} at close"
                    )
                elif version != VERSION:
                    raise ValueError(f"version {version!r}, expected {VERSION} (or 1, migrated)")
                else:
                    units = doc["units"]
                    if not isinstance(units, dict):
                        raise ValueError("'units' is not an object")
                    states.update(units)
            except (ValueError, KeyError, TypeError) as exc:
                raise OpenError(
                    f"checkpoint_file {self.path} is not a valid checkpoint ({exc}); move it away to start "
                    "from now - shift, or point checkpoint_file elsewhere"
                ) from None
        try:
            with open(self.journal_path, "rb") as f:
                for line in f:
                    try:
                        record = orjson.loads(line)
                        if not isinstance(record, dict):
                            raise ValueError("not an object")
                        for unit, value in record.items():
                            if is_v1_delta(value):  # a batch journaled by an earlier release
                                merge_v1_delta(states, unit, value)
                            else:
                                states[unit] = value
                    except (ValueError, TypeError):
                        self.skipped_lines += 1  # a torn append: that save never returned
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OpenError(f"cannot read {self.journal_path}: {exc}") from None
        return states

    def load(self, unit: str) -> UnitState | None:
        state = self._all().get(unit)
        return dict(state) if isinstance(state, dict) else None

    def _open_journal(self) -> int:
        if self._journal_fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._journal_size = os.fstat(self._journal_fd).st_size
        return self._journal_fd

    def save(self, states: Mapping[str, UnitState]) -> None:
        """One journal line. Once write(2) returns, the line survives the death of the process; the
        fdatasync that makes it survive a power loss is done for the previous line before this one is
        written (group commit: after a power loss, at most the last batch is delivered again)."""
        if not states:
            return
        parts = [orjson.dumps(unit) + b":" + encode_state(unit, s) for unit, s in states.items()]
        line = b"{" + b",".join(parts) + b"}\n"
        fd = self._open_journal()
        if self._unsynced:
            os.fdatasync(fd)
        os.write(fd, line)
        self._unsynced = True
        self._journal_size += len(line)
        self.writes += 1
        self._all().update({unit: dict(s) for unit, s in states.items()})
        if self._journal_size >= self.compact_bytes:
            self._snapshot()

    def _snapshot(self) -> None:
        """Replace the snapshot atomically with every known state, then empty the journal."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{self.path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, orjson.dumps({"version": VERSION, "units": self._all()}))
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
        """Compact (a restart then reads one small file) and release the journal."""
        try:
            if self._journal_size:
                self._snapshot()
        finally:
            fd, self._journal_fd = self._journal_fd, None
            if fd is not None:
                if self._unsynced:
                    os.fdatasync(fd)
                os.close(fd)


# Without checkpoint_file, a close/open in the same process (Falco hot reload) still resumes where it was.
_MEMORY: dict[str, bytes] = {}
_MEMORY_LOCK = threading.Lock()


class MemoryStore:
    def __init__(self) -> None:
        self.writes = 0

    def load(self, unit: str) -> UnitState | None:
        with _MEMORY_LOCK:
            raw = _MEMORY.get(unit)
        return None if raw is None else dict(orjson.loads(raw))

    def save(self, states: Mapping[str, UnitState]) -> None:
        encoded = {unit: encode_state(unit, s) for unit, s in states.items()}
        with _MEMORY_LOCK:
            _MEMORY.update(encoded)

    def close(self) -> None:
        pass


def clear_memory() -> None:
    """Forget in-process positions (tests, or a deliberate fresh start)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
