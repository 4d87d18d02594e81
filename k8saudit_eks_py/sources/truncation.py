"""One CloudWatch message → a deliverable audit event: passed through, reduced to its metadata (cut by
CloudWatch with `[Truncated...]`, or larger than max_event_size), or rejected as not an audit event.

Nothing that looks like an audit event is dropped: an attacker padding a request past the size limits must
still be seen by the rules, with whatever metadata precedes the large objects.
"""

from __future__ import annotations

import json
import re
from calendar import timegm
from dataclasses import dataclass
from typing import Any, Literal

import orjson

TRUNCATED_MARK = "[Truncated...]"
ANNOTATION_TRUNCATED = "k8saudit-eks-py/truncated"
ANNOTATION_SIZE = "k8saudit-eks-py/original-size"
ANNOTATION_REASON = "k8saudit-eks-py/reason"

# Kept, in this order of priority, when even the salvaged event is over the limit.
METADATA_KEYS = (
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "verb",
    "requestURI",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
)
_BULKY_KEYS = ("requestObject", "responseObject")

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))$"
)
_decoder = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")


@dataclass(frozen=True, slots=True)
class Shaped:
    ts_ns: int
    payload: bytes
    audit_id: str | None
    status: Literal["ok", "truncated", "oversize"]
    original_size: int


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def parse_rfc3339_ns(text: object) -> int | None:
    """RFC 3339 (k8s MicroTime: µs, 'Z') → ns since the epoch, exact; None if not a timestamp."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
        return None
    seconds = timegm((year, month, day, hour, minute, second, 0, 0, 0))
    frac = m.group(7) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    return seconds * 1_000_000_000 + nanos


def _ts_ns(doc: dict[str, Any], cw_ts_ms: int) -> int:
    ts = parse_rfc3339_ns(doc.get("stageTimestamp"))
    return ts if ts is not None else cw_ts_ms * 1_000_000


def salvage_prefix(text: str) -> dict[str, Any] | None:
    """The complete top-level key/value pairs at the start of a cut JSON object, in order; None when the
    text does not start a JSON object."""
    n = len(text)
    i = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if i >= n or text[i] != "{":
        return None
    i += 1
    out: dict[str, Any] = {}
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if i < n and text[i] == ",":
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        if i >= n or text[i] != '"':
            return out
        try:
            key, i = _decoder.raw_decode(text, i)
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if i >= n or text[i] != ":":
                return out
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            value, end = _decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            return out
        # A number cut mid-digits parses as a shorter number: only accept values followed by a delimiter.
        if end >= n and not isinstance(value, (str, dict, list)):
            return out
        out[key] = value
        i = end


def _annotated(doc: dict[str, Any], reason: str, size: int) -> dict[str, Any]:
    out = dict(doc)
    out.setdefault("kind", "Event")
    out.setdefault("apiVersion", "audit.k8s.io/v1")
    annotations = out.get("annotations")
    annotations = dict(annotations) if isinstance(annotations, dict) else {}
    annotations[ANNOTATION_TRUNCATED] = "true"
    annotations[ANNOTATION_SIZE] = str(size)
    annotations[ANNOTATION_REASON] = reason
    out["annotations"] = annotations
    return out


def _fit(doc: dict[str, Any], limit: int) -> bytes:
    """Drop the bulky objects, then the largest non-metadata values, then non-essential metadata, until the
    JSON fits in `limit` bytes."""
    out = {k: v for k, v in doc.items() if k not in _BULKY_KEYS}
    payload = orjson.dumps(out)
    if len(payload) <= limit:
        return payload
    extras = sorted(
        (k for k in out if k not in METADATA_KEYS), key=lambda k: len(orjson.dumps(out[k])), reverse=True
    )
    for key in extras:
        del out[key]
        payload = orjson.dumps(out)
        if len(payload) <= limit:
            return payload
    ours = {k: v for k, v in out["annotations"].items() if k.startswith("k8saudit-eks-py/")}
    for key in reversed(METADATA_KEYS[6:]):  # keep kind..verb, drop the rest from the least useful up
        out.pop(key, None)
        out["annotations"] = ours
        payload = orjson.dumps(out)
        if len(payload) <= limit:
            return payload
    minimal = {k: out[k] for k in METADATA_KEYS[:6] if isinstance(out.get(k), str) and len(out[k]) < 256}
    minimal["annotations"] = ours
    return orjson.dumps(minimal)


def _reduce(doc: dict[str, Any], reason: str, size: int, cw_ts_ms: int, limit: int) -> Shaped:
    annotated = _annotated(doc, reason, size)
    payload = _fit(annotated, limit)
    audit_id = doc.get("auditID")
    status: Literal["truncated", "oversize"] = "truncated" if reason == "truncated" else "oversize"
    return Shaped(
        _ts_ns(doc, cw_ts_ms),
        payload,
        audit_id if isinstance(audit_id, str) else None,
        status,
        size,
    )


def shape(message: str, cw_ts_ms: int, max_event_size: int) -> Shaped | Rejected:
    raw = message.encode("utf-8", "surrogatepass")
    size = len(raw)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if doc is not None:
        if not isinstance(doc, dict):
            return Rejected(f"not a JSON object ({type(doc).__name__})")
        if doc.get("kind") != "Event":
            return Rejected(f"not an audit event (kind={str(doc.get('kind'))[:40]!r})")
        if size > max_event_size:
            return _reduce(doc, "oversize", size, cw_ts_ms, max_event_size)
        audit_id = doc.get("auditID")
        return Shaped(_ts_ns(doc, cw_ts_ms), raw, audit_id if isinstance(audit_id, str) else None, "ok", size)
    text = message.rstrip()
    if text.endswith(TRUNCATED_MARK):
        text = text[: -len(TRUNCATED_MARK)]
    salvaged = salvage_prefix(text)
    if salvaged is None:
        return Rejected("not JSON")
    kind = salvaged.get("kind")
    if kind != "Event" and not (kind is None and isinstance(salvaged.get("auditID"), str)):
        return Rejected(f"invalid JSON, not an audit event (kind={str(kind)[:40]!r})")
    return _reduce(salvaged, "truncated", size, cw_ts_ms, max_event_size)
