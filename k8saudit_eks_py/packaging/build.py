"""`build_package`: the .so plus its private runtime, as falcoctl's plugin tarball."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import k8saudit_eks_py
from k8saudit_eks_py.packaging import elf
from k8saudit_eks_py.packaging.naming import DIST_NAME, RUNTIME_DIR, SO_NAME, machine, tarball_name
from k8saudit_eks_py.packaging.runtime import build_runtime, python_libdir
from k8saudit_eks_py.packaging.tarball import TarballSize, check_tarball, write_tarball

LIBRARY_RUNPATH = f"$ORIGIN/{RUNTIME_DIR}/lib"


class PackageError(RuntimeError):
    pass


def _pyproject() -> Path | None:
    candidate = Path(k8saudit_eks_py.__file__).resolve().parent.parent / "pyproject.toml"
    return candidate if candidate.is_file() else None


def project_version() -> str:
    """Version of the plugin: the installed distribution's, else the source tree's pyproject.toml."""
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        pass
    pyproject = _pyproject()
    if pyproject is not None:
        match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    raise PackageError(f"cannot tell the version: {DIST_NAME} is not installed and no pyproject.toml found")


def runtime_requirements() -> list[str]:
    """The plugin's run-time Requires-Dist lines (installed metadata, else pyproject's dependencies)."""
    try:
        return list(metadata.requires(DIST_NAME) or [])
    except metadata.PackageNotFoundError:
        pass
    pyproject = _pyproject()
    if pyproject is None:
        raise PackageError(f"{DIST_NAME} is not installed and no pyproject.toml found")
    block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", pyproject.read_text(), re.MULTILINE | re.DOTALL)
    if block is None:
        raise PackageError(f"no dependencies list in {pyproject}")
    return re.findall(r'^\s*"([^"]+)"', block.group(1), re.MULTILINE)


def _stage_library(library: Path, staging: Path, libpython: str) -> None:
    target = staging / SO_NAME
    shutil.copyfile(library, target)
    target.chmod(0o755)
    elf.set_runpath(target, LIBRARY_RUNPATH)
    needed = elf.needed_libraries(target, ignore={libpython})
    outside = {name: path for name, path in needed.items() if not path.is_relative_to(staging.resolve())}
    if outside:
        raise PackageError(f"{SO_NAME} needs libraries the package does not bundle: {sorted(outside)}")


def build_package(
    out_dir: Path,
    *,
    library: Path | None = None,
    version: str | None = None,
    compile_bytecode: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Path:
    """Build k8saudit-eks-py-<version>-linux-<arch>.tar.gz in out_dir from this interpreter's environment.

    `library` defaults to the libk8saudit-eks-py.so installed next to the package; the runtime is made of
    the interpreter running this function (its libpython and stdlib) and the installed dependencies.
    """
    library = library if library is not None else k8saudit_eks_py.library_path()
    version = version or project_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    _, libpython = python_libdir()
    with tempfile.TemporaryDirectory(prefix="k8saudit-eks-py-package-") as tmp:
        staging = Path(tmp)
        progress(f"bundling the Python runtime ({libpython}, stdlib, dependencies)")
        build_runtime(
            staging,
            plugin_package=Path(k8saudit_eks_py.__file__).resolve().parent,
            requirements=runtime_requirements(),
            version=version,
            compile_bytecode=compile_bytecode,
        )
        progress(f"adding {library}")
        _stage_library(library, staging, libpython)
        progress("writing the tarball")
        tarball = write_tarball(staging, out_dir / tarball_name(version, machine()))
    check_package(tarball)
    return tarball


def check_package(tarball: Path) -> TarballSize:
    """Sizes of a built tarball; raises LayoutError if falcoctl would not install it as a plugin."""
    return check_tarball(tarball, SO_NAME)
