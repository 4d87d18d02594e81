"""Start lease_replica processes and read back what each held when."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.support.moto_server import dummy_environ

ROOT = Path(__file__).resolve().parents[2]


class Replica:
    def __init__(
        self,
        out: Path,
        url: str,
        table: str,
        name: str,
        lease_s: float,
        units: list[str],
        save_every: float = 0.0,
    ) -> None:
        self.name = name
        self.out = out
        env = dummy_environ()
        env["PYTHONPATH"] = str(ROOT)
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.lease_replica",
                    f"--save-every={save_every}",
                    url,
                    table,
                    name,
                    str(lease_s),
                    *units,
                ],
                stdout=f,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )

    def lines(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.out.read_bytes().split(b"\n")[:-1]:
            if line.endswith(b"}"):  # the last line of a killed process may be torn
                rows.append(orjson.loads(line))
        return rows

    def held(self) -> list[str]:
        states = [r["held"] for r in self.lines() if "held" in r]
        return states[-1] if states else []

    def first_holding(self, unit: str, after: float = 0.0) -> float | None:
        """Wall-clock time this replica first reported `unit` deliverable at or after `after`."""
        return next((r["t"] for r in self.lines() if r["t"] >= after and unit in r.get("held", [])), None)

    def calls(self) -> list[tuple[float, int]]:
        return [(r["t"], r["calls"]) for r in self.lines() if "calls" in r]

    def saved(self, unit: str) -> list[int]:
        """The checkpoint numbers whose save returned, in order."""
        return [r["n"] for r in self.lines() if r.get("saved") == unit]

    def acquired(self, unit: str) -> list[Any]:
        """The checkpoint states found in the lease each time this replica took `unit`."""
        return [r["state"] for r in self.lines() if r.get("acquired") == unit]

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
