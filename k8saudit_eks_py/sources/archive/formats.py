"""One S3 object's bytes → its log events, with memory bounded whatever the object's size.

Two layouts, told apart per object by their first decompressed bytes:
  export   (CreateExportTask) gzip text, one event per line: an ISO-8601 timestamp, a space, the message;
  firehose (a subscription delivered by Firehose) CloudWatch subscription JSON documents one after the
           other, with no separator or a newline; each record is itself gzip, so an object is several gzip
           members (gzip inside gzip when Firehose compresses again), or plain text when Firehose
           decompresses the records.
Everything is read in chunks; a line or document longer than the limits is counted as bad, never held.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from k8saudit_eks_py.sources.subscription import Bad, Control, Data, decode_document
from k8saudit_eks_py.sources.truncation import parse_rfc3339_ns

__all__ = ["Corrupt", "ExportLine", "Readable", "detect", "export_lines", "firehose_documents"]

_GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE = 4 * 1024 * 1024  # an export line: a 1 MB event and its timestamp, with room to spare
MAX_DOCUMENT = 64 * 1024 * 1024  # one subscription document (a Firehose record is at most 1000 KiB gzip)
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*\{")  # where one document may end and the next begin
_WHITESPACE = b" \t\r\n"

Layout = Literal["export", "firehose"]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Corrupt(Exception):
    """The object cannot be read further (not gzip, cut short, a document too large)."""


@dataclass(frozen=True, slots=True)
class ExportLine:
    ts_ms: int | None  # None: the line has no timestamp (counted malformed)
    message: str


class _Prefixed:
    """`head` then the rest of `stream`: lets the first bytes be looked at without seeking."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size < 0:
                return head + self._stream.read()
            if len(head) > size:
                head, self._head = head[:size], head[size:]
            return head
        return self._stream.read(size)


def _chunks(stream: Readable, chunk: int) -> Iterator[bytes]:
    try:
        while True:
            data = stream.read(chunk)
            if not data:
                return
            yield data
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise Corrupt(f"not readable as gzip ({exc})") from None


def detect(body: Readable, chunk: int) -> tuple[Layout, Iterator[bytes]] | str:
    """The layout of an object and its decompressed bytes in chunks; or why it is not an archive object."""
    head = body.read(2)
    if head == _GZIP_MAGIC:
        stream: Readable = gzip.GzipFile(fileobj=_Prefixed(head, body), mode="rb")  # type: ignore[call-overload]
    else:  # Firehose with its own decompression of the records: the documents as plain text
        stream = _Prefixed(head, body)
    chunks = _chunks(stream, chunk)
    first = next(chunks, b"")
    if first[:2] == _GZIP_MAGIC:  # records kept gzip inside a gzip object: one more layer
        stream = gzip.GzipFile(fileobj=_Prefixed(first, stream), mode="rb")  # type: ignore[call-overload]
        chunks = _chunks(stream, chunk)
        first = next(chunks, b"")
    start = first.lstrip(_WHITESPACE)[:1]
    if not first:
        return "empty once decompressed"
    if start == b"{":
        layout: Layout = "firehose"
    elif start.isdigit() and head == _GZIP_MAGIC:
        layout = "export"
    else:
        return f"neither a CloudWatch export nor a Firehose delivery (starts with {first[:16]!r})"

    def all_chunks() -> Iterator[bytes]:
        yield first
        yield from chunks

    return layout, all_chunks()


def export_lines(chunks: Iterator[bytes]) -> Iterator[ExportLine]:
    """The lines of an export object, each split into its timestamp and its message."""
    rest = b""
    overlong = False
    for data in chunks:
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if overlong:  # the end of a line that was too long: it was reported already
                overlong = False
                continue
            if len(line) > MAX_LINE:
                yield ExportLine(None, f"a line longer than {MAX_LINE} bytes")
            elif line.strip():
                yield _export_line(line)
        if len(rest) > MAX_LINE:
            yield ExportLine(None, f"a line longer than {MAX_LINE} bytes")
            rest, overlong = b"", True
    if rest.strip() and not overlong:
        yield _export_line(rest)


_seconds: dict[bytes, int] = {}  # "2026-11-01T00:00:00" → epoch seconds: lines of one second share it


def _stamp_ms(stamp: bytes) -> int | None:
    """An export line's timestamp → ms. Exports write `2026-11-01T00:00:00.123Z`: its second is parsed
    once per second of events (half the cost of a line otherwise); any other form goes the long way."""
    if len(stamp) == 24 and stamp[19:20] == b"." and stamp[23:24] == b"Z" and stamp[20:23].isdigit():
        second = _seconds.get(stamp[:19])
        if second is None:
            ns = parse_rfc3339_ns(stamp[:19].decode("ascii", "replace") + "Z")
            if ns is None:
                return None
            if len(_seconds) > 4096:
                _seconds.clear()
            second = _seconds[stamp[:19]] = ns // 1_000_000_000
        return second * 1000 + int(stamp[20:23])
    ns = parse_rfc3339_ns(stamp.decode("ascii", "replace"))
    return None if ns is None else ns // 1_000_000


def _export_line(line: bytes) -> ExportLine:
    stamp, _, message = line.rstrip(b"\r").partition(b" ")
    ms = _stamp_ms(stamp)
    if ms is None:
        return ExportLine(None, line[:80].decode("utf-8", "replace"))
    return ExportLine(ms, message.decode("utf-8", "replace"))


def firehose_documents(chunks: Iterator[bytes]) -> Iterator[Data | Control | Bad]:
    """The subscription documents of a Firehose object, in order. A document is complete where a `}`
    followed by a `{` ends valid JSON (the pair can also occur inside a message: the parse then fails
    and the search goes on)."""
    buf = b""
    search_from = 0
    for data in chunks:
        buf += data
        while True:
            m = _BOUNDARY.search(buf, search_from)
            if m is None:
                search_from = max(0, len(buf) - 64)  # (whitespace between the braces may span chunks)
                break
            end = m.start() + 1
            try:
                doc = orjson.loads(buf[:end])
            except orjson.JSONDecodeError:
                search_from = end
                continue
            yield decode_document(doc)
            buf = buf[end:].lstrip(_WHITESPACE)
            search_from = 0
        if len(buf) > MAX_DOCUMENT:
            raise Corrupt(f"a document longer than {MAX_DOCUMENT} bytes, or not JSON")
    if buf.strip():
        try:
            doc = orjson.loads(buf)
        except orjson.JSONDecodeError as exc:
            raise Corrupt(f"the last document is not JSON ({exc})") from None
        yield decode_document(doc)
