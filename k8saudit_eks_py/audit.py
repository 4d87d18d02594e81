"""Payload bytes → :class:`AuditEvent`: the parsed audit event plus what is needed to render raw JSON text.

Field values of non-string JSON values must be their text exactly as written in the payload (the
reference plugin renders them from fastjson's raw text): ``1.0`` stays ``1.0``, ``\\u00fc`` stays
escaped inside an object, objects are compact in their original key order, and big integers exact.

Two parsers, decided per event:

* Fast path: ``orjson.loads`` gives the structure. Strings, booleans, null and integers render exactly
  from it (an integer's text is ``str(n)``, except ``-0``, detected). Objects and arrays render with
  ``orjson.dumps`` when that is provably the original text: the payload has no ``\\u`` or ``\\/``
  escape (the only escapes orjson would spell differently) and the subtree holds no float.
* Raw path (:mod:`k8saudit_eks_py.fields.rawjson`): a lenient pure-Python parser that keeps every
  value's raw text. Used when orjson rejects the payload (fastjson is more lenient: invalid UTF-8,
  raw control characters, odd numbers, integers beyond 64 bits, lone surrogate escapes), when nesting
  is deep (fastjson's 300 limit), and lazily when the fast path cannot prove a rendering
  (:class:`NeedRaw`), after which the event keeps using the raw tree.

Like the reference plugin, a payload whose first byte is not ``{`` or ``[``, that does not parse, that
is not an object or has no ``auditID`` key yields no value for any field (``root`` is None).

Known, deliberate differences from fastjson: with duplicate keys the fast path sees the last one
(fastjson the first; the raw path the first); renderings never depend on which fields were extracted
before (fastjson re-escapes values it has already decoded, so its output can depend on request order).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

__all__ = ["AuditEvent", "NeedRaw", "parse_event"]

_NEG_ZERO = re.compile(rb"[\[:,]\s*-0(?![0-9])")
_MAX_DEPTH: Final = 300  # fastjson.MaxDepth (rawjson.MAX_DEPTH enforces the same limit)


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
        "root",
        "unsafe",
    )

    def __init__(self, payload: bytes, default_cluster: str | None) -> None:
        self.payload = payload
        self.default_cluster = default_cluster
        self.root: dict[str, Any] | None = None
        self.raw_mode = False
        self.unsafe = False  # fast path only: orjson.dumps may differ from the original text
        self.invalid_utf8 = False
        self._neg_zero: bool | None = None
        self.cache: dict[str, Any] = {}

    def switch_to_raw(self) -> None:
        """Re-parse with the raw-text parser; later extractions use that tree."""
        self.cache.clear()
        self.raw_mode = True
        self.root = _audit_root(self, _raw_parse(self, self.payload))

    def render(self, v: object) -> str:
        """The JSON text of a non-string value, as the reference plugin renders it."""
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if self.raw_mode:
            # RawDict/RawList carry .raw, RawNumber carries .text (see fields.rawjson).
            raw = getattr(v, "raw", None)
            return raw if raw is not None else v.text  # type: ignore[attr-defined,no-any-return]
        t = type(v)
        if t is int:
            if v == 0 and self.neg_zero():
                raise NeedRaw
            return str(v)
        if t is dict or t is list:
            if self.unsafe or not self._plain(v):
                raise NeedRaw
            return orjson.dumps(v).decode()
        raise NeedRaw  # float: its original spelling is lost

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
    # Imported here: fields/ imports this module, and the raw path is the exception.
    from k8saudit_eks_py.fields import rawjson

    try:
        value, invalid = rawjson.parse(payload)
    except (rawjson.JSONParseError, RecursionError):
        return None
    event.invalid_utf8 = invalid
    return value


def _audit_root(event: AuditEvent, value: object) -> dict[str, Any] | None:
    # The reference plugin ignores JSON documents that are not objects with an auditID key.
    if isinstance(value, dict) and "auditID" in value:
        return value
    return None


def _too_deep(value: object) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        if type(v) is dict:
            stack.extend((x, depth + 1) for x in v.values() if type(x) is dict or type(x) is list)  # type: ignore[attr-defined]
        elif type(v) is list:
            stack.extend((x, depth + 1) for x in v if type(x) is dict or type(x) is list)  # type: ignore[attr-defined]
    return False


def parse_event(payload: bytes, *, default_cluster: str | None = None) -> AuditEvent:
    """Parse one payload. Never raises: an unusable payload gives an event without values."""
    if not isinstance(payload, bytes):
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
        event.root = _audit_root(event, _raw_parse(event, payload))
        return event
    if payload.count(b"{") + payload.count(b"[") > _MAX_DEPTH and _too_deep(value):
        return event  # fastjson refuses documents nested deeper than its limit
    event.root = _audit_root(event, value)
    event.unsafe = b"\\u" in payload or b"\\/" in payload
    return event
