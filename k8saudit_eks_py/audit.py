"""Payload bytes → :class:`AuditEvent`: the parsed audit event plus what is needed to render raw JSON text.

Field values of non-string JSON values must be their text exactly as written in the payload (the
reference plugin renders them from fastjson's raw text): ``1.0`` stays ``1.0``, ``\\u00fc`` stays
escaped inside an object, objects are compact in their original key order, and big integers exact.

Two parsers, decided per event:

* Fast path: ``orjson.loads`` gives the structure. Strings, booleans, null and integers render exactly
  from it (an integer's text is ``str(n)``, except ``-0``, detected). Objects and arrays render with
  ``orjson.dumps`` when that is the original text: either provably (the payload has no ``\\u`` or
  ``\\/`` escape, the only ones orjson spells differently, and the subtree holds no float), or because
  that exact text occurs in the payload (compact payloads, as the API server writes them; only a
  payload spelling the very same value twice in two ways could fool this).
* Raw path (:mod:`k8saudit_eks_py.rawjson`): a lenient pure-Python parser that keeps every
  value's raw text. Used when orjson rejects the payload (fastjson is more lenient: invalid UTF-8,
  raw control characters, odd numbers, integers beyond 64 bits, lone surrogate escapes), when nesting
  is deep (fastjson's 300 limit), and lazily when the fast path cannot prove a rendering
  (:class:`NeedRaw`), after which the event keeps using the raw tree.

Like the reference plugin, a payload whose first byte is not ``{`` or ``[``, that does not parse, that
is not an object or has no ``auditID`` key yields no value for any field (``root`` is None).

Each event is also classified once by the shape of ``requestObject``/``spec`` (``shape``), so that the
many request-object fields can be skipped, or walked from the cached ``spec``, without re-walking.

Known, deliberate differences from fastjson: with duplicate keys the fast path sees the last one
(fastjson the first; the raw path the first); renderings never depend on which fields were extracted
before (fastjson re-escapes values it has already decoded, so its output can depend on request order).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from k8saudit_eks_py import rawjson

__all__ = [
    "SHAPE_GENERIC",
    "SHAPE_NONE",
    "SHAPE_REQUEST",
    "SHAPE_SPEC",
    "AuditEvent",
    "NeedRaw",
    "parse_event",
]

_NEG_ZERO = re.compile(rb"[\[:,]\s*-0(?![0-9])")
_MAX_DEPTH: Final = 300  # fastjson.MaxDepth (rawjson.MAX_DEPTH enforces the same limit)

# Event shapes, from the reference walk's point of view:
SHAPE_NONE: Final = 0  # no usable requestObject: every requestObject.* field is unavailable
SHAPE_REQUEST: Final = 1  # requestObject is an object but spec is unusable: requestObject.spec.* unavailable
SHAPE_SPEC: Final = 2  # requestObject.spec is an object: spec walks may start from ``spec``
SHAPE_GENERIC: Final = 3  # arrays at requestObject or spec level: walk from the root (fan-out rules)


class NeedRaw(Exception):
    """The fast-path tree cannot give this rendering exactly: switch the event to the raw tree."""


class AuditEvent:
    """One parsed event. ``root`` is the audit event object, or None when it yields no values."""

    __slots__ = (
        "_neg_zero",
        "cache",
        "default_cluster",
        "invalid_utf8",
        "payload",
        "raw_mode",
        "raw_texts",
        "request_object",
        "root",
        "shape",
        "spec",
        "unsafe",
    )

    def __init__(self, payload: bytes, default_cluster: str | None) -> None:
        self.payload = payload
        self.default_cluster = default_cluster
        self.root: dict[str, Any] | None = None
        self.shape = SHAPE_NONE
        self.request_object: dict[str, Any] | None = None  # set when requestObject is an object
        self.spec: dict[str, Any] | None = None  # set when shape is SHAPE_SPEC
        self.raw_mode = False
        self.raw_texts: dict[int, str] = {}  # raw mode: rendering of each object/array, by id()
        self.unsafe: bool | None = None  # fast path, lazily: orjson.dumps may differ from the original
        self.invalid_utf8 = False
        self._neg_zero: bool | None = None
        self.cache: dict[str, Any] = {}  # per-event memo of extractors (e.g. the parsed query)

    def set_root(self, value: object) -> None:
        # The reference plugin ignores JSON documents that are not objects with an auditID key.
        if type(value) is not dict or "auditID" not in value:
            self.root = None
            return
        self.root = value
        ro = value.get("requestObject")
        if type(ro) is dict:
            self.request_object = ro
            spec = ro.get("spec")
            if type(spec) is dict:
                self.shape, self.spec = SHAPE_SPEC, spec
            elif type(spec) is list:
                self.shape = SHAPE_GENERIC
            else:
                self.shape = SHAPE_REQUEST
        elif type(ro) is list:
            self.shape = SHAPE_GENERIC

    def switch_to_raw(self) -> None:
        """Re-parse with the raw-text parser; later extractions use that tree."""
        self.cache.clear()
        self.raw_mode = True
        self.shape, self.spec, self.request_object = SHAPE_NONE, None, None
        self.set_root(_raw_parse(self, self.payload))

    def render(self, v: object) -> str:
        """The JSON text of a non-string value, as the reference plugin renders it."""
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        t = type(v)
        if self.raw_mode:
            if t is dict or t is list:
                return self.raw_texts[id(v)]
            return v.text  # type: ignore[attr-defined,no-any-return]  # rawjson.RawNumber
        if t is int:
            if v == 0 and self.neg_zero():
                raise NeedRaw
            return str(v)
        if t is dict or t is list:
            text = orjson.dumps(v)
            if (self._safe() and self._plain(v)) or text in self.payload:
                return text.decode()
            raise NeedRaw
        raise NeedRaw  # float: its original spelling is lost

    def _safe(self) -> bool:
        """No escape in the payload that orjson would spell differently (\\uXXXX, \\/)."""
        if self.unsafe is None:
            self.unsafe = b"\\u" in self.payload or b"\\/" in self.payload
        return not self.unsafe

    def neg_zero(self) -> bool:
        if self._neg_zero is None:
            self._neg_zero = _NEG_ZERO.search(self.payload) is not None
        return self._neg_zero

    def _plain(self, v: object) -> bool:
        """True if the subtree re-serialises to its original text (no float, no ambiguous zero)."""
        stack = [v]
        while stack:
            x = stack.pop()
            t = type(x)
            if t is dict:
                stack.extend(x.values())  # type: ignore[attr-defined]
            elif t is list:
                stack.extend(x)  # type: ignore[arg-type]
            elif t is float or (t is int and x == 0 and self.neg_zero()):
                return False
        return True


def _raw_parse(event: AuditEvent, payload: bytes) -> object:
    try:
        value, event.invalid_utf8, event.raw_texts = rawjson.parse(payload)
    except (rawjson.JSONParseError, RecursionError):
        return None
    return value


def _too_deep(value: object) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        children = v.values() if type(v) is dict else v  # type: ignore[attr-defined]
        stack.extend((x, depth + 1) for x in children if type(x) is dict or type(x) is list)  # type: ignore[attr-defined]
    return False


def parse_event(payload: bytes, *, default_cluster: str | None = None) -> AuditEvent:
    """Parse one payload. Never raises: an unusable payload gives an event without values."""
    if type(payload) is not bytes:
        try:
            payload = bytes(payload)
        except Exception:
            payload = b""
    event = AuditEvent(payload, default_cluster)
    # fastjson's Decode refuses anything not starting with '{' or '[' (no leading whitespace).
    if not payload or payload[0] not in (0x7B, 0x5B):
        return event
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        event.raw_mode = True
        event.set_root(_raw_parse(event, payload))
        return event
    if payload.count(b"{") + payload.count(b"[") > _MAX_DEPTH and _too_deep(value):
        return event  # fastjson refuses documents nested deeper than its limit
    event.set_root(value)
    return event
