"""S3 archives in a local moto S3: a CloudWatch export (export task folders of gzip `timestamp message`
lines) and a Firehose delivery (gzip subscription documents back to back), with a corrupt and a foreign
object among them. Every event once, in order per stream, then EOF; a time window; kill -9 in the C host
resumes inside an object; an unknown bucket or an empty prefix fails open with the fix."""

from __future__ import annotations

import gzip
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from k8saudit_eks_py.config import parse_config
from k8saudit_eks_py.sources.archive import open_archive
from k8saudit_eks_py.sources.history.retry import Tuning
from k8saudit_eks_py.sources.history.window import iso
from tests.support.archive import create_bucket, export_object, firehose_document, firehose_object
from tests.support.cutproxy import CutProxy
from tests.support.host import Host, HostResult
from tests.support.moto_server import MotoServer, audit_event, audit_ids, aws_env, dummy_environ  # noqa: F401

BUCKET = "audit-archive"
BASE = 1_793_491_200_000  # 2026-11-01T00:00:00Z
EXPORT = "exports/aws/eks/blue/cluster/0f1e2d3c-task"
A, B = "kube-apiserver-audit-" + "aa" * 16, "kube-apiserver-audit-" + "bb" * 16
F1, F2 = "kube-apiserver-audit-" + "f1" * 16, "kube-apiserver-audit-" + "f2" * 16
EOF_RC = 2
FAST = Tuning(backoff_min_s=0.02, backoff_max_s=0.3, log_every_s=0.0, read_chunk=4096)


class Archive:
    """What was written: event n → (cluster, stream, timestamp ms)."""

    def __init__(self, moto: MotoServer) -> None:
        s3 = create_bucket(moto.url, BUCKET)
        self.where: dict[str, tuple[str, str, int]] = {}

        def put(key: str, body: bytes) -> None:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)

        # export: two audit streams of two objects each, an authenticator stream, the permission check
        for stream, first in ((A, 0), (B, 1000)):
            for part in range(2):
                events = [(n, BASE + n * 10) for n in range(first + part * 150, first + (part + 1) * 150)]
                put(f"{EXPORT}/{stream}/00000{part}.gz", export_object(events, pad=400))
                self.where.update({f"a-{n}": ("blue", stream, ts) for n, ts in events})
        # an object of a stream with lines that are not events: counted and logged, the rest delivered
        lines = [
            f"{iso(BASE + 13_000)} {audit_event(1300, BASE + 13_000)}",
            f"{iso(BASE + 13_001)} {{not json",
            "a line without a timestamp",
            f"{iso(BASE + 13_010)} {audit_event(1301, BASE + 13_010)}",
        ]
        put(f"{EXPORT}/{B}/000002.gz", gzip.compress("\n".join(lines).encode()))
        self.where.update({"a-1300": ("blue", B, BASE + 13_000), "a-1301": ("blue", B, BASE + 13_010)})
        put(f"{EXPORT}/authenticator-00/000000.gz", gzip.compress(f"{iso(BASE)} time=x msg=y\n".encode()))
        put("exports/aws/eks/blue/cluster/aws-logs-write-test", b"Permission Check Successful")
        # Firehose: hourly folders, documents of 40 events, a repeated delivery, a control message
        group = "/aws/eks/green/cluster"
        n = 5000
        for hour in range(3):
            docs = []
            for stream in (F1, F2):
                for _ in range(3):
                    events = [(k, BASE + k * 10) for k in range(n, n + 40)]
                    docs.append(firehose_document(group, stream, events, pad=400))
                    self.where.update({f"a-{k}": ("green", stream, ts) for k, ts in events})
                    n += 40
            docs.insert(2, docs[1])  # the subscription delivered a record twice
            docs.insert(0, firehose_document(group, "", [], message_type="CONTROL_MESSAGE"))
            put(f"firehose/2026/11/01/0{hour}/audit-1-{hour}.gz", firehose_object(docs, members=hour == 1))
        broken = firehose_object([firehose_document(group, F1, [(9000, BASE)])])
        put("firehose/2026/11/01/01/audit-1-1b.gz", broken[: len(broken) // 2])  # cut short
        put("firehose/2026/11/01/02/notes.txt", b"not an archive")  # foreign

    def ids(self, prefix: str = "", window: tuple[int, int] | None = None) -> set[str]:
        cluster = {"exports": "blue", "firehose": "green"}.get(prefix.split("/")[0])
        return {
            i
            for i, (c, _, ts) in self.where.items()
            if (cluster is None or c == cluster) and (window is None or window[0] <= ts < window[1])
        }


@pytest.fixture
def archive(moto: MotoServer) -> Archive:
    moto.reset()
    return Archive(moto)


def _config(moto: MotoServer, **extra: Any) -> str:
    return orjson.dumps({"s3_endpoint_url": moto.url, "region": "us-east-1", **extra}).decode()


def _read_to_eof(source: Any) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 60
    eof = False
    while not eof:
        assert time.monotonic() < deadline, f"no EOF after {len(got)} events"
        batch, eof = source.next_batch(64, 0.5)
        got.extend(batch)
    return got


def test_export_and_firehose_layouts_each_event_once_in_order_with_bad_objects_counted(
    moto: MotoServer, archive: Archive
) -> None:
    source = open_archive(f"{BUCKET}/", parse_config(_config(moto)), tuning=FAST)
    try:
        ids = audit_ids(_read_to_eof(source))
        assert Counter(ids) == Counter(archive.ids())
        last: dict[str, int] = {}
        for i in ids:
            _, stream, ts = archive.where[i]
            assert ts >= last.get(stream, 0), (i, stream)
            last[stream] = ts
        metrics = source.metrics()
        assert metrics["archive_objects_bad"] == 2  # the cut gzip and the foreign object, each logged
        assert metrics["duplicates_suppressed"] == 3 * 40  # the repeated delivery, once per hour
        assert metrics["malformed"] == 2  # the line that is not JSON, the line without a timestamp
        assert metrics["archive_objects"] == 5 + 1 + 3  # export objects, authenticator's, Firehose's
        assert metrics["api_calls_s3"] >= 1 + 4 + 1 + 3 + 2
    finally:
        source.close()


def test_a_window_and_one_layout_at_a_time(moto: MotoServer, archive: Archive) -> None:
    for prefix, window in (
        ("exports/", (BASE + 1_000, BASE + 12_000)),
        ("firehose/", (BASE + 52_000, BASE + 60_000)),
    ):
        query = f"?from={iso(window[0])}&to={iso(window[1])}"
        source = open_archive(f"{BUCKET}/{prefix}{query}", parse_config(_config(moto)), tuning=FAST)
        try:
            got = audit_ids(_read_to_eof(source))
        finally:
            source.close()
        expected = archive.ids(prefix, window)
        assert expected and Counter(got) == Counter(expected), prefix


def test_downloads_cut_by_the_network_are_read_again_from_where_they_stopped(moto: MotoServer) -> None:
    moto.reset()
    s3 = create_bucket(moto.url, "cut-archive")
    for part in range(3):
        events = [(n, BASE + n) for n in range(part * 3000, (part + 1) * 3000)]
        s3.put_object(
            Bucket="cut-archive", Key=f"x/t/{A}/00000{part}.gz", Body=export_object(events, pad=300)
        )
    port = int(moto.url.rsplit(":", 1)[1])
    with CutProxy(port, cut_after=12_000, cuts=4) as proxy:
        config = parse_config(_config(moto, s3_endpoint_url=proxy.url))
        source = open_archive("cut-archive/x/", config, tuning=FAST)
        try:
            ids = audit_ids(_read_to_eof(source))
            metrics = source.metrics()
        finally:
            source.close()
    assert proxy.cut >= 2  # (a cut in a listing is retried the same way)
    assert Counter(ids) == Counter(f"a-{n}" for n in range(9000))  # nothing lost, nothing twice
    assert metrics["archive_objects_bad"] == 0 and metrics["retries"] >= 2


@pytest.fixture
def s3_host(host: Host) -> Host:
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    return Host(host.binary, host.library, env=env)


def _ids(result: HostResult) -> list[str]:
    return [e["values"][0][0] for e in result.events]


def test_host_kill_9_inside_an_object_resumes_there_and_ends_by_itself(
    s3_host: Host, moto: MotoServer, archive: Archive, tmp_path: Path
) -> None:
    requests = tmp_path / "requests.txt"
    requests.write_text("ka.auditid\nka.cluster.name\n")
    config = _config(moto, checkpoint_file=str(tmp_path / "archive.ckpt"))
    args = ["--config", config, "--open", f"s3://{BUCKET}", "--requests", str(requests)]
    first = s3_host.run("run", *args, "--kill-after", "410")  # inside the third export object
    assert first.returncode == -9
    second = s3_host.run("run", *args, "--max-seconds", "120", check=True)
    assert second.summary["rc"] == EOF_RC, second.summary
    seen = Counter(_ids(first) + _ids(second))
    assert set(seen) == archive.ids()
    repeated = {i for i, n in seen.items() if n > 1}
    assert len(repeated) <= 128 and repeated <= set(_ids(first))
    assert len(_ids(second)) <= len(archive.ids()) - 410 + 128  # resumed inside the object, not before it
    clusters = {e["values"][0][0]: e["values"][1] for e in first.events + second.events}
    assert all(clusters[i] == [archive.where[i][0]] for i in clusters)  # from the path, from logGroup


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("s3://no-such-bucket/x", "S3 bucket no-such-bucket not found"),
        (f"s3://{BUCKET}/typo/", f"no object under s3://{BUCKET}/typo/"),
        ("s3://Bad_Bucket/x", "is not an S3 bucket name"),
        (f"s3://{BUCKET}/?from=soon", "from='soon' is not a time"),
    ],
)
def test_misconfigured_archive_fails_open_with_the_fix(
    s3_host: Host, moto: MotoServer, archive: Archive, params: str, message: str
) -> None:
    line = s3_host.run("open", "--config", _config(moto), "--open", params).lines[0]
    assert line["rc"] == 1 and message in line["error"], line
