"""The same audit events read live (poll mode), as a time range, from a CloudWatch export and from a
Firehose archive give Falco the same events: the same time and the same values of every field the stock
rules use, ka.cluster.name included (from the log group, the export's path, the records' logGroup)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import orjson

from tests.support.archive import create_bucket, firehose_object, iso_ms
from tests.support.host import Host, HostResult
from tests.support.kinesis import event_id
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

STREAM = "kube-apiserver-audit-" + "5e" * 16
GROUP = "/aws/eks/parity/cluster"
BUCKET = "parity-archive"
EOF_RC = 2


def _values(result: HostResult) -> dict[str, tuple[int, list[Any]]]:
    """auditID → (Falco event time, values of every request)."""
    return {e["values"][0][0]: (e["ts"], e["values"]) for e in result.events}


def test_range_export_and_firehose_give_the_live_fields(
    host: Host, moto: MotoServer, reference_dir: Path, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    # the reference events (they name their cluster in an annotation) and events that do not (the
    # cluster then comes from where they were read)
    lines = (reference_dir / "audit-events-dev.jsonl").read_text().splitlines()
    lines += [audit_event(n, now - 30_000 + n) for n in range(100)]
    events = [(now - 90_000 + i * 10, line) for i, line in enumerate(lines)]
    logs = logs_client(moto.url)
    create_group(logs, GROUP, [STREAM])
    put_events(logs, GROUP, STREAM, events)

    s3 = create_bucket(moto.url, BUCKET)
    export = "".join(f"{iso_ms(ts)} {line}\n" for ts, line in events).encode()
    s3.put_object(
        Bucket=BUCKET, Key=f"exports/aws/eks/parity/cluster/t1/{STREAM}/000000.gz", Body=gzip.compress(export)
    )
    docs = [
        orjson.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "owner": "123456789012",
                "logGroup": GROUP,
                "logStream": STREAM,
                "subscriptionFilters": ["archive"],
                "logEvents": [
                    {"id": event_id(first + k), "timestamp": ts, "message": line}
                    for k, (ts, line) in enumerate(events[first : first + 40])
                ],
            }
        )
        for first in range(0, len(events), 40)
    ]
    s3.put_object(Bucket=BUCKET, Key="firehose/2026/12/07/11/delivery-1.gz", Body=firehose_object(docs))

    stock = (reference_dir / "stock-rules-fields.txt").read_text().split()
    requests = tmp_path / "requests.txt"
    requests.write_text("\n".join(["ka.auditid", *stock, "ka.cluster.name"]) + "\n")
    env = {k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}
    aws_host = Host(host.binary, host.library, env=env)
    config = orjson.dumps(
        {"endpoint_url": moto.url, "s3_endpoint_url": moto.url, "region": "us-east-1", "shift": 600}
    ).decode()

    def run(params: str, *extra: str) -> HostResult:
        args = ("--config", config, "--open", params, "--requests", str(requests))
        return aws_host.run("run", *args, "--max-seconds", "120", *extra, check=True)

    live = run("parity", "--max-events", str(len(lines)))
    window = run(f"parity?from={iso_ms(now - 120_000)}&to={iso_ms(now)}")
    exported = run(f"s3://{BUCKET}/exports/")
    firehose = run(f"s3://{BUCKET}/firehose/")

    expected = _values(live)
    assert len(expected) == len(lines) == live.summary["events"]
    assert {str(v[-1]) for _, v in expected.values()} == {"['dev']", "['prod-eu']", "['parity']"}
    assert all(expected[f"a-{n}"][1][-1] == ["parity"] for n in range(100))  # ka.cluster.name
    for name, result in (("range", window), ("export", exported), ("firehose", firehose)):
        assert result.summary["rc"] == EOF_RC, (name, result.summary)
        got = _values(result)
        assert result.summary["events"] == len(lines), name
        different = [i for i in expected if got.get(i) != expected[i]]
        assert not different, (
            name,
            different[:3],
            [got.get(i) for i in different[:1]],
            expected[different[0]],
        )
