"""Every value of every reference event and request equals the golden output of the Go plugin."""

from __future__ import annotations

import json

import pytest

from k8saudit_eks_py import fields
from tests.support.reference import EVENT_SETS, read_bytes
from tests.unit.golden_support import compare, load_events, load_golden, load_requests


@pytest.mark.parametrize(
    ("events_name", "golden_name", "count"), [(*EVENT_SETS[0], 400), (*EVENT_SETS[1], 1300)]
)
def test_every_value_matches_golden(events_name: str, golden_name: str, count: int) -> None:
    requests = load_requests()
    events = load_events(name=events_name)
    golden = load_golden(name=golden_name)
    assert len(requests) == 117 and len(events) == len(golden) == count
    plan = tuple((r.field_id, r.arg) for r in requests)
    values = [fields.extract_values(fields.parse_event(e), plan) for e in events]
    mismatches = list(compare(requests, golden, values))
    shown = "\n".join(
        f"event {m.event} {m.request}: want {m.expected!r} got {m.got!r}" for m in mismatches[:20]
    )
    assert not mismatches, f"{len(mismatches)} of {len(events) * len(requests)} values differ:\n{shown}"


def test_extract_value_matches_extract_values() -> None:
    """The one-request path (extract_more) gives what the batched path gives."""
    requests = load_requests()
    plan = tuple((r.field_id, r.arg) for r in requests)
    for payload in load_events()[:60]:
        batched = fields.extract_values(fields.parse_event(payload), plan)
        event = fields.parse_event(payload)
        single = [fields.extract_value(event, fid, arg) for fid, arg in plan]
        assert single == batched


def test_fields_json_matches_reference_table() -> None:
    reference = json.loads(read_bytes("k8saudit-eks-0.12.0.fields.json"))
    ours = json.loads(fields.FIELDS_JSON)
    assert [f["name"] for f in ours] == [f["name"] for f in reference]
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine["type"] == theirs["type"] == "string"
        assert mine["isList"] == theirs["isList"], mine["name"]
        assert mine["arg"] == theirs["arg"], mine["name"]
        assert 0 < len(mine["desc"]) <= 1023, mine["name"]
        assert mine["display"], mine["name"]


def test_list_fields_return_tuples_and_scalars_strings() -> None:
    listed = [f["isList"] for f in json.loads(fields.FIELDS_JSON)]
    requests = load_requests()
    plan = tuple((r.field_id, r.arg) for r in requests)
    for payload in load_events():
        for request, value in zip(
            requests, fields.extract_values(fields.parse_event(payload), plan), strict=True
        ):
            if value is None:
                continue
            if listed[request.field_id]:
                assert isinstance(value, tuple) and all(isinstance(v, str | bytes) for v in value)
            else:
                assert isinstance(value, str | bytes), request.text
