"""Loaders for the field-parity reference data (shared by the pure-Python and the C-level golden tests).

Reference layout (see tests/data/reference/README.md): ``field-requests.txt`` (one request a line,
``name`` or ``name[arg]``), ``audit-events-dev.jsonl`` (one event a line) and ``golden-dev.jsonl``
(line n: ``{"n": n, "<request>": null | [strings], ...}`` for event n).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from k8saudit_eks_py.fields.catalog import FIELD_IDS
from tests.support.reference import REFERENCE, read_bytes

Expected = list[str] | None


@dataclass(frozen=True)
class Request:
    text: str  # as written in field-requests.txt, e.g. "ka.uri.param[watch]"
    field_id: int
    arg: str | None


def parse_request(text: str) -> Request:
    name, arg = text, None
    if text.endswith("]") and "[" in text:
        name, _, rest = text.partition("[")
        arg = rest[:-1]
    return Request(text, FIELD_IDS[name], arg)


def load_requests(reference: Path = REFERENCE) -> list[Request]:
    lines = read_bytes("field-requests.txt", reference).decode().splitlines()
    return [parse_request(line.strip()) for line in lines if line.strip()]


def load_stock_requests(reference: Path = REFERENCE) -> list[Request]:
    lines = read_bytes("stock-rules-fields.txt", reference).decode().splitlines()
    return [parse_request(line.strip()) for line in lines if line.strip()]


def load_events(reference: Path = REFERENCE, name: str = "audit-events-dev.jsonl") -> list[bytes]:
    return [line for line in read_bytes(name, reference).split(b"\n") if line]


def load_golden(reference: Path = REFERENCE, name: str = "golden-dev.jsonl") -> list[dict[str, Expected]]:
    return [json.loads(line) for line in read_bytes(name, reference).decode().splitlines() if line]


def normalise(value: object) -> Expected:
    """A plugin Value in the golden's shape: None, or a list of strings (empty list = no value)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        return items or None
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    return [value]  # type: ignore[list-item]


@dataclass(frozen=True)
class Mismatch:
    event: int  # 1-based line number
    request: str
    expected: Expected
    got: Expected


def compare(
    requests: Sequence[Request], golden: Sequence[dict[str, Expected]], values: Sequence[Sequence[object]]
) -> Iterator[Mismatch]:
    """Every (event, request) whose value differs from the golden; values[i] holds event i's values."""
    for i, (expected_row, got_row) in enumerate(zip(golden, values, strict=True)):
        for request, got in zip(requests, got_row, strict=True):
            want = expected_row[request.text]
            have = normalise(got)
            if want != have:
                yield Mismatch(i + 1, request.text, want, have)
