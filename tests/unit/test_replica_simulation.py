"""The replica protocol under seeded schedules, in virtual time (tests/sim): the real Coordinator, fenced
store and sources against a simulated DynamoDB, CloudWatch Logs and Kinesis, with replicas joining,
leaving, crashing, pausing and cut off, the table throttling and losing answers, units appearing.

Every schedule is checked for lost events, repeats beyond the bound, overlapping holders, balance after
the quiet phase and stuck replicas (tests/sim/checks.py). A failing seed is printed with its steps and
the command that replays it alone with every log line: python -m tests.sim --seed N --mode M --trace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8saudit_eks_py.coordination.coordinator import Coordinator
from k8saudit_eks_py.coordination.lease import Lease
from tests.sim.converge import convergence
from tests.sim.dynamodb import Table
from tests.sim.expressions import DynamoError
from tests.sim.run import run_schedule

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = {"poll": 250, "stream": 200}  # per mode: about 12 s of CPU each


def _failures(mode: str, seeds: range) -> list[str]:
    reports = []
    for seed in seeds:
        result = run_schedule(seed, mode)
        if not result.ok:
            reports.append(result.report())
    return reports


@pytest.mark.parametrize("mode", ["poll", "stream"])
def test_every_schedule_keeps_the_delivery_promise(mode: str) -> None:
    failures = _failures(mode, range(SCHEDULES[mode]))
    assert not failures, f"{len(failures)} of {SCHEDULES[mode]} schedules failed:\n\n" + "\n\n".join(
        failures[:3]
    )


def test_units_taken_without_their_origin_lose_events() -> None:
    """Before origins were recorded in the lease, a unit handed over before its first checkpoint was read
    from its new holder's now - shift: the checks must see the events lost in between."""
    caught = []
    for seed in range(16):
        lost = [v for v in run_schedule(seed, "poll", origin_broken=True).outcome.violations if "lost:" in v]
        if lost:
            caught.append(seed)
            assert run_schedule(seed, "poll").ok
    assert len(caught) >= 4, caught


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("poll", {"may deliver it too"}),
        ("stream", {"may deliver it too", "after another holding had begun"}),
    ],
)
def test_a_holder_delivering_past_its_lease_is_caught(
    mode: str, expected: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Coordinator that kept delivering after its lease could expire (no margin, no expiry) delivers a
    unit while another replica may: the checks must say so, at the instant, and from the ledger when the
    old holder's deliveries interleave with the new one's."""

    def forever(self: Coordinator, unit: str) -> bool:
        held = self._held.get(unit)
        return held is not None and held.draining_since is None

    monkeypatch.setattr(Coordinator, "deliverable", forever)
    kinds: set[str] = set()
    for seed in range(40):
        for v in run_schedule(seed, mode).outcome.violations:
            kinds |= {k for k in expected if k in v}
        if kinds == expected:
            return
    pytest.fail(f"40 schedules with a broken lease, and the checks found only {kinds or 'nothing'}")


@pytest.mark.parametrize("mode", ["poll", "stream"])
def test_a_holder_ignoring_the_checkpoint_is_caught(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new holder that started from the unit's origin instead of its last checkpoint would deliver
    committed events again: the bound on repeats must say so."""
    monkeypatch.setattr(Lease, "start", property(lambda lease: lease.origin or lease.checkpoint))
    for seed in range(10):
        if any("had committed its batch" in v for v in run_schedule(seed, mode).outcome.violations):
            return
    pytest.fail("10 schedules whose new holders ignore checkpoints, and no repeat was reported")


def test_a_seed_replays_identically() -> None:
    """Same seed, same run: in this process, on threads instead of greenlets, and in another process
    with another string-hash seed (what `python -m tests.sim --seed N` relies on)."""
    first = run_schedule(7, "stream")
    assert run_schedule(7, "stream").digest == first.digest
    assert run_schedule(7, "stream", threads=True).digest == first.digest
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "tests.sim", "--seed", "7", "--mode", "stream"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"digest {first.digest}" in out.stdout


@pytest.mark.parametrize(
    ("replicas", "units", "lease"), [(2, 3, 3), (3, 3, 6), (3, 10, 6), (4, 7, 20), (5, 20, 6)]
)
def test_replicas_started_together_balance_within_three_lease_periods(
    replicas: int, units: int, lease: int
) -> None:
    results = [convergence(seed, replicas, units, lease) for seed in range(15)]
    slow = [r for r in results if r.periods is None or r.periods > 3]
    assert not slow, slow


@pytest.mark.parametrize(("replicas", "units", "lease"), [(4, 4, 6), (6, 6, 3), (3, 10, 6)])
def test_replicas_started_apart_balance_within_three_lease_periods_of_the_last(
    replicas: int, units: int, lease: int
) -> None:
    """Started over four lease periods: no hand-overs going round (each asker counts what it asked for)."""
    results = [convergence(seed, replicas, units, lease, periods=10, spread=4 * lease) for seed in range(10)]
    slow = [r for r in results if r.periods is None or r.periods > 3]
    assert not slow, slow


def test_the_simulated_table_refuses_what_dynamodb_refuses() -> None:
    table = Table("t")
    put = {"TableName": "t", "Item": {"unit": {"S": "a"}, "lease_counter": {"N": "1"}}}
    table.execute(0, "r", "PutItem", put)
    update = {
        "TableName": "t",
        "Key": {"unit": {"S": "a"}},
        "UpdateExpression": "SET #c = #c + :one",
        "ExpressionAttributeNames": {"#c": "lease_counter"},
    }
    with pytest.raises(DynamoError, match=r"ValidationException.*not defined"):
        table.execute(0, "r", "UpdateItem", update)
    unused = {**update, "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}}
    with pytest.raises(DynamoError, match="unused in expressions"):
        table.execute(0, "r", "UpdateItem", unused)
    missing = {
        **update,
        "UpdateExpression": "SET #c = #x + :one",
        "ExpressionAttributeNames": {"#c": "c", "#x": "x"},
    }
    missing["ExpressionAttributeValues"] = {":one": {"N": "1"}}
    with pytest.raises(DynamoError, match="does not exist"):
        table.execute(0, "r", "UpdateItem", missing)
    fenced = {**update, "ExpressionAttributeValues": {":one": {"N": "1"}, ":c": {"N": "2"}}}
    fenced["ConditionExpression"] = "#c = :c"
    with pytest.raises(DynamoError, match="ConditionalCheckFailed"):
        table.execute(0, "r", "UpdateItem", fenced)
    fenced["ExpressionAttributeValues"] = {":one": {"N": "1"}, ":c": {"N": "1"}}
    fenced["ReturnValues"] = "ALL_NEW"
    assert table.execute(0, "r", "UpdateItem", fenced)["Attributes"]["lease_counter"] == {"N": "2"}
