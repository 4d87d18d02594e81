"""Field parity through the real library and the C host: every request of field-requests.txt on every
event of both reference sets (audit-events-dev*.jsonl), one extract_fields call per request as Falco
makes them, equals the Go plugin's golden values. Run with both argument conventions (Falco ≤ 0.42
and ≥ 0.43)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.host import Host
from tests.support.reference import EVENT_SETS


def _golden(reference_dir: Path, name: str) -> tuple[list[str], list[dict[str, object]]]:
    requests = [r for r in (reference_dir / "field-requests.txt").read_text().splitlines() if r]
    golden = [json.loads(line) for line in (reference_dir / name).read_text().splitlines()]
    return requests, golden


@pytest.mark.parametrize(
    ("events_name", "golden_name", "count"), [(*EVENT_SETS[0], 400), (*EVENT_SETS[1], 1300)]
)
@pytest.mark.parametrize("falco_args", [[], ["--falco-0.42"]], ids=["falco-0.43+", "falco-0.35-0.42"])
def test_all_values_equal_the_go_plugin(
    host: Host, reference_dir: Path, falco_args: list[str], events_name: str, golden_name: str, count: int
) -> None:
    requests, golden = _golden(reference_dir, golden_name)
    result = host.run(
        "extract",
        "--events",
        str(reference_dir / events_name),
        "--requests",
        str(reference_dir / "field-requests.txt"),
        *falco_args,
        check=True,
    )
    events = result.events
    assert len(events) == len(golden) == count
    assert result.summary["extract_failures"] == 0
    mismatches = []
    compared = 0
    for expected, got in zip(golden, events, strict=True):
        for request, value in zip(requests, got["values"], strict=True):
            compared += 1
            if expected[request] != value:
                mismatches.append((expected["n"], request, expected[request], value))
    assert compared == count * 117
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


def test_sanitized_build_extracts_the_same_values(asan_host: Host, host: Host, reference_dir: Path) -> None:
    args = (
        "extract",
        "--events",
        str(reference_dir / "audit-events-dev.jsonl"),
        "--requests",
        str(reference_dir / "field-requests.txt"),
    )
    sanitized = asan_host.run(*args)
    assert sanitized.returncode == 0, sanitized.stderr[-3000:]
    assert sanitized.events == host.run(*args, check=True).events


def _hostile_payloads() -> list[bytes]:
    big = b"x" * (1 << 20)
    deep = b'{"auditID":"d","requestObject":' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"
    return [
        b"not json at all",
        b'{"auditID":"t","verb":"get","user":{"username":"tru',  # truncated
        b"[1,2,3]",
        b"42",
        deep,
        b'{"auditID":"b","user":{"username":"' + big + b'"},"requestURI":"/x?w=' + big[:1000] + b'"}',
        b'{"auditID":"l","user":{"groups":[' + b",".join(b'"g"' for _ in range(100_000)) + b"]}}",
        b'{"auditID":"u","user":{"username":"x\xff\xfey"},"verb":"g\xc3"}',
        b'{"auditID":"q","requestURI":"/api?%zz=1;&&=","verb":"list"}',
    ]


def test_hostile_payloads_give_no_value_and_never_crash(
    asan_host: Host, reference_dir: Path, tmp_path: Path
) -> None:
    """Through the sanitizer build: every request of field-requests.txt (index arguments past the end
    included) plus key arguments with odd characters, on payloads a hostile or broken writer could
    produce. The host must finish, every extraction must succeed (no value is a success)."""
    events = tmp_path / "hostile.jsonl"
    events.write_bytes(b"\n".join(_hostile_payloads()) + b"\n")
    requests = tmp_path / "requests.txt"
    odd = ["ka.uri.param[%zz]", "ka.uri.param[\xe2\x9c\x93]", "ka.req.volume.hostpath[/*]", "ka.uri.param[]"]
    base = (reference_dir / "field-requests.txt").read_text().splitlines()
    requests.write_text("\n".join([*base, "ka.req.pod.containers.image[99999999]", *odd]) + "\n")
    result = asan_host.run("extract", "--events", str(events), "--requests", str(requests), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.summary == {"events": len(_hostile_payloads()), "extract_failures": 0}
    by_event = [dict(zip(requests.read_text().splitlines(), e["values"], strict=True)) for e in result.events]
    assert all(v is None for v in by_event[0].values())  # not JSON: no value at all
    assert all(v is None for v in by_event[2].values())  # an array is not an audit event
    assert by_event[5]["ka.user.name"] == ["x" * (1 << 20)]
    assert len(by_event[6]["ka.user.groups"]) == 100_000
    assert by_event[8]["ka.uri.param[watch]"] is None  # a broken query string gives no value


def test_get_fields_matches_the_go_plugin_table(host: Host, reference_dir: Path) -> None:
    reference = json.loads((reference_dir / "k8saudit-eks-0.12.0.fields.json").read_text())
    ours = host.run("info", check=True).lines[0]["fields"]
    assert [f["name"] for f in ours] == [f["name"] for f in reference]
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine["type"] == theirs["type"], mine["name"]
        assert bool(mine.get("isList")) == theirs["isList"], mine["name"]
        for flag in ("isRequired", "isIndex", "isKey"):
            assert bool(mine.get("arg", {}).get(flag)) == theirs["arg"][flag], (mine["name"], flag)
        assert 0 < len(mine["desc"]) <= 1023, mine["name"]
