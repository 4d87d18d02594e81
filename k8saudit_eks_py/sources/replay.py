"""file:// replay: audit events from JSON lines, a JSON EventList, or `aws logs filter-log-events` output,
plain or gzip-compressed. Every skipped line is reported (the first ones each, then rate-limited), and
the end of the file reports how many were skipped and why."""

from __future__ import annotations

import gzip
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import orjson

from k8saudit_eks_py import log, metrics
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.truncation import parse_rfc3339_ns
from k8saudit_eks_py.sources.types import Event

_GZIP_MAGIC = b"\x1f\x8b"
_REPORTED_EACH = 20  # skipped lines reported one by one; later ones are rate-limited
_NOT_AUDIT = "not audit events"
_INVALID_JSON = "invalid JSON"


def _is_audit_event(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind", "Event") == "Event" and "auditID" in doc


def _timestamp_ns(doc: dict[str, Any]) -> int:
    for key in ("stageTimestamp", "requestReceivedTimestamp"):
        ts = parse_rfc3339_ns(doc.get(key))
        if ts is not None:
            return ts
    return time.time_ns()  # Falco would stamp "now" too


class ReplaySource:
    """Streams one file; events keep their exact JSON text where the format has it (lines, messages)."""

    def __init__(self, path: str, config: PluginConfig) -> None:
        self._path = path
        try:
            self._size = os.path.getsize(path)
            self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise OpenError(f"cannot read replay file {path!r}: {exc.strerror}") from None
        self._gzip = self._raw.read(2) == _GZIP_MAGIC
        self._raw.seek(0)
        self._file: IO[bytes] = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if self._gzip else self._raw  # type: ignore[assignment]
        )
        self._read = 0
        self._skipped: Counter[str] = Counter()  # reason → lines
        self._counters = metrics.new_counters()
        self._events = self._generate()
        self._done = False
        log.info(f"replaying audit events from {path}")

    # -- formats -----------------------------------------------------------------------------------
    def _generate(self) -> Iterator[Event]:
        try:
            yield from self._formats()
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz, a read error
            log.error(f"{self._path}: cannot read further ({exc}); the events before were delivered")
        if self._skipped:
            total = sum(self._skipped.values())
            reasons = self._skipped.most_common()
            why = reasons[0][0] if len(reasons) == 1 else ", ".join(f"{n} {r}" for r, n in reasons)
            log.warning(f"{self._path}: {total} line{'s' if total > 1 else ''} skipped: {why}")

    def _formats(self) -> Iterator[Event]:
        first = self._file.readline()
        self._file.seek(0)
        try:
            head = orjson.loads(first)
            line_mode = _is_audit_event(head)
        except orjson.JSONDecodeError:
            line_mode = False
        if line_mode or first.strip()[:1] not in (b"{", b"["):
            yield from self._lines()
        else:
            yield from self._document()

    def _lines(self) -> Iterator[Event]:
        for number, line in enumerate(self._file, start=1):
            self._read += len(line)
            text = line.strip()
            if text:
                yield from self._one(text, f"line {number}")

    def _document(self) -> Iterator[Event]:
        data = self._file.read()
        self._read = len(data)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            # Not one JSON document: fall back to one event per line.
            self._file.seek(0)
            self._read = 0
            log.warning(f"{self._path} is not a single JSON document ({exc}); reading it as JSON lines")
            yield from self._lines()
            return
        if isinstance(doc, dict) and isinstance(doc.get("events"), list):
            items: list[Any] = doc["events"]  # aws logs filter-log-events / get-log-events output
        elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
            items = doc["items"]  # audit.k8s.io EventList
        elif isinstance(doc, list):
            items = doc
        else:
            items = [doc]
        for index, item in enumerate(items):
            where = f"item {index}"
            if isinstance(item, dict) and isinstance(item.get("message"), str):
                yield from self._one(item["message"].encode(), where)
            elif _is_audit_event(item):
                yield _timestamp_ns(item), orjson.dumps(item)
            else:
                self._malformed(where, _NOT_AUDIT, "not an audit event")

    def _one(self, text: bytes, where: str) -> Iterator[Event]:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self._malformed(where, _INVALID_JSON, f"invalid JSON ({exc})")
            return
        if not _is_audit_event(doc):
            self._malformed(where, _NOT_AUDIT, "not an audit event (no auditID)")
            return
        yield _timestamp_ns(doc), text

    def _malformed(self, where: str, reason: str, detail: str) -> None:
        self._counters[metrics.MALFORMED] += 1
        self._skipped[reason] += 1
        first_ones = sum(self._skipped.values()) <= _REPORTED_EACH
        log.warning(
            f"{self._path} {where}: skipped, {detail}", key=None if first_ones else "replay-malformed"
        )

    # -- Source protocol ---------------------------------------------------------------------------
    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        batch: list[Event] = []
        if not self._done:
            for event in self._events:
                batch.append(event)
                if len(batch) >= max_events:
                    break
            else:
                self._done = True
        self._counters[metrics.EVENTS] += len(batch)
        self._counters[metrics.BYTES] += sum(len(p) for _, p in batch)
        return batch, self._done

    def progress(self) -> tuple[int, str]:
        if self._done or self._size == 0:
            return 10000, f"{self._path}: done"
        read = self._raw.tell() if self._gzip else self._read  # compressed bytes consumed for .gz
        pct = min(10000, read * 10000 // self._size)
        return pct, f"{self._path}: {pct / 100:.2f}%"

    def metrics(self) -> dict[str, int | float]:
        return dict(self._counters)

    def close(self) -> None:
        self._done = True
        self._file.close()
        self._raw.close()
