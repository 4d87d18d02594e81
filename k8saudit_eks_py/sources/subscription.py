"""One CloudWatch Logs subscription document → its log events: a Kinesis record (stream mode) or one of the
documents a Firehose delivery stream concatenates into an S3 object (archive replay).

A Kinesis record's data is gzip-compressed JSON: `messageType` (DATA_MESSAGE, or CONTROL_MESSAGE when
CloudWatch checks the destination), `owner`, `logGroup`, `logStream`, `subscriptionFilters` and
`logEvents` [{`id`, `timestamp`, `message`}]. `id` is the eventId (a string of digits); some emulators
send integers.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass

import orjson

__all__ = ["Bad", "Control", "Data", "LogEvent", "cluster_of", "decode_document", "decode_record"]

_EKS_GROUP = re.compile(r"/aws/eks/([^/]+)/cluster")
# A decompressed record above this is not a subscription record (the Kinesis record limit is 1 MiB and
# CloudWatch log events compress ~10x at most in practice; this bounds a gzip bomb).
MAX_DECOMPRESSED = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogEvent:
    event_id: str | None  # None: the entry had no usable id (it is then counted malformed)
    timestamp_ms: int
    message: str | None  # None: the entry had no string message


@dataclass(frozen=True, slots=True)
class Data:
    log_group: str
    log_stream: str
    events: list[LogEvent]
    owner: str = ""  # the account id of the log group (a cross-account subscription's source account)


@dataclass(frozen=True, slots=True)
class Control:
    """CloudWatch's check that the destination is writable: nothing to deliver."""


@dataclass(frozen=True, slots=True)
class Bad:
    reason: str


def _gunzip(data: bytes) -> bytes:
    # wbits 16+MAX: gzip framing only; max_length bounds the output of a hostile record.
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, MAX_DECOMPRESSED)
    if d.unconsumed_tail:
        raise ValueError(f"more than {MAX_DECOMPRESSED} bytes once decompressed")
    if not d.eof:
        raise EOFError("gzip data ends early")
    return out


def decode_record(data: bytes) -> Data | Control | Bad:
    """Never raises: anything that is not a subscription record comes back as Bad with the reason."""
    try:
        text = _gunzip(data)
    except (zlib.error, gzip.BadGzipFile, EOFError, ValueError) as exc:
        return Bad(f"not gzip ({exc})")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Bad("gzip content is not JSON")
    return decode_document(doc)


def decode_document(doc: object) -> Data | Control | Bad:
    """A parsed subscription document → its events; never raises."""
    if not isinstance(doc, dict):
        return Bad("gzip content is not a JSON object")
    kind = doc.get("messageType")
    if kind == "CONTROL_MESSAGE":
        return Control()
    if kind != "DATA_MESSAGE":
        return Bad(f"messageType {str(kind)[:40]!r} is not DATA_MESSAGE")
    group, stream, entries = doc.get("logGroup"), doc.get("logStream"), doc.get("logEvents")
    if not isinstance(group, str) or not isinstance(stream, str) or not isinstance(entries, list):
        return Bad("DATA_MESSAGE without logGroup, logStream or logEvents")
    events: list[LogEvent] = []
    for entry in entries:
        if not isinstance(entry, dict):
            events.append(LogEvent(None, 0, None))
            continue
        raw_id, ts, message = entry.get("id"), entry.get("timestamp"), entry.get("message")
        event_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        events.append(
            LogEvent(
                event_id,
                ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
                message if isinstance(message, str) else None,
            )
        )
    owner = doc.get("owner")
    return Data(group, stream, events, owner if isinstance(owner, str) else "")


def cluster_of(log_group: str) -> str | None:
    """`/aws/eks/<cluster>/cluster` → the cluster name; None for any other log group."""
    m = _EKS_GROUP.fullmatch(log_group)
    return m.group(1) if m else None
