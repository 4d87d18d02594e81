"""plugin_get_metrics through the real .so while next_batch runs on another thread (as Falco's
Prometheus /metrics threads do), on a replay file and on CloudWatch (moto)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from k8saudit_eks_py import metrics
from k8saudit_eks_py.host import EOF, Library, State
from tests.support.moto_server import (
    MotoServer,
    audit_event,
    create_group,
    dummy_environ,
    logs_client,
    put_events,
)

N_REPLAY = 20_000
N_CLOUDWATCH = 3_000
STREAM = "kube-apiserver-audit-" + "cd" * 16
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def library() -> Library:
    return Library()


class Poller:
    """Calls get_metrics in a tight loop from other threads and checks each answer."""

    def __init__(self, state: State, threads: int = 1) -> None:
        self.state = state
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.calls = 0
        self.max_events = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        last: dict[str, int | float] = {}
        try:
            while not self.stop.is_set():
                rows = self.state.metrics()
                assert [(n, k) for n, k, _ in rows] == list(metrics.METRICS)
                for name, kind, value in rows:
                    if kind == metrics.COUNTER:
                        assert isinstance(value, int) and value >= last.get(name, 0), (name, value, last)
                        last[name] = value
                    else:
                        assert isinstance(value, float) and value >= 0.0, (name, value)
                with self._lock:
                    self.calls += 1
                    self.max_events = max(self.max_events, int(last.get(metrics.EVENTS, 0)))
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Poller:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join()


def values(state: State) -> dict[str, int | float]:
    return {name: value for name, _, value in state.metrics()}


def test_metrics_during_replay(library: Library, tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    now = int(time.time() * 1000)
    lines = [audit_event(i, now + i).encode() for i in range(N_REPLAY)]
    lines.insert(100, b"this is not json")
    path.write_bytes(b"\n".join(lines) + b"\n")
    state = library.init("{}")
    try:
        instance = state.open(f"file://{path}")
        read = 0
        with Poller(state) as poller:
            while True:
                rc, batch = instance.next_batch()
                read += len(batch)
                if rc == EOF:
                    break
        assert poller.errors == []
        assert poller.calls > 10  # the pollers really ran alongside next_batch
        assert 0 < poller.max_events <= read == N_REPLAY
        final = values(state)
        assert final[metrics.EVENTS] == N_REPLAY
        assert final[metrics.BYTES] == sum(len(line) for line in lines) - len(b"this is not json")
        assert final[metrics.MALFORMED] == 1
        instance.close()
    finally:
        state.destroy()


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        logs = logs_client(server.url)
        create_group(logs, "/aws/eks/busy/cluster", [STREAM])
        now = int(time.time() * 1000) - 120_000
        put_events(
            logs,
            "/aws/eks/busy/cluster",
            STREAM,
            [(now + i, audit_event(i, now + i)) for i in range(N_CLOUDWATCH)],
        )
        yield server
    finally:
        server.stop()


def test_metrics_during_cloudwatch_reading(
    library: Library, cloudwatch: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in dummy_environ({}).items():
        monkeypatch.setenv(name, value)  # the plugin runs in this process and reads this environment
    config = {"endpoint_url": cloudwatch.url, "region": "us-east-1", "shift": 600, "polling_interval": 1}
    state = library.init(orjson.dumps(config).decode())
    try:
        instance = state.open("busy")
        read = 0
        deadline = time.monotonic() + 60
        with Poller(state) as poller:
            while read < N_CLOUDWATCH and time.monotonic() < deadline:
                _, batch = instance.next_batch()
                read += len(batch)
            during = values(state)
        assert poller.errors == []
        assert poller.calls > 10
        assert read == N_CLOUDWATCH
        assert during[metrics.EVENTS] == N_CLOUDWATCH
        assert during[metrics.API_CALLS] >= 1
        assert during[metrics.BYTES] > N_CLOUDWATCH * 400
        assert 0.0 <= during[metrics.LAG_SECONDS] < 600.0
        instance.close()
    finally:
        state.destroy()


def several_callers(path: str) -> None:
    """Body of the next test, run in a child process: a memory error there must fail one test, not
    crash the whole session."""
    state = Library().init("{}")
    try:
        instance = state.open(f"file://{path}")
        start = time.monotonic()
        with Poller(state, threads=4) as poller:
            while instance.next_batch()[0] != EOF:
                pass
            time.sleep(max(0.2, 2.0 - (time.monotonic() - start)))  # give the race room: 2 s of calls
        assert poller.errors == [], [repr(e)[:300] for e in poller.errors[:3]]
        assert poller.calls > 40, poller.calls
        instance.close()
    finally:
        state.destroy()
    print("ok", poller.calls)


def test_several_get_metrics_callers_at_once(tmp_path: Path) -> None:
    """Falco serves concurrent /metrics scrapes on several webserver threads and its stats writer calls
    get_metrics too: every caller must read a whole, valid array while events are being read."""
    path = tmp_path / "some.jsonl"
    now = int(time.time() * 1000)
    path.write_bytes(b"".join(audit_event(i, now + i).encode() + b"\n" for i in range(5000)))
    code = f"from tests.integration.test_metrics_concurrent import several_callers as f; f({str(path)!r})"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok ")


def test_counters_stay_monotonic_across_close_and_reopen(library: Library, tmp_path: Path) -> None:
    """Falco reopens the stream on hot reload: a counter must never go back (Prometheus sees a reset)."""
    path = tmp_path / "few.jsonl"
    now = int(time.time() * 1000)
    path.write_bytes(b"".join(audit_event(i, now + i).encode() + b"\n" for i in range(10)))
    state = library.init("{}")
    try:
        for round_ in (1, 2):
            instance = state.open(f"file://{path}")
            while instance.next_batch()[0] != EOF:
                pass
            instance.close()
            assert values(state)[metrics.EVENTS] == 10 * round_
            assert values(state)[metrics.QUEUE_DEPTH] == 0.0
    finally:
        state.destroy()
