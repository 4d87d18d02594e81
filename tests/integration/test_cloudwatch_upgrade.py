"""Upgrading from an earlier release never stops Falco: its checkpoint file (version 1) is migrated, and a
saved state this release cannot read starts its log group from now - shift with one warning."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch, unit_key
from tests.support.moto_server import (
    FAST,
    REGION,
    MotoServer,
    audit_ids,
    aws_env,  # noqa: F401
    make_config,
    read_until,
    seed_cluster,
)

STREAM = "kube-apiserver-audit-5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"


def _group(moto: MotoServer, cluster: str, base: int) -> tuple[str, int]:
    """40 events one per 100 ms from `base`; returns the log group and the first timestamp."""
    return seed_cluster(moto.url, cluster, STREAM, [(i, base + 100 * i) for i in range(40)]), base


def test_a_version_1_checkpoint_file_resumes_without_loss_or_repeats(
    moto: MotoServer, tmp_path: Path
) -> None:
    base = int(time.time() * 1000) - 60_000
    group, _ = _group(moto, "upgraded", base)
    key = unit_key(make_config(moto.url), REGION, group)
    # The earlier release stopped with its horizon at event 10 and had delivered 10..24 and 30 after it.
    horizon = base + 1_000
    delivered = [(f"{i}", base + 100 * i) for i in [*range(10, 25), 30]]
    path = tmp_path / "cp"
    path.write_bytes(orjson.dumps({"version": 1, "groups": {key: {"horizon": horizon, "ids": delivered}}}))
    # moto numbers eventIds 0, 1, 2, ... in put order in this group: the same ids the old release saw.
    config = make_config(moto.url, checkpoint_file=str(path), shift=0)
    source = open_cloudwatch("upgraded", config, tuning=FAST)
    try:
        got = audit_ids(read_until(source, 14, 20, settle=2.0))
    finally:
        source.close()
    expected = [f"a-{i}" for i in [*range(25, 30), *range(31, 40)]]
    assert sorted(got) == sorted(expected), got
    assert orjson.loads(path.read_bytes())["version"] == 2


def test_an_unreadable_saved_state_starts_from_now_minus_shift_with_one_warning(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = int(time.time() * 1000) - 30_000
    group, _ = _group(moto, "future", base)
    key = unit_key(make_config(moto.url), REGION, group)
    path = tmp_path / "cp"
    path.write_bytes(orjson.dumps({"version": 2, "units": {key: {"version": 99, "cursor": "?"}}}))
    config = make_config(moto.url, checkpoint_file=str(path), shift=60)
    source = open_cloudwatch("future", config, tuning=FAST)
    try:
        got = audit_ids(read_until(source, 40, 20))
    finally:
        source.close()
    assert sorted(got) == sorted(f"a-{i}" for i in range(40))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cannot be read" in line]
    assert len(warnings) == 1 and "'cursor': '?'" in warnings[0] and "from now - shift" in warnings[0]
