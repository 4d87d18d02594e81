"""Poll mode when CloudWatch makes a stream's older events searchable after newer ones: the fault proxy keeps
each PutLogEvents batch out of FilterLogEvents answers for a seeded delay (most within 0-2 s, a tail of
5-15 s), with batches of one millisecond ingested apart, a stream that goes quiet and resumes, a new stream
(rotation) and three API-server streams at once. Every event visible within `lookback` of its timestamp is
delivered exactly once, by one source and across a restart from its checkpoint; the disorder is counted."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from k8saudit_eks_py.checkpoint_store import clear_memory
from k8saudit_eks_py.sources.cloudwatch import open_cloudwatch
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.moto_server import (
    FAST,
    MotoServer,
    assert_exactly,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    logs_client,
    make_config,
    now_ms,
    read_until,
)

STREAMS = [f"kube-apiserver-audit-{n:04d}" for n in range(3)]
ROTATED = "kube-apiserver-audit-0003"  # an API server replaced mid-run: a new stream
LOOKBACK = 20
# lookback and polling as configured (the derived re-read window, settle time and sweep), test backoffs
TUNING = dataclasses.replace(FAST, reads=None, list_every_s=2.0)
# The trailing sweep re-reads a timestamp lookback + its 10 s step + a 5 s margin later.
SWEPT_AFTER_S = LOOKBACK + 10 + 5 + 5


def disorder(seed: int) -> Faults:
    return Faults(hold_s=2.0, hold_tail_share=0.05, hold_tail_s=(5.0, 15.0), seed=seed)


class Writer(threading.Thread):
    """`rate` events/s in batches of a tenth of it, round-robin over the streams, for `seconds`. Every
    fifth batch of a stream repeats the millisecond of its previous one (same timestamp, later
    ingestionTime); stream 2 is quiet from 5 s to 10 s; from 7 s on stream 0's API server is replaced
    by ROTATED."""

    def __init__(self, client: object, group: str, rate: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.client, self.group, self.rate, self.seconds = client, group, rate, seconds
        self.ids: set[str] = set()
        self.halt = threading.Event()
        self._n = 0
        self._last: dict[str, int] = {}
        self._batches: dict[str, int] = {}

    def run(self) -> None:
        began = time.monotonic()
        turn = 0
        while not self.halt.is_set() and (elapsed := time.monotonic() - began) < self.seconds:
            streams = [ROTATED if s == STREAMS[0] and elapsed >= 7 else s for s in STREAMS]
            if 5 <= elapsed < 10:
                streams.remove(STREAMS[2])
            stream = streams[turn % len(streams)]
            turn += 1
            self._put(stream, max(1, self.rate // 10))
            self.halt.wait(0.1)

    def _put(self, stream: str, count: int) -> None:
        batch = self._batches[stream] = self._batches.get(stream, 0) + 1
        ts = now_ms()
        if batch % 5 == 0 and stream in self._last:
            ts = self._last[stream]  # the same millisecond as the stream's previous batch, ingested later
        ts = max(ts, self._last.get(stream, 0))
        events = []
        for _ in range(count):
            events.append({"timestamp": ts, "message": audit_event(self._n, ts)})
            self.ids.add(f"a-{self._n}")
            self._n += 1
        self.client.put_log_events(logGroupName=self.group, logStreamName=stream, logEvents=events)  # type: ignore[attr-defined]
        self._last[stream] = ts


def _setup(moto: MotoServer, name: str) -> tuple[object, str]:
    client = logs_client(moto.url)
    group = f"/aws/eks/{name}/cluster"
    create_group(client, group, [*STREAMS, ROTATED])
    return client, group


def test_events_made_visible_out_of_order_are_each_delivered_once(moto: MotoServer) -> None:
    client, group = _setup(moto, "disorder-one")
    with FaultProxy(moto.url, disorder(seed=3)) as proxy:
        config = make_config(proxy.url, lookback=LOOKBACK, polling_interval=1, shift=5)
        source = open_cloudwatch("disorder-one", config, tuning=TUNING)
        writer = Writer(client, group, rate=40, seconds=15)
        try:
            writer.start()
            writer.join()
            got = read_until(source, len(writer.ids), 15 + SWEPT_AFTER_S + 20, settle=2.0)
            metrics = source.metrics()
        finally:
            writer.halt.set()
            source.close()
    assert proxy.stats.held > 0  # the proxy did hide events from answers
    assert_exactly(audit_ids(got), writer.ids)
    assert metrics["events_found_behind"] > 0, metrics
    assert metrics["disorder_max_seconds"] >= 4, metrics  # the 5-15 s tail, found by the sweep
    assert metrics["events_too_late"] == 0, metrics


def test_a_restart_under_disorder_neither_loses_nor_repeats(moto: MotoServer, tmp_path: Path) -> None:
    client, group = _setup(moto, "disorder-restart")
    checkpoint = tmp_path / "positions.json"
    with FaultProxy(moto.url, disorder(seed=11)) as proxy:
        config = make_config(
            proxy.url, lookback=LOOKBACK, polling_interval=1, shift=5, checkpoint_file=str(checkpoint)
        )
        writer = Writer(client, group, rate=40, seconds=16)
        source = open_cloudwatch("disorder-restart", config, tuning=TUNING)
        try:
            writer.start()
            got = read_until(source, 10**9, 8)  # a restart in the middle of the writing
        finally:
            source.close()  # the last checkpoint: positions, sketches of what was delivered, what waited
        clear_memory()  # from the checkpoint file, as a new Falco process
        source = open_cloudwatch("disorder-restart", config, tuning=TUNING)
        try:
            writer.join()
            got += read_until(source, len(writer.ids) - len(got), 16 + SWEPT_AFTER_S + 20, settle=2.0)
            metrics = source.metrics()
        finally:
            writer.halt.set()
            source.close()
    assert_exactly(audit_ids(got), writer.ids)
    assert metrics["events_redelivered_unsure"] == 0, metrics
