"""`k8saudit-eks-py tail --from/--to` through the real .so: a time range of a cluster and of an s3://
archive, printed and ended by itself; mistakes get one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.archive import create_bucket, export_object, iso_ms
from tests.support.moto_server import MotoServer, dummy_environ, seed_cluster

ROOT = Path(__file__).resolve().parents[2]
STREAM = "kube-apiserver-audit-" + "7a" * 16


def tail(*args: str) -> subprocess.CompletedProcess[str]:
    env = dummy_environ()
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "tail", *args, "--progress-interval", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def seeded(moto: MotoServer) -> int:
    """Events a-0..a-99 one second apart, two hours ago; returns the first one's timestamp."""
    moto.reset()
    base = (int(time.time()) - 7200) * 1000
    seed_cluster(moto.url, "prod", STREAM, [(n, base + n * 1000) for n in range(100)])
    s3 = create_bucket(moto.url, "tail-archive")
    body = export_object([(n, base + n * 1000) for n in range(100)])
    s3.put_object(Bucket="tail-archive", Key=f"x/aws/eks/prod/cluster/task/{STREAM}/000000.gz", Body=body)
    return base


def test_tail_a_range_of_a_cluster_ends_at_its_end(moto: MotoServer, seeded: int) -> None:
    proc = tail(
        "prod",
        *("--from", iso_ms(seeded + 10_000), "--to", iso_ms(seeded + 20_000)),
        *("--endpoint-url", moto.url, "-o", "%ka.auditid %ka.cluster.name"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"a-{n} prod" for n in range(10, 20)]


def test_tail_an_archive_with_a_window(moto: MotoServer, seeded: int) -> None:
    proc = tail(
        "s3://tail-archive/x/",
        *(
            "--from",
            iso_ms(seeded + 95_000),
            "--endpoint-url",
            moto.url,
            "-o",
            "%ka.auditid %ka.cluster.name",
        ),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"a-{n} prod" for n in range(95, 100)]


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (["kinesis://s", "--from", "1h"], 2, "not of kinesis://s"),
        (["prod", "--to", "1h"], 2, "--to needs --from"),
        (["prod", "--from", "1h", "--since", "5m"], 2, "not both"),
        (["prod", "--from", "yesterday"], 1, "from='yesterday' is not a time"),
    ],
)
def test_range_mistakes_get_one_line(moto: MotoServer, args: list[str], rc: int, message: str) -> None:
    proc = tail(*args, "--endpoint-url", moto.url)
    assert proc.returncode == rc, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
