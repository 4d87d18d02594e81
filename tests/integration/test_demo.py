"""`k8saudit-eks-py demo` end to end: moto on 127.0.0.1, seeded log group, the real .so, alerts marked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from k8saudit_eks_py import library_path
from tests.support.moto_server import dummy_environ

ROOT = Path(__file__).resolve().parents[2]


def test_demo_delivers_every_event_and_flags_each_attack() -> None:
    library_path()  # the installed .so must exist: the demo loads it like Falco does
    env = dummy_environ()
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "demo", "--timeout", "90"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    events = [line for line in lines if not line.startswith("#")]
    alerts = [line for line in events if line.startswith("! ")]
    assert len(events) == 32
    assert all(line.startswith(("  user=", "! user=")) for line in events)
    assert sorted(line.rsplit("<- ", 1)[1] for line in alerts) == [
        "Anonymous Request Allowed",
        "Attach to cluster-admin Role",
        "Attach/Exec Pod",
        "Create Privileged Pod",
    ]
    by_rule = {line.rsplit("<- ", 1)[1]: line for line in alerts}
    assert by_rule["Attach/Exec Pod"].startswith(
        "! user=arn:aws:sts::111122223333:assumed-role/ci-deployer/mallory verb=create "
        "target=web-6d9f7c8b4-x2k8q target.namespace=shop resource=pods"
    )
    assert "user=system:anonymous verb=get target=aws-credentials" in by_rule["Anonymous Request Allowed"]
    assert "resource=clusterrolebindings" in by_rule["Attach to cluster-admin Role"]
    # The non-alerting create (a normal, unprivileged pod from the replicaset controller) stays unmarked.
    assert any("replicaset-controller verb=create" in line and line.startswith("  ") for line in events)
    summary = next(line for line in lines if line.startswith("# 32/32 events delivered; plugin metrics: "))
    assert "api_calls=" in summary  # read through plugin_get_metrics of the real .so
    assert "/aws/eks/demo/cluster" in lines[1] and "kube-apiserver-audit-" in lines[1]
    assert "[k8saudit-eks] " in proc.stderr  # the plugin's open/first-event log lines


def _demo(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dummy_environ()
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_demo_json_output_prints_each_audit_event() -> None:
    proc = _demo("-o", "json", "--timeout", "90")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert len(events) == 32
    docs = [orjson.loads(line[2:].split("    <- ")[0]) for line in events]
    assert all(doc["kind"] == "Event" and doc["auditID"] for doc in docs)
    assert len({doc["auditID"] for doc in docs}) == 32


def test_demo_timeout_says_it_ran_out() -> None:
    proc = _demo("--timeout", "0.01")
    assert proc.returncode == 1
    assert "# TIMEOUT: --timeout 0.01s ran out after" in proc.stdout
    assert "MISMATCH" not in proc.stdout
    assert "error: --timeout 0.01s ran out before every event arrived" in proc.stderr


def test_demo_rejects_a_bad_output_format_and_timeout() -> None:
    proc = _demo("--timeout", "0")
    assert proc.returncode == 2 and "--timeout: must be greater than 0, got 0" in proc.stderr
    proc = _demo("-o", "%ka.nope")
    assert proc.returncode == 2 and "error: -o: unknown field %ka.nope" in proc.stderr
