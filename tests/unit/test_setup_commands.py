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


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _fake_system(
    tmp_path: Path, present: list[str], foreign: str = "", cross: dict[str, str] | None = None
) -> tuple[dict[str, str], Path]:
    """A PATH with only `present` tools (real ones), plus fakes that log their calls to one file: sudo,
    apt-get, an amd64 dpkg knowing the `foreign` architectures, the venv's python, and `cross` scripts
    (name → body) standing for the cross compiler and the emulator."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ["bash", "dirname", "id", "sed", "cut", "env", "grep", *present]:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    log = tmp_path / "apt.log"
    _script(bin_dir / "apt-get", f'echo "$@" >> {log}')
    _script(bin_dir / "sudo", 'exec "$@"')
    _script(
        bin_dir / "dpkg",
        f'case "$1" in --print-architecture) echo amd64 ;;'
        f' --print-foreign-architectures) printf "{foreign}" ;; *) echo "dpkg $@" >> {log} ;; esac',
    )
    for name, body in (cross or {}).items():
        _script(bin_dir / name, body)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _script(venv / "bin" / "python", f'echo "python $@" >> {log}')
    cache = tmp_path / "rootfs"
    for arch in ("amd64", "arm64"):
        (cache / f"bookworm-minbase-{arch}").mkdir(parents=True)  # the test roots are built
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "PYTHON": sys.executable, "VENV": str(venv)}
    env["K8SAUDIT_EKS_PY_ROOTFS_CACHE"] = str(cache)
    return env, log


# A complete cross toolchain and emulator, as far as tests/setup-system looks.
CROSS = {
    "aarch64-linux-gnu-gcc": "echo /usr/aarch64-linux-gnu/lib/Scrt1.o",
    "qemu-aarch64-static": "exit 0",
}
DOWNLOAD = "python -m k8saudit_eks_py package --platform linux/arm64 --download-only"


def test_setup_installs_only_the_missing_packages(tmp_path: Path) -> None:
    env, log = _fake_system(tmp_path, present=["cc", "make", "patchelf"])
    subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, check=True)
    calls = log.read_text().splitlines()
    assert calls[0] == "dpkg --add-architecture arm64"
    assert calls[1] == "update -qq"
    assert calls[2].split()[-6:] == [
        "cmake",
        "debootstrap",
        "docker-registry",
        "gcc-aarch64-linux-gnu",
        "libc6-dev-arm64-cross",
        "qemu-user-static",
    ]
    assert "patchelf" not in calls[2] and "build-essential" not in calls[2]
    assert calls[3:] == [DOWNLOAD]

    log.unlink()
    env, log = _fake_system(tmp_path / "build", present=["cc", "make"])
    subprocess.run([str(SETUP), "--build"], env=env, capture_output=True, text=True, check=True)
    calls = log.read_text().splitlines()
    assert calls[1].split()[-1] == "cmake" and len(calls) == 2  # neither the suite's tools nor arm64


def test_setup_installs_the_cross_c_library_the_compiler_lacks(tmp_path: Path) -> None:
    # gcc answers the bare name when it has no such start file: libc6-dev-arm64-cross is missing.
    lacking = {**CROSS, "aarch64-linux-gnu-gcc": 'echo "${1#-print-file-name=}"'}
    present = ["cc", "make", "cmake", "patchelf", "debootstrap"]
    env, log = _fake_system(tmp_path, present=present, foreign="arm64\\n", cross=lacking)
    _script(Path(env["PATH"]) / "docker-registry", "")
    subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, check=True)
    calls = log.read_text().splitlines()
    assert calls[0] == "update -qq"  # the architecture is known already: no dpkg --add-architecture
    assert calls[1].split()[-2:] == ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"]
    assert calls[2:] == [DOWNLOAD]


def test_setup_does_nothing_when_everything_is_there(tmp_path: Path) -> None:
    present = ["cc", "make", "cmake", "patchelf", "debootstrap"]
    env, log = _fake_system(tmp_path, present=present, foreign="i386\\narm64\\n", cross=CROSS)
    _script(Path(env["PATH"]) / "docker-registry", "")
    result = subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, check=True)
    # Only the cache check of the arm64 packages and wheels (a no-op when they are cached).
    assert log.read_text().splitlines() == [DOWNLOAD] and result.stderr == ""
