"""The ``ka.*`` fields: catalog, per-event parsing and value extraction (the shim's hot path).

``extract_values`` is called once per event with every request the shim has seen; the requests are
compiled once into (extractor, parsed argument) pairs and the plan is reused while the shim keeps
passing the same requests. Extraction never raises: anything unexpected gives "no value" (None).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

from k8saudit_eks_py.audit import SHAPE_GENERIC, SHAPE_NONE, SHAPE_SPEC, AuditEvent, NeedRaw, parse_event
from k8saudit_eks_py.fields.catalog import ARG_INDEX, ARG_KEY, FIELDS, FIELDS_JSON
from k8saudit_eks_py.fields.extract import (
    EXTRACTORS,
    GROUPS,
    NO_INDEX,
    REQUEST,
    REQUEST_KEYS,
    ROOT,
    SPEC,
    SPEC_KEYS,
    Extractor,
)
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
_GROUP: Final[tuple[int, ...]] = tuple(GROUPS[f.name] for f in FIELDS)
_SPEC_KEY: Final[tuple[str | None, ...]] = tuple(SPEC_KEYS.get(f.name) for f in FIELDS)
_REQUEST_KEY: Final[tuple[str | None, ...]] = tuple(REQUEST_KEYS.get(f.name) for f in FIELDS)
_KIND: Final[tuple[int, ...]] = tuple(f.arg for f in FIELDS)
_REQUIRED: Final[tuple[bool, ...]] = tuple(f.required for f in FIELDS)

Step = tuple[int, Extractor, Any]  # (position in the request list, extractor, parsed argument)


def _compile(field_id: int, arg: str | None) -> tuple[Extractor, Any, int]:
    """Extractor, parsed argument and group of one request (done once per distinct request)."""
    if type(field_id) is not int or not 0 <= field_id < len(_BY_ID):
        return _no_value, None, ROOT
    kind = _KIND[field_id]
    fn, group = _BY_ID[field_id], _GROUP[field_id]
    if arg is None:
        if _REQUIRED[field_id]:
            return _no_value, None, ROOT
        return fn, NO_INDEX if kind == ARG_INDEX else None, group
    if kind == ARG_INDEX:
        # Falco only accepts a decimal index here; anything else cannot match.
        if not (arg.isascii() and arg.isdigit()):
            return _no_value, None, ROOT
        return fn, int(arg), group
    if kind == ARG_KEY:
        return fn, arg, group
    return fn, None, group  # an argument on a field that takes none is ignored


class _Plan:
    """A compiled request list, split so that whole groups can be skipped per event.

    ``root`` holds the ROOT steps; ``request`` (``spec``) maps a requestObject (spec) key, or None
    for "any", to the REQUEST (SPEC) steps that need it; ``*_all`` hold them all."""

    __slots__ = ("request", "request_all", "root", "size", "spec", "spec_all")

    def __init__(self, requests: Sequence[tuple[int, str | None]]) -> None:
        self.size = len(requests)
        self.root: list[Step] = []
        self.request: dict[str | None, list[Step]] = {}
        self.request_all: list[Step] = []
        self.spec: dict[str | None, list[Step]] = {}
        self.spec_all: list[Step] = []
        for i, (field_id, arg) in enumerate(requests):
            fn, parsed, group = _compile(field_id, arg)
            step = (i, fn, parsed)
            if group == SPEC:
                self.spec.setdefault(_SPEC_KEY[field_id], []).append(step)
                self.spec_all.append(step)
            elif group == REQUEST:
                self.request.setdefault(_REQUEST_KEY[field_id], []).append(step)
                self.request_all.append(step)
            else:
                self.root.append(step)


class _Last:
    """The shim resends the same request list for every event: keep its compiled plan."""

    requests: ClassVar[Sequence[tuple[int, str | None]] | None] = None
    plan: ClassVar[_Plan | None] = None


def _plan(requests: Sequence[tuple[int, str | None]]) -> _Plan:
    plan = _Last.plan
    if requests is not _Last.requests or plan is None:
        if plan is None or requests != _Last.requests:
            plan = _Plan(requests)
        _Last.requests, _Last.plan = requests, plan
    return plan


def _retry_raw(ev: AuditEvent, fn: Extractor, arg: Any) -> Value:
    ev.switch_to_raw()
    if ev.root is None:
        return None
    try:
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


def _steps(plan: _Plan, event: AuditEvent) -> Iterator[list[Step]]:
    """The step lists that can yield a value for this event's shape."""
    yield plan.root
    shape = event.shape
    if shape == SHAPE_NONE:
        return
    ro = event.request_object
    if ro is None:
        yield plan.request_all
    else:
        for key, steps in plan.request.items():
            if key is None or key in ro:
                yield steps
    if shape == SHAPE_GENERIC:
        yield plan.spec_all
    elif shape == SHAPE_SPEC:
        spec = event.spec
        for key, steps in plan.spec.items():
            if key is None or key in spec:  # type: ignore[operator]
                yield steps


def extract_values(event: AuditEvent, requests: Sequence[tuple[int, str | None]]) -> list[Value]:
    """Values of every request, in order."""
    plan = _plan(requests)
    out: list[Value] = [None] * plan.size
    if event.root is None:
        return out
    for steps in _steps(plan, event):
        for i, fn, arg in steps:
            try:
                out[i] = fn(event, arg)
            except NeedRaw:
                # The raw tree keeps the same shape, so the remaining step lists stay valid.
                out[i] = _retry_raw(event, fn, arg)
                if event.root is None:
                    return [None] * plan.size
            except Exception:  # a value function must never break the event: no value instead
                out[i] = None
    if event.invalid_utf8:
        out = [_bytes_if_needed(v) for v in out]
    return out


def extract_value(event: AuditEvent, field_id: int, arg: str | None) -> Value:
    """Value of one request (a request the shim has not seen before)."""
    if event.root is None:
        return None
    fn, parsed, _group = _compile(field_id, arg)
    try:
        value = fn(event, parsed)
    except NeedRaw:
        value = _retry_raw(event, fn, parsed)
    except Exception:  # a value function must never break the event: no value instead
        value = None
    return _bytes_if_needed(value) if event.invalid_utf8 else value
