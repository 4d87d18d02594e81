"""The documented way to install without an index works: build a wheel from the checkout with
`pip wheel --no-deps`, install it into a fresh virtual environment, and use the commands from there
(library-path, fields, and tail through the wheel's own .so).

To stay off the network the wheel is built without build isolation (scikit-build-core comes with the
test extra) and installed with --no-index; the fresh environment finds the dependencies (boto3, orjson,
cffi) through a .pth file naming this environment's site-packages."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False, **kwargs
    )  # type: ignore[call-overload]


def test_docs_name_the_wheel_commands() -> None:
    text = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    assert "pip wheel --no-deps -w dist ." in text
    assert "pip install dist/k8saudit_eks_py-*.whl" in text
    assert "pip install '.[demo]'" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install k8saudit-eks-py" not in readme + text  # not on an index


def test_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ROOT)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("k8saudit_eks_py-*.whl")

    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    installed = _run(venv / "bin" / "pip", "install", "--no-deps", "--no-index", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = Path(
        _run(venv / "bin" / "python", "-c", "import site; print(site.getsitepackages()[0])").stdout.strip()
    )
    (site / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    path = _run(venv / "bin" / "k8saudit-eks-py", "library-path", env=env)
    assert path.returncode == 0, path.stderr
    library = Path(path.stdout.strip())
    assert library.is_file() and library.is_relative_to(venv.resolve())

    fields = _run(venv / "bin" / "k8saudit-eks-py", "fields", "--json", env=env)
    assert fields.returncode == 0, fields.stderr
    assert len(orjson.loads(fields.stdout)) == 100

    replay = tmp_path / "audit.jsonl"
    replay.write_bytes(
        b'{"kind":"Event","auditID":"a1","verb":"get","user":{"username":"ann"},'
        b'"stageTimestamp":"2026-01-02T03:04:05.000000Z"}\n'
    )
    tail = _run(
        venv / "bin" / "k8saudit-eks-py", "tail", f"file://{replay}", "-o", "%ka.user.name %ka.verb", env=env
    )
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout == "ann get\n"
