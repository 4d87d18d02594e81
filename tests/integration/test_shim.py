"""The shim as Falco sees it: identity, schema, errors, replay through next_batch, lifecycle, lifetimes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.support.host import Host

DEV_EVENTS = "audit-events-dev.jsonl"


def _requests(tmp_path: Path, *names: str) -> str:
    path = tmp_path / "requests.txt"
    path.write_text("\n".join(names) + "\n")
    return str(path)


def test_identity_is_a_drop_in_for_k8saudit_eks(host: Host) -> None:
    info = host.run("info", check=True).lines[0]
    assert info["name"] == "k8saudit-eks"
    assert info["id"] == 9
    assert info["event_source"] == "k8s_audit"
    assert info["required_api_version"] == "3.0.0"
    # The stock rules require k8saudit-eks >= 0.12.0 with the same major version.
    major, minor, patch = (int(x) for x in info["version"].split("."))
    assert major == 0 and (minor, patch) >= (12, 0)
    assert info["description"] and info["contact"]
    assert len(info["fields"]) == 100


def test_init_schema_accepts_every_go_key_with_its_default(host: Host) -> None:
    info = host.run("info", check=True).lines[0]
    assert info["schema_type"] == 1
    props = info["init_schema"]["properties"]
    expected = {
        "profile": ("string", ""),
        "region": ("string", ""),
        "buffer_size": ("integer", 200),
        "shift": ("integer", 1),
        "polling_interval": ("integer", 5),
        "use_async": ("boolean", True),
        "max_event_size": ("integer", 1048576),
    }
    for key, (json_type, default) in expected.items():
        assert props[key]["type"] == json_type, key
        assert props[key]["default"] == default, key
    assert info["init_schema"]["additionalProperties"] is True
    assert info["open_params_rc"] == 0
    assert any(p["value"].startswith("file://") for p in info["open_params"])


@pytest.mark.parametrize("config", ["", "{}", '{"use_async": false, "unknown_key": [1]}'])
def test_init_accepts_empty_and_extra_config(host: Host, config: str) -> None:
    result = host.run("init", "--config", config)
    assert result.lines[0]["rc"] == 0, result.lines[0]


@pytest.mark.parametrize(
    ("config", "key"),
    [('{"shift": "10"}', "shift"), ('{"use_async": 1}', "use_async"), ('{"region": 5}', "region")],
)
def test_wrong_type_fails_init_naming_the_key(host: Host, config: str, key: str) -> None:
    line = host.run("init", "--config", config).lines[0]
    assert line["rc"] == 1
    assert line["state"] is True  # a state is returned so get_last_error can explain
    assert f"'{key}'" in line["error"]


def test_open_errors_are_reported_not_crashed(host: Host, tmp_path: Path) -> None:
    empty = host.run("open", "--open", "").lines[0]
    assert empty["rc"] == 1 and "EKS cluster name" in empty["error"]
    missing = host.run("open", "--open", f"file://{tmp_path}/missing.jsonl").lines[0]
    assert missing["rc"] == 1 and "missing.jsonl" in missing["error"]


def test_replay_jsonl_delivers_every_event_with_stage_timestamp(
    host: Host, reference_dir: Path, tmp_path: Path
) -> None:
    source = reference_dir / DEV_EVENTS
    lines = source.read_bytes().splitlines()
    result = host.run(
        "run", "--open", f"file://{source}", "--requests", _requests(tmp_path, "ka.auditid"), check=True
    )
    assert result.summary["rc"] == 2  # EOF after the last event
    assert result.summary["events"] == len(lines) == 400
    for line, event in zip(lines, result.events, strict=True):
        doc = orjson.loads(line)
        assert event["values"][0] == [doc["auditID"]]
        assert event["len"] == 38 + len(line)  # payload = the event's exact JSON text
    # stageTimestamp of the first event: 2026-11-15T15:41:24.827036Z
    assert result.events[0]["ts"] == 1794757284827036000


def _write_formats(reference_dir: Path, tmp_path: Path) -> dict[str, Path]:
    docs = [orjson.loads(x) for x in (reference_dir / DEV_EVENTS).read_bytes().splitlines()[:25]]
    event_list = tmp_path / "eventlist.json"
    event_list.write_bytes(
        orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": docs})
    )
    cloudwatch = tmp_path / "filter-log-events.json"
    cloudwatch.write_text(
        json.dumps(
            {
                "events": [
                    {
                        "logStreamName": "kube-apiserver-audit-0123456789abcdef0123456789abcdef",
                        "timestamp": 1,
                        "message": orjson.dumps(d).decode(),
                        "ingestionTime": 2,
                        "eventId": str(i),
                    }
                    for i, d in enumerate(docs)
                ],
                "searchedLogStreams": [],
            },
            indent=4,
        )
    )
    return {"eventlist": event_list, "cloudwatch": cloudwatch}


@pytest.mark.parametrize("fmt", ["eventlist", "cloudwatch"])
def test_replay_eventlist_and_filter_log_events_output(
    host: Host, reference_dir: Path, tmp_path: Path, fmt: str
) -> None:
    path = _write_formats(reference_dir, tmp_path)[fmt]
    result = host.run(
        "run",
        "--open",
        f"file://{path}",
        "--requests",
        _requests(tmp_path, "ka.auditid", "ka.verb"),
        check=True,
    )
    docs = [orjson.loads(x) for x in (reference_dir / DEV_EVENTS).read_bytes().splitlines()[:25]]
    assert [e["values"][0] for e in result.events] == [[d["auditID"]] for d in docs]
    assert result.summary["rc"] == 2


def test_replay_reports_progress(host: Host, reference_dir: Path) -> None:
    result = host.run("run", "--open", f"file://{reference_dir / DEV_EVENTS}", "--progress", check=True)
    reports = [line.split(" ", 2) for line in result.stderr.splitlines() if line.startswith("progress ")]
    percents = [int(r[1]) for r in reports]
    assert percents and percents == sorted(percents) and percents[-1] == 10000  # hundredths of a percent
    assert DEV_EVENTS in reports[-1][2]


def test_replay_counts_lines_that_are_not_audit_events(
    host: Host, reference_dir: Path, tmp_path: Path
) -> None:
    good = (reference_dir / DEV_EVENTS).read_bytes().splitlines()[:3]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\n".join([good[0], b"not json", good[1], b'{"kind":"Other"}', b"[1,2]", good[2]]) + b"\n"
    )
    result = host.run("run", "--open", f"file://{path}", check=True)
    assert result.summary["events"] == 3
    assert result.summary["metrics"]["malformed"] == 3
    assert "skipped" in result.stderr


def test_lifecycle_two_states_reinit_and_dlclose(host: Host, reference_dir: Path, tmp_path: Path) -> None:
    result = host.run(
        "lifecycle",
        "--open",
        f"file://{reference_dir / DEV_EVENTS}",
        "--requests",
        _requests(tmp_path, "ka.verb", "ka.user.name"),
        check=True,
    )
    steps = {line["step"]: line for line in result.lines}
    assert set(steps) == {
        "init_two_states",
        "use_second_after_destroying_first",
        "reinit_after_destroy",
        "reopen_same_state",
        "dlclose_dlopen_init",
    }
    assert all(step["ok"] for step in steps.values()), steps


def test_values_stay_valid_across_later_extractions(host: Host, reference_dir: Path, tmp_path: Path) -> None:
    # The host prints every value only after all requests of the event were extracted, so each
    # request's buffer must survive the calls for other fields and other arguments.
    requests = _requests(tmp_path, "ka.user.groups", "ka.verb", "ka.user.groups", "ka.auditid", "ka.verb")
    result = host.run(
        "run", "--open", f"file://{reference_dir / DEV_EVENTS}", "--requests", requests, check=True
    )
    for line, event in zip(
        (reference_dir / DEV_EVENTS).read_bytes().splitlines(), result.events, strict=True
    ):
        doc = orjson.loads(line)
        values = event["values"]
        assert values[0] == values[2]
        assert values[1] == values[4]
        assert values[3] == [doc["auditID"]]


def test_event_to_string_is_never_null(host: Host, reference_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_bytes(b"\n".join([*(reference_dir / DEV_EVENTS).read_bytes().splitlines()[:3], b"garbage"]))
    lines = host.run("tostring", "--events", str(path), check=True).lines
    assert len(lines) == 4
    assert all(isinstance(s, str) and s != "(NULL)" for s in lines)


def test_metrics_while_reading_from_another_thread(host: Host, reference_dir: Path) -> None:
    result = host.run("run", "--open", f"file://{reference_dir / DEV_EVENTS}", "--metrics-thread", check=True)
    assert result.summary["events"] == 400
    assert result.summary["metrics"]["events"] == 400
    assert result.summary["metrics_calls"] >= 1


def test_sanitized_build_lifecycle_and_extraction(
    asan_host: Host, reference_dir: Path, tmp_path: Path
) -> None:
    requests = _requests(tmp_path, "ka.verb", "ka.user.groups", "ka.uri.param[watch]", "ka.auditid")
    source = f"file://{reference_dir / DEV_EVENTS}"
    lifecycle = asan_host.run("lifecycle", "--open", source, "--requests", requests)
    assert lifecycle.returncode == 0, lifecycle.stderr[-3000:]
    assert all(line["ok"] for line in lifecycle.lines)
    run = asan_host.run("run", "--open", source, "--requests", requests, "--metrics-thread")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.summary["events"] == 400
    bad = asan_host.run("init", "--config", '{"shift": []}')
    assert bad.lines[0]["rc"] == 1 and "'shift'" in bad.lines[0]["error"]


def test_exports_exactly_the_symbols_of_a_source_and_extract_plugin(host: Host) -> None:
    # Nothing else leaks out (hidden visibility), and the optional symbols whose signature changed
    # across Falco releases (get_extract_event_types) are deliberately absent.
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(host.library)], capture_output=True, text=True, check=True
    ).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert exported == {
        f"plugin_{name}"
        for name in (
            "get_required_api_version",
            "get_version",
            "get_name",
            "get_description",
            "get_contact",
            "get_id",
            "get_event_source",
            "get_init_schema",
            "get_fields",
            "init",
            "destroy",
            "get_last_error",
            "open",
            "close",
            "next_batch",
            "list_open_params",
            "get_progress",
            "event_to_string",
            "extract_fields",
            "get_metrics",
        )
    }
