"""The house style is enforced, not hoped for: ruff lint and format, and mypy on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["k8saudit_eks_py", "tests", "benchmarks"]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_ruff_lint_is_clean() -> None:
    result = _ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_clean() -> None:
    result = _ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_type_checks_the_package() -> None:
    result = subprocess.run(
        # Incremental, with its cache in the build folder: a re-run checks only what changed (mypy
        # invalidates a module's cache entry when it or anything it depends on changes).
        [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
