"""truncation.py: pass-through, metadata recovery from cut or oversize events, rejection of non-events."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8saudit_eks_py.sources.truncation import (
    ANNOTATION_REASON,
    ANNOTATION_SIZE,
    ANNOTATION_TRUNCATED,
    TRUNCATED_MARK,
    Rejected,
    Shaped,
    parse_rfc3339_ns,
    salvage_prefix,
    shape,
)
from tests.support.moto_server import audit_event

TS_MS = 1_700_000_000_123
LIMIT = 16_384


def test_valid_event_passes_through_with_stage_timestamp() -> None:
    message = audit_event(1, TS_MS)
    out = shape(message, 1, LIMIT)
    assert isinstance(out, Shaped)
    assert out.status == "ok" and out.payload == message.encode() and out.audit_id == "a-1"
    assert out.ts_ns == TS_MS * 1_000_000 + 123_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05.123456Z", 1704164645_123456000),
        ("2024-01-02T03:04:05Z", 1704164645_000000000),
        ("2024-01-02T03:04:05.1+01:00", 1704161045_100000000),
        ("2024-01-02T03:04:05.123456789Z", 1704164645_123456789),
        ("2024-13-02T03:04:05Z", None),
        ("yesterday", None),
        (12, None),
    ],
)
def test_rfc3339(text: object, expected: int | None) -> None:
    assert parse_rfc3339_ns(text) == expected


def test_unparsable_stage_timestamp_falls_back_to_cloudwatch_time() -> None:
    doc = orjson.loads(audit_event(1, TS_MS))
    doc["stageTimestamp"] = "soon"
    out = shape(orjson.dumps(doc).decode(), 42, LIMIT)
    assert isinstance(out, Shaped) and out.ts_ns == 42_000_000


def test_truncated_event_keeps_metadata_and_is_annotated() -> None:
    full = audit_event(7, TS_MS, pad=50_000)
    cut = full[:20_000] + TRUNCATED_MARK
    out = shape(cut, TS_MS, LIMIT)
    assert isinstance(out, Shaped) and out.status == "truncated"
    doc = orjson.loads(out.payload)
    for key in (
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "verb",
        "user",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "requestURI",
        "responseStatus",
    ):
        assert doc[key] == orjson.loads(full)[key], key
    assert "requestObject" not in doc
    assert doc["annotations"][ANNOTATION_TRUNCATED] == "true"
    assert doc["annotations"][ANNOTATION_SIZE] == str(len(cut))
    assert doc["annotations"][ANNOTATION_REASON] == "truncated"
    assert out.ts_ns == TS_MS * 1_000_000  # stageTimestamp was cut off: CloudWatch time
    assert len(out.payload) <= LIMIT


def test_oversize_event_drops_the_bulky_objects_but_keeps_timestamps() -> None:
    full = audit_event(8, TS_MS, pad=LIMIT)
    out = shape(full, 1, LIMIT)
    assert isinstance(out, Shaped) and out.status == "oversize" and out.audit_id == "a-8"
    doc = orjson.loads(out.payload)
    assert "requestObject" not in doc and "responseObject" not in doc
    assert doc["stageTimestamp"] == orjson.loads(full)["stageTimestamp"]
    assert doc["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert doc["annotations"][ANNOTATION_REASON] == "oversize"
    assert out.ts_ns == TS_MS * 1_000_000 + 123_000


def test_oversize_metadata_is_cut_down_to_the_essentials() -> None:
    doc = orjson.loads(audit_event(9, TS_MS))
    doc["requestURI"] = "/" + "u" * 30_000
    doc["extra"] = "e" * 30_000
    out = shape(orjson.dumps(doc).decode(), 1, LIMIT)
    assert isinstance(out, Shaped) and len(out.payload) <= LIMIT
    reduced = orjson.loads(out.payload)
    assert reduced["auditID"] == "a-9" and reduced["verb"] == "get" and "extra" not in reduced


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("I0101 12:00:00 plain log line", "not JSON"),
        ('{"kind":"Pod","metadata":{}}', "not an audit event"),
        ("[1,2,3]", "not a JSON object"),
        ('{"msg":"hello", "lev', "not an audit event"),
        ("", "not JSON"),
    ],
)
def test_non_audit_lines_are_rejected(message: str, reason: str) -> None:
    out = shape(message, 1, LIMIT)
    assert isinstance(out, Rejected) and reason in out.reason


def test_salvage_stops_at_the_first_incomplete_value() -> None:
    assert salvage_prefix('{"a": 1, "b": [1, 2], "c": {"d": "x"}, "e": 12') == {
        "a": 1,
        "b": [1, 2],
        "c": {"d": "x"},
    }
    assert salvage_prefix('{"a": "es\\"caped", "b": tr') == {"a": 'es"caped'}
    assert salvage_prefix('{"a": 1}') == {"a": 1}
    assert salvage_prefix("nope") is None


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=1, max_value=3000), pad=st.integers(0, 3000))
def test_every_cut_of_an_event_is_rejected_or_becomes_a_valid_small_event(cut: int, pad: int) -> None:
    full = audit_event(3, TS_MS, pad=pad)
    out = shape(full[:cut] + TRUNCATED_MARK, TS_MS, 4096)
    if isinstance(out, Rejected):
        assert cut < len('{"kind":"Event"')  # the kind is the first key: later cuts are recoverable
        return
    doc = orjson.loads(out.payload)
    assert doc["kind"] == "Event" and len(out.payload) <= 4096
    assert doc["annotations"][ANNOTATION_TRUNCATED] == "true"
    original = orjson.loads(full)
    for key, value in doc.items():
        if key != "annotations" and key not in ("kind", "apiVersion"):
            assert original[key] == value
