"""Builds the C test host (and the sanitizer build of shim + host) with CMake and runs it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _cached(build_dir: Path, key: str) -> str | None:
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        name, _, value = line.partition("=")
        if name.split(":")[0] == key:
            return value
    return None


def _run_cmake(args: list[str], what: str) -> None:
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if proc.returncode != 0:
        failed = f"building the C test host: cmake {what} failed ({proc.returncode})"
        raise RuntimeError(f"{failed}:\n{proc.stdout}")


def cmake_build(build_dir: Path, *options: str, target: str | None = None) -> None:
    """Configure and build into `build_dir`, safe to call from several processes at once.

    Two processes configuring one build tree corrupt it (one reads a half-written CMakeCache or Makefile:
    "Configuring incomplete", then "No rule to make target" or a link of a half-compiled object), so the
    whole configure + build holds an exclusive lock beside the tree. A tree configured for another checkout
    or another Python is removed first: its cache would point cmake at the wrong sources or libpython.
    CMake trees hold absolute paths, so building elsewhere and renaming into place is not an option."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake is required to build the test host (apt-get install cmake)")
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        home = _cached(build_dir, "CMAKE_HOME_DIRECTORY")
        python = _cached(build_dir, "Python_EXECUTABLE")
        if (home is not None and Path(home) != ROOT) or (python is not None and python != sys.executable):
            shutil.rmtree(build_dir)
        configure = [cmake, "-S", str(ROOT), "-B", str(build_dir), "-DK8SAUDIT_BUILD_TEST_HOST=ON"]
        configure += [f"-DPython_EXECUTABLE={sys.executable}", "-Wno-dev", *options]
        _run_cmake(configure, "configure")
        targets = ("--target", target) if target else ()
        _run_cmake([cmake, "--build", str(build_dir), "-j2", *targets], "build")


def build_host() -> Path:
    """plughost built against nothing but libc/libdl (it never links Python)."""
    build_dir = ROOT / "build" / "test-host"
    cmake_build(build_dir, target="plughost")
    return build_dir / "plughost"


def build_sanitized() -> tuple[Path, Path]:
    """(plughost, libk8saudit-eks-py.so) both built with ASan + UBSan."""
    build_dir = ROOT / "build" / "test-asan"
    cmake_build(build_dir, "-DK8SAUDIT_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=Debug")
    return build_dir / "plughost", build_dir / "libk8saudit-eks-py.so"


@dataclass
class HostResult:
    returncode: int
    lines: list[dict[str, Any]]
    stderr: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "values" in line]


@dataclass
class Host:
    """Runs `plughost LIBRARY COMMAND ...` and parses its JSON lines."""

    binary: Path
    library: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, command: str, *args: str, timeout: float = 300, check: bool = False) -> HostResult:
        env = {**os.environ, **self.env}
        proc = subprocess.run(
            [str(self.binary), str(self.library), command, *args],
            capture_output=True,
            timeout=timeout,
            env=env,
        )
        # Values are the plugin's bytes; invalid UTF-8 must survive the JSON round trip.
        out = proc.stdout.decode("utf-8", "surrogateescape")
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        result = HostResult(proc.returncode, lines, proc.stderr.decode("utf-8", "replace"))
        for line in lines:
            if "summary" in line:
                result.summary = line["summary"]
        if check and proc.returncode != 0:
            raise AssertionError(
                f"plughost {command} failed ({proc.returncode}):\n{result.stderr}\n{out[-2000:]}"
            )
        return result

    def run_killed_when_idle(self, *args: str, expect: set[str], tries: int = 5) -> list[HostResult]:
        """`run ARGS`, killed (-9) on its first wait for events, Falco's steady state; restarted until the
        first fields of the events delivered (event ids) cover `expect`. A wait is no proof that all was
        read (a loaded machine can time out between two fetches), so a run killed early is followed by
        another, as a restarted Falco would be: one more crash while waiting, which must repeat nothing."""
        runs: list[HostResult] = []
        seen: set[str] = set()
        for _ in range(tries):
            run = self.run("run", *args, "--kill-when-idle-after", "1")
            assert run.returncode == -9, f"{run.returncode}: {run.stderr[-2000:]}"
            runs.append(run)
            seen |= {e["values"][0][0] for e in run.events}
            if expect <= seen:
                return runs
        raise AssertionError(f"{len(expect - seen)} events never came in {tries} restarts")
