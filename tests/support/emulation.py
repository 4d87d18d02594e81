"""arm64 programs on this x86_64 machine: qemu user-mode emulation, chrooted into the cached arm64 root.

binfmt_misc is not mounted here, so the kernel cannot start an arm64 ELF by itself. The emulator
(qemu-aarch64-static, a static x86_64 program) is staged into the root next to the program and started
chrooted: every path the program opens (its loader, libc, the plugin's runtime) then resolves inside the
root, never in this machine's own /usr, exactly as on an arm64 host. The chroot shares the network
namespace, so a moto server on 127.0.0.1 is reachable.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from k8saudit_eks_py.packaging import cross, debian

QEMU = "qemu-aarch64-static"
ARCH = "arm64"  # Debian's name
MACHINE = "aarch64"  # uname -m


def qemu_binary() -> Path:
    found = shutil.which(QEMU)
    if found is None:
        raise RuntimeError(f"{QEMU} is not installed: apt-get install qemu-user-static (tests/setup-system)")
    return Path(found)


def build_host(build: Path) -> Path:
    """tests/host/plughost cross-built for arm64 (the shim is built alongside; the test host links no
    Python). Uses the cached arm64 packages only: run tests/setup-system first."""
    sysroot = debian.unpack(debian.fetch(ARCH, offline=True), build / "sysroot", cross.triplet(MACHINE))
    cross.cmake_build(build / "cmake", MACHINE, sysroot, "-DK8SAUDIT_BUILD_TEST_HOST=ON")
    return build / "cmake" / "plughost"


def stage_emulator(stage: Path) -> str:
    """Copy the emulator into a directory that rootfs.staged will copy into the root; its name there."""
    shutil.copy2(qemu_binary(), stage / QEMU)
    return QEMU


def run(
    root: Path,
    inside: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the arm64 program argv[0] (a path inside root) emulated, chrooted into root, with a clean
    environment (only `env` and a PATH). `inside` is where rootfs.staged put the stage holding the
    emulator."""
    variables = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **(env or {})}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    # env runs here (the root's /usr/bin/env is an arm64 program): the emulator inherits exactly these
    # variables and hands them to the program.
    command = ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), chroot, str(root)]
    return subprocess.run(
        [*command, f"{inside}/{QEMU}", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
