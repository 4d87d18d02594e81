"""Field parity through the real library and the C host: every request of field-requests.txt on every
event of audit-events-dev.jsonl, one extract_fields call per request as Falco makes them, equals the Go
plugin's golden values. Run with both argument conventions (Falco ≤ 0.42 and ≥ 0.43)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.host import Host


def _golden(reference_dir: Path) -> tuple[list[str], list[dict[str, object]]]:
    requests = [r for r in (reference_dir / "field-requests.txt").read_text().splitlines() if r]
    golden = [json.loads(line) for line in (reference_dir / "golden-dev.jsonl").read_text().splitlines()]
    return requests, golden


@pytest.mark.parametrize("falco_args", [[], ["--falco-0.42"]], ids=["falco-0.43+", "falco-0.35-0.42"])
def test_all_values_equal_the_go_plugin(host: Host, reference_dir: Path, falco_args: list[str]) -> None:
    requests, golden = _golden(reference_dir)
    result = host.run(
        "extract",
        "--events",
        str(reference_dir / "audit-events-dev.jsonl"),
        "--requests",
        str(reference_dir / "field-requests.txt"),
        *falco_args,
        check=True,
    )
    events = result.events
    assert len(events) == len(golden) == 400
    assert result.summary["extract_failures"] == 0
    mismatches = []
    compared = 0
    for expected, got in zip(golden, events, strict=True):
        for request, value in zip(requests, got["values"], strict=True):
            compared += 1
            if expected[request] != value:
                mismatches.append((expected["n"], request, expected[request], value))
    assert compared == 400 * 117
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
