"""The README's set-up and test commands are what .ci/run runs, and tests/setup-system installs only what
is missing (checked with a PATH that lacks some tools and an apt-get that records its arguments)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "tests" / "setup-system"


def _sh_block_after(heading: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n## {heading}\n", 1)[1]
    block = re.search(r"```sh\n(.*?)\n```", section, re.S)
    assert block, heading
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, f"the README's {heading} command must be one line"
    return lines[0]


def _ci_commands() -> list[str]:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_setup_steps_in_order_then_the_test_command() -> None:
    setup = _sh_block_after("Set up and run (the demo needs no AWS account)").split(" && ")
    assert setup[0] == "tests/setup-system --build" and setup[-1] == ".venv/bin/k8saudit-eks-py demo"
    commands = _ci_commands()
    positions = [commands.index(step) for step in setup[:-1]]  # every step but the demo, verbatim
    assert positions == sorted(positions)
    assert commands[-1] == _sh_block_after("Tests") == "tests/setup-system && .venv/bin/python -m pytest"


def test_setup_script_is_executable_and_rejects_unknown_options() -> None:
    assert os.access(SETUP, os.X_OK)
    assert subprocess.run(["bash", "-n", str(SETUP)], check=False).returncode == 0
    help_text = subprocess.run([str(SETUP), "--help"], capture_output=True, text=True, check=True).stdout
    assert "--build" in help_text and "patchelf" in help_text
    bad = subprocess.run([str(SETUP), "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr


def _fake_system(tmp_path: Path, present: list[str]) -> tuple[dict[str, str], Path]:
    """A PATH with only `present` tools (real ones), plus sudo and apt-get fakes that log their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ["bash", "dirname", "id", "sed", "cut", "env", "dpkg", *present]:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for fake in ("apt-get", "sudo"):
        (bin_dir / fake).chmod(0o755)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True)
    cache = tmp_path / "rootfs"
    (cache / f"bookworm-minbase-{arch.stdout.strip()}").mkdir(parents=True)  # the test root is built
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "PYTHON": sys.executable}
    env["K8SAUDIT_EKS_PY_ROOTFS_CACHE"] = str(cache)
    return env, log


def test_setup_installs_only_the_missing_packages(tmp_path: Path) -> None:
    env, log = _fake_system(tmp_path, present=["cc", "make", "patchelf"])
    subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, check=True)
    calls = log.read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].split()[-3:] == ["cmake", "debootstrap", "docker-registry"]
    assert "patchelf" not in calls[1] and "build-essential" not in calls[1]

    log.unlink()
    env, log = _fake_system(tmp_path / "build", present=["cc", "make"])
    subprocess.run([str(SETUP), "--build"], env=env, capture_output=True, text=True, check=True)
    assert log.read_text().splitlines()[1].split()[-1] == "cmake"  # the suite's tools are not asked for


def test_setup_does_nothing_when_everything_is_there(tmp_path: Path) -> None:
    env, log = _fake_system(tmp_path, present=["cc", "make", "cmake", "patchelf", "debootstrap"])
    (Path(env["PATH"]) / "docker-registry").write_text("#!/bin/sh\n")
    (Path(env["PATH"]) / "docker-registry").chmod(0o755)
    result = subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, check=True)
    assert not log.exists() and result.stderr == ""
