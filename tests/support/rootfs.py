"""A minimal Debian root filesystem without Python (debootstrap --variant=minbase), cached between runs.

Building needs root, debootstrap and a Debian mirror; it happens once, when the cache is missing:
    python tests/support/rootfs.py          # what .ci/run can call to pre-build it
    python tests/support/rootfs.py arm64    # the arm64 root the emulated artifact test runs in
The cache lives in $K8SAUDIT_EKS_PY_ROOTFS_CACHE, else ~/.cache/k8saudit-eks-py/rootfs.

A root of another architecture is only unpacked (`debootstrap --foreign`): its second stage would run
its own maintainer scripts, which needs binfmt_misc. Unpacked is enough for a program: libc, the loader
and libgcc_s are in place; nothing of Python is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "K8SAUDIT_EKS_PY_ROOTFS_CACHE"
MIRROR_ENV = "K8SAUDIT_EKS_PY_DEBIAN_MIRROR"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "k8saudit-eks-py" / "rootfs"


def _arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def ensure_rootfs(suite: str = SUITE, arch: str | None = None) -> Path:
    """Path of the cached minbase root filesystem, built first if missing (an interrupted build is redone).

    `arch` is a Debian architecture (default: this machine's); a foreign one is unpacked, not configured.
    """
    native = _arch()
    arch = arch or native
    root = cache_dir() / f"{suite}-minbase-{arch}"
    if root.is_dir():
        return root
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: apt-get install debootstrap")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    foreign = ["--foreign", f"--arch={arch}"] if arch != native else []
    subprocess.run(["debootstrap", "--variant=minbase", *foreign, suite, str(partial), mirror], check=True)
    if foreign:
        # The .debs kept for the second stage (which never runs here): ~100 MB of nothing.
        for deb in (partial / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
    partial.rename(root)
    return root


def cached_rootfs(arch: str, suite: str = SUITE) -> Path:
    """The cached root of `arch`, never built here: tests must not download (tests/setup-system builds it)."""
    root = cache_dir() / f"{suite}-minbase-{arch}"
    if not root.is_dir():
        raise RuntimeError(f"the {arch} Debian test root {root} is missing: run tests/setup-system")
    return root


def run(
    root: Path, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run argv chrooted into root with a clean environment (only `env` and a PATH)."""
    variables = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **(env or {})}
    command = ["chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def staged(root: Path, source: Path) -> Iterator[tuple[Path, str]]:
    """Copy the directory `source` into root (under /run); yield (host path, path inside the chroot).

    The copy is removed afterwards, so the cached root filesystem stays as debootstrap left it.
    """
    inside = f"/run/k8saudit-eks-py-{uuid.uuid4().hex[:12]}"
    host = root / inside.lstrip("/")
    shutil.copytree(source, host, symlinks=True)
    try:
        yield host, inside
    finally:
        shutil.rmtree(host, ignore_errors=True)


if __name__ == "__main__":
    import sys

    print(ensure_rootfs(arch=sys.argv[1] if len(sys.argv) > 1 else None))
