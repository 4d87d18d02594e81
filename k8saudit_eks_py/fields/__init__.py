"""The ``ka.*`` fields: catalog, per-event parsing and value extraction (the shim's hot path).

``extract_values`` is called once per event with every request the shim has seen; the requests are
compiled once into (extractor, parsed argument) pairs and the plan is reused while the shim keeps
passing the same requests. Extraction never raises: anything unexpected gives "no value" (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from k8saudit_eks_py.audit import AuditEvent, NeedRaw, parse_event
from k8saudit_eks_py.fields.catalog import ARG_INDEX, ARG_KEY, FIELDS, FIELDS_JSON
from k8saudit_eks_py.fields.extract import EXTRACTORS, NO_INDEX, Extractor
from k8saudit_eks_py.fields.summary import event_to_string

__all__ = [
    "FIELDS_JSON",
    "AuditEvent",
    "Value",
    "event_to_string",
    "extract_value",
    "extract_values",
    "parse_event",
]

Value = None | str | bytes | tuple[str | bytes, ...]


def _no_value(ev: AuditEvent, arg: Any) -> Value:
    return None


_BY_ID: Final[tuple[Extractor, ...]] = tuple(EXTRACTORS[f.name] for f in FIELDS)
_KIND: Final[tuple[int, ...]] = tuple(f.arg for f in FIELDS)
_REQUIRED: Final[tuple[bool, ...]] = tuple(f.required for f in FIELDS)


def _compile(field_id: int, arg: str | None) -> tuple[Extractor, Any]:
    """The extractor and parsed argument of one request (done once per distinct request)."""
    if type(field_id) is not int or not 0 <= field_id < len(_BY_ID):
        return _no_value, None
    kind = _KIND[field_id]
    if arg is None:
        if _REQUIRED[field_id]:
            return _no_value, None
        return _BY_ID[field_id], NO_INDEX if kind == ARG_INDEX else None
    if kind == ARG_INDEX:
        # Falco only accepts a decimal index here; anything else cannot match.
        if not (arg.isascii() and arg.isdigit()):
            return _no_value, None
        return _BY_ID[field_id], int(arg)
    if kind == ARG_KEY:
        return _BY_ID[field_id], arg
    return _BY_ID[field_id], None  # an argument on a field that takes none is ignored


class _Plans:
    """The compiled form of the last request list (the shim resends the same list for every event)."""

    requests: ClassVar[Sequence[tuple[int, str | None]] | None] = None
    plan: ClassVar[list[tuple[Extractor, Any]]] = []


def _plan(requests: Sequence[tuple[int, str | None]]) -> list[tuple[Extractor, Any]]:
    if requests is _Plans.requests:
        return _Plans.plan
    plan = [_compile(fid, arg) for fid, arg in requests]
    _Plans.requests, _Plans.plan = requests, plan
    return plan


def _run(ev: AuditEvent, fn: Extractor, arg: Any) -> Value:
    try:
        try:
            return fn(ev, arg)
        except NeedRaw:
            ev.switch_to_raw()
            if ev.root is None:
                return None
            return fn(ev, arg)
    except Exception:  # a value function must never break the event: no value instead
        return None


def _bytes_if_needed(value: Value) -> Value:
    """Raw-path strings may hold invalid UTF-8 (as surrogate escapes): hand those over as bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
        return value
    if isinstance(value, tuple):
        return tuple(_bytes_if_needed(v) for v in value)  # type: ignore[misc]
    return value


def extract_values(event: AuditEvent, requests: Sequence[tuple[int, str | None]]) -> list[Value]:
    """Values of every request, in order."""
    if event.root is None:
        return [None] * len(requests)
    out: list[Value] = []
    append = out.append
    for fn, arg in _plan(requests):
        try:
            append(fn(event, arg))
        except NeedRaw:
            event.switch_to_raw()
            append(_run(event, fn, arg))
        except Exception:  # a value function must never break the event: no value instead
            append(None)
    if event.invalid_utf8:
        out = [_bytes_if_needed(v) for v in out]
    return out


def extract_value(event: AuditEvent, field_id: int, arg: str | None) -> Value:
    """Value of one request (a request the shim has not seen before)."""
    if event.root is None:
        return None
    fn, parsed = _compile(field_id, arg)
    value = _run(event, fn, parsed)
    return _bytes_if_needed(value) if event.invalid_utf8 else value
