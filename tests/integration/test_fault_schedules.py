"""Random fault schedules against real processes, a few fixed seeds per mode: replicas of the real library in
C host processes sharing clusters (poll mode) or shards (stream mode) through DynamoDB leases, while they are
started, stopped, killed, paused, cut off, throttled, the stream resharded and the config reloaded. After
each schedule: nothing lost, repeats only from a faulted replica's last batch, never two replicas delivering
one unit at once, balanced, none stuck (tests.support.fault_checks). A failure prints the seed and the steps;
benchmarks/bench_fault_schedules.py replays it (--seed S --seeds 1) or runs many more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_checks import check
from tests.support.fault_run import run
from tests.support.fault_schedule import generate
from tests.support.host import Host
from tests.support.moto_server import MotoServer, moto_server

DURATION_S = 18.0


@pytest.fixture(scope="module")
def resharding_moto() -> Iterator[MotoServer]:
    with moto_server(aws_resharding=True) as server:
        yield server


@pytest.mark.parametrize(("mode", "seed"), [("poll", 7), ("poll", 26), ("stream", 20), ("stream", 24)])
def test_fault_schedule_keeps_every_delivery_promise(
    mode: str, seed: int, host: Host, resharding_moto: MotoServer, tmp_path: Path
) -> None:
    sched = generate(seed, mode, DURATION_S)
    outcome = run(sched, host, resharding_moto.url, tmp_path)
    assert len(outcome.traffic.sent) > 100  # the schedule did put events
    violations = check(outcome)
    assert violations == [], "\n".join([*violations, sched.trace()])
