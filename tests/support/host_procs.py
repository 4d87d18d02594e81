"""C host processes running in the background (Falco replicas), and steady audit traffic for them to read.

The one helper for a host that tests and benchmarks watch while it runs. Each host runs `plughost run
--stamp`: every event line carries the wall-clock time it was processed and is flushed at once, so a test can
watch the hosts while they run and kill one with SIGKILL, pause it with SIGSTOP, stop it cleanly with SIGTERM,
or (open params given as a file) make it reload them with SIGHUP. With `--flush` among the extra arguments
each batch is also preceded by a {"batch", "size", "t"} line (`batches()`, `last_batch()`)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.support.host import Host
from tests.support.leases import wait_for
from tests.support.moto_server import audit_event, create_group, dummy_environ, logs_client, put_events

STREAM = "kube-apiserver-audit-00112233445566778899aabbccddeeff"


class HostProc:
    def __init__(
        self,
        host: Host,
        out: Path,
        config: str | dict[str, Any],
        params: str | Path,
        requests: str | Path,
        *extra: str,
        stamp_stderr: bool = False,
    ) -> None:
        """`config`: the init config (JSON text or a dict). `params`: the open params, or a file holding them
        (read again on `reload()`). `stamp_stderr`: each stderr line is written to the .err file behind the
        wall-clock time it was read ("t<TAB>line")."""
        self.out = out
        if not isinstance(config, str):
            config = orjson.dumps(config).decode()
        opening = ("--open-file", str(params)) if isinstance(params, Path) else ("--open", params)
        env = {**os.environ, **{k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}, **host.env}
        self._stamper: threading.Thread | None = None
        with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    *(str(host.binary), str(host.library), "run", "--stamp"),
                    *("--config", config, *opening, "--requests", str(requests), *extra),
                ],
                stdout=stdout,
                stderr=subprocess.PIPE if stamp_stderr else stderr,
                env=env,
            )
        if stamp_stderr:
            self._stamper = threading.Thread(target=self._stamp, name="stderr", daemon=True)
            self._stamper.start()

    def _stamp(self) -> None:
        assert self.proc.stderr is not None
        with open(self.out.with_suffix(".err"), "ab") as err:
            for line in self.proc.stderr:
                err.write(f"{time.time():.6f}\t".encode() + line)
                err.flush()

    def stamped_stderr(self) -> list[tuple[float, str]]:
        """(when read, line) of each stderr line, with stamp_stderr (complete once the process ended)."""
        if self._stamper is not None and self.proc.poll() is not None:
            self._stamper.join(10)
        rows = []
        for line in self.stderr().splitlines():
            t, _, text = line.partition("\t")
            rows.append((float(t), text))
        return rows

    def lines(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.out.read_bytes().split(b"\n")[:-1]:
            if line.endswith(b"}"):  # the last line of a killed process may be torn
                rows.append(orjson.loads(line))
        return rows

    def events(self) -> list[dict[str, Any]]:
        """Event lines: values[0] = ka.auditid, values[1] = ka.cluster.name, t = when processed."""
        return [r for r in self.lines() if "values" in r]

    def ids(self) -> list[str]:
        return [e["values"][0][0] for e in self.events()]

    def clusters_since(self, t: float) -> set[str]:
        return {e["values"][1][0] for e in self.events() if e["t"] >= t}

    def batches(self) -> list[tuple[float, list[str]]]:
        """(wall-clock time the batch was received, its ids) for each batch (run with --flush)."""
        out: list[tuple[float, list[str]]] = []
        for row in self.lines():
            if "batch" in row:
                out.append((float(row["t"]), []))
            elif "values" in row and out:
                out[-1][1].append(row["values"][0][0])
        return out

    def last_batch(self) -> list[str]:
        """The ids of the last batch it received (the one in flight when it was killed; run with --flush)."""
        batches = self.batches()
        return batches[-1][1] if batches else []

    def summary(self) -> dict[str, Any]:
        return next((r["summary"] for r in self.lines() if "summary" in r), {})

    def stderr(self) -> str:
        return self.out.with_suffix(".err").read_text(errors="replace")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM: Falco's clean shutdown (the host closes the instance and exits 0)."""
        os.kill(self.proc.pid, signal.SIGTERM)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def reload(self) -> None:
        """SIGHUP: close and open again with the params file's current content."""
        os.kill(self.proc.pid, signal.SIGHUP)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Traffic:
    """Steady audit events into each cluster's log group: auditID a-<n> with n = 1,000,000 × index + k,
    `per_tick` events per cluster every `tick_s`, timestamped now. `expected()` is everything sent."""

    def __init__(self, url: str, clusters: list[str], per_tick: int = 5, tick_s: float = 0.25) -> None:
        self._client = logs_client(url)
        self.clusters = clusters
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.sent: dict[str, list[str]] = {c: [] for c in clusters}
        self._k = 0
        self._stop = threading.Event()
        for cluster in clusters:
            create_group(self._client, f"/aws/eks/{cluster}/cluster", [STREAM])
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._round(self.per_tick)

    def _round(self, per_cluster: int) -> set[str]:
        now = int(time.time() * 1000)
        ids: set[str] = set()
        for index, cluster in enumerate(self.clusters):
            ns = [1_000_000 * index + self._k + i for i in range(per_cluster)]
            put_events(
                self._client,
                f"/aws/eks/{cluster}/cluster",
                STREAM,
                [(now, audit_event(n, now)) for n in ns],
            )
            self.sent[cluster].extend(f"a-{n}" for n in ns)
            ids.update(f"a-{n}" for n in ns)
        self._k += per_cluster
        return ids

    def mark(self) -> set[str]:
        """After stop(): one more event into every cluster (counted as sent); their ids."""
        return self._round(1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def cluster_of(self) -> dict[str, str]:
        return {i: c for c, ids in self.sent.items() for i in ids}

    def expected(self) -> set[str]:
        return set(self.cluster_of())


def delivered(hosts: list[HostProc]) -> Counter[str]:
    return Counter(i for h in hosts for i in h.ids())


def wait_past_marks(mark: Callable[[], set[str]], delivered: Callable[[], set[str]], timeout: float) -> bool:
    """What a test does, once everything sent came out, to give a repeat the chance to show before it
    stops the hosts: `mark()` puts one last event into every unit, then this waits until they came out;
    twice. A holder reads its unit in order, so a unit's mark comes out after anything it was going to read
    again; the second round makes every holder read once more after that (a poll re-reads the last half
    second: the first marks again, which must not come out twice). False: a mark did not come out."""
    deadline = time.monotonic() + timeout
    return all(wait_for(_covered(mark(), delivered), deadline - time.monotonic()) for _ in range(2))


def _covered(want: set[str], delivered: Callable[[], set[str]]) -> Callable[[], bool]:
    return lambda: want <= delivered()


def wait_until_delivered(hosts: list[HostProc], want: set[str], timeout: float) -> bool:
    return wait_for(lambda: want <= set(delivered(hosts)), timeout, step=0.2)
