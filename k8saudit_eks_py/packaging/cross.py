"""Cross-compile the shim (and, for the tests, the C host) for another architecture: Debian's cross gcc,
a CMake toolchain file, and the target's CPython headers and libpython from the unpacked Debian packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import k8saudit_eks_py
from k8saudit_eks_py.packaging.debian import PYTHON_VERSION, Sysroot
from k8saudit_eks_py.packaging.naming import SO_NAME

# `uname -m` → (GNU triplet, Debian architecture, the packages that provide the cross compiler).
TARGETS = {"aarch64": ("aarch64-linux-gnu", "arm64", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross")}
# The shim's last-resort Python home on the target (no runtime next to it, no venv): Debian's python3.
TARGET_PYTHON_HOME = "/usr"


class CrossError(RuntimeError):
    pass


def triplet(uname_machine: str) -> str:
    return TARGETS[uname_machine][0]


def debian_arch(uname_machine: str) -> str:
    return TARGETS[uname_machine][1]


def missing_tools(uname_machine: str) -> str | None:
    """One line saying what to install, or None when the cross toolchain is complete."""
    gnu, _, packages = TARGETS[uname_machine]
    compiler = f"{gnu}-gcc"
    if shutil.which(compiler) is None:
        return f"cross-building for {uname_machine} needs {compiler}: apt-get install {packages}"
    # Without the target's libc (libc6-dev-<arch>-cross) gcc finds no start files and cannot link.
    found = subprocess.run([compiler, "-print-file-name=Scrt1.o"], capture_output=True, text=True)
    if found.stdout.strip() == "Scrt1.o":
        return f"{compiler} has no {uname_machine} C library: apt-get install {packages}"
    if shutil.which("cmake") is None:
        return "building the shim needs cmake: apt-get install cmake"
    return None


def source_tree() -> Path:
    """The checkout holding CMakeLists.txt and shim/: the one this package was imported from, else cwd."""
    for candidate in (Path(k8saudit_eks_py.__file__).resolve().parent.parent, Path.cwd()):
        if (candidate / "CMakeLists.txt").is_file() and (candidate / "shim").is_dir():
            return candidate
    raise CrossError(
        "cross-building the shim needs the source checkout (CMakeLists.txt, shim/): run the command in it, "
        "or give --library with a shim already built for the target"
    )


def _toolchain(path: Path, uname_machine: str) -> Path:
    gnu = triplet(uname_machine)
    path.write_text(
        "set(CMAKE_SYSTEM_NAME Linux)\n"
        f"set(CMAKE_SYSTEM_PROCESSOR {uname_machine})\n"
        f"set(CMAKE_C_COMPILER {gnu}-gcc)\n"
        # Programs (python, the compiler) from the build machine; headers and libraries as given.
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n"
    )
    return path


def cmake_build(build: Path, uname_machine: str, sysroot: Sysroot, *options: str) -> Path:
    """Configure and build the project for the target in `build`; returns `build`."""
    problem = missing_tools(uname_machine)
    if problem:
        raise CrossError(problem)
    source = source_tree()
    build.mkdir(parents=True, exist_ok=True)
    version = "{}.{}".format(*PYTHON_VERSION)
    include = sysroot.root / "usr" / "include"
    libpython = sysroot.library_dirs[0] / f"libpython{version}.so.1.0"
    # Debian's pyconfig.h includes <TRIPLET/python3.X/pyconfig.h>: the multiarch include root comes last.
    # The prefix maps keep the checkout's and the build folder's paths out of the library.
    flags = f"-idirafter {include} -ffile-prefix-map={source}=. -ffile-prefix-map={build}=."
    configure = [
        "cmake",
        "-S",
        str(source),
        "-B",
        str(build),
        f"-DCMAKE_TOOLCHAIN_FILE={_toolchain(build / 'toolchain.cmake', uname_machine)}",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_C_FLAGS={flags}",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DPython_INCLUDE_DIR={include / f'python{version}'}",
        f"-DPython_LIBRARY={libpython}",
        f"-DK8SAUDIT_PYTHON_HOME={TARGET_PYTHON_HOME}",
        # No RUNPATH naming the (temporary) sysroot: it would change the build ID from one build to the
        # next. The packager sets the one the artifact needs.
        "-DCMAKE_SKIP_RPATH=ON",
        "-Wno-dev",
        *options,
    ]
    for command in (configure, ["cmake", "--build", str(build), "-j2"]):
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            errors = [line for line in (out.stdout + out.stderr).splitlines() if "rror" in line]
            reason = errors[0].strip() if errors else (out.stdout + out.stderr).strip()[-300:]
            raise CrossError(f"cross-building the shim for {uname_machine} failed: {reason}")
    return build


def build_shim(build: Path, uname_machine: str, sysroot: Sysroot) -> Path:
    """libk8saudit-eks-py.so for the target, built in `build`."""
    return cmake_build(build, uname_machine, sysroot) / SO_NAME
