"""The C test host builds on a fresh tree even when several processes build it at once, and again after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.host import ROOT, cmake_build

BUILD = "import sys; from pathlib import Path; from tests.support.host import cmake_build; "
BUILD += "cmake_build(Path(sys.argv[1]), target='plughost')"


def test_parallel_builds_into_a_fresh_tree_both_succeed(tmp_path: Path) -> None:
    build_dir = tmp_path / "build" / "host"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(build_dir)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    cmake_build(build_dir, target="plughost")  # a repeated build of a finished tree
    usage = subprocess.run([str(build_dir / "plughost")], capture_output=True, text=True, timeout=30)
    assert "usage" in (usage.stdout + usage.stderr).lower()


def test_a_tree_configured_elsewhere_is_rebuilt(tmp_path: Path) -> None:
    build_dir = tmp_path / "host"
    build_dir.mkdir()
    (build_dir / "CMakeCache.txt").write_text("CMAKE_HOME_DIRECTORY:INTERNAL=/somewhere/else\n")
    cmake_build(build_dir, target="plughost")
    assert (build_dir / "plughost").exists()


def test_a_failing_build_shows_what_cmake_said(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)cmake configure failed.*/nonexistent/cc"):
        cmake_build(tmp_path / "host", "-DCMAKE_C_COMPILER=/nonexistent/cc", target="plughost")
