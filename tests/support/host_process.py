"""A C test host running in the background (`plughost run --flush`), for several replicas at once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson

from tests.support.host import Host
from tests.support.moto_server import dummy_environ

__all__ = ["HostProcess"]


class HostProcess:
    """`plughost run --flush` in the background: its output file is what it processed, even after kill -9."""

    def __init__(
        self, host: Host, out: Path, config: dict[str, Any], open_params: str, requests: Path
    ) -> None:
        self.out = out
        env = {**os.environ, **{k: v for k, v in dummy_environ().items() if k.startswith("AWS_")}}
        with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    str(host.binary),
                    str(host.library),
                    "run",
                    "--config",
                    orjson.dumps(config).decode(),
                    "--open",
                    open_params,
                    "--requests",
                    str(requests),
                    "--flush",
                    "--max-seconds",
                    "120",
                ],
                stdout=stdout,
                stderr=stderr,
                env=env,
            )

    def lines(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.out.read_bytes().split(b"\n"):
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # empty, or torn by the kill
        return rows

    def ids(self) -> list[str]:
        return [row["values"][0][0] for row in self.lines() if "values" in row]

    def batches(self) -> list[tuple[float, list[str]]]:
        """(wall-clock time the batch was received, its ids) for each batch."""
        out: list[tuple[float, list[str]]] = []
        for row in self.lines():
            if "batch" in row:
                out.append((float(row["t"]), []))
            elif "values" in row and out:
                out[-1][1].append(row["values"][0][0])
        return out

    def last_batch(self) -> list[str]:
        """The ids of the last batch it received (the one in flight when it was killed)."""
        last: list[str] = []
        for row in self.lines():
            if "batch" in row:
                last = []
            elif "values" in row:
                last.append(row["values"][0][0])
        return last

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
