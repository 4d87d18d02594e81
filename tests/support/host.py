"""Builds the C test host (and the sanitizer build of shim + host) with CMake and runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _cmake_build(build_dir: Path, *options: str) -> None:
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake is required to build the test host (apt-get install cmake)")
    subprocess.run(
        [
            cmake,
            "-S",
            str(ROOT),
            "-B",
            str(build_dir),
            "-DK8SAUDIT_BUILD_TEST_HOST=ON",
            f"-DPython_EXECUTABLE={sys.executable}",
            "-Wno-dev",
            *options,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run([cmake, "--build", str(build_dir), "-j2"], check=True, capture_output=True)


def build_host() -> Path:
    """plughost built against nothing but libc/libdl (it never links Python)."""
    build_dir = ROOT / "build" / "test-host"
    _cmake_build(build_dir)
    return build_dir / "plughost"


def build_sanitized() -> tuple[Path, Path]:
    """(plughost, libk8saudit-eks-py.so) both built with ASan + UBSan."""
    build_dir = ROOT / "build" / "test-asan"
    _cmake_build(build_dir, "-DK8SAUDIT_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=Debug")
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
