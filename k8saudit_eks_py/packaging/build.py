"""`build_package`: the .so plus its private runtime, as falcoctl's plugin tarball."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import k8saudit_eks_py
from k8saudit_eks_py.packaging import (
    cross,
    debian,
    distributions,
    elf,
    inventory,
    licences,
    sbom,
    source,
    wheels,
)
from k8saudit_eks_py.packaging.naming import DIST_NAME, RUNTIME_DIR, SO_NAME, machine, oci_arch, tarball_name
from k8saudit_eks_py.packaging.runtime import Interpreter, RuntimeInfo, build_runtime, host_interpreter
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


def project_licence() -> Path:
    """The project's LICENSE: from the installed distribution, else the source tree."""
    try:
        for file in metadata.distribution(DIST_NAME).files or []:
            if Path(str(file)).name == "LICENSE":
                return Path(str(file.locate()))
    except metadata.PackageNotFoundError:
        pass
    pyproject = _pyproject()
    if pyproject is not None and (pyproject.parent / "LICENSE").is_file():
        return pyproject.parent / "LICENSE"
    raise PackageError(f"cannot find {DIST_NAME}'s LICENSE to ship with it")


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


def _stage_library(library: Path, staging: Path, python: Interpreter) -> None:
    target = staging / SO_NAME
    shutil.copyfile(library, target)
    target.chmod(0o755)
    elf.set_runpath(target, LIBRARY_RUNPATH)
    needed = python.needed(target, {python.soname})
    outside = {name: path for name, path in needed.items() if not path.is_relative_to(staging.resolve())}
    if outside:
        raise PackageError(f"{SO_NAME} needs libraries the package does not bundle: {sorted(outside)}")


def build_package(
    out_dir: Path,
    *,
    library: Path | None = None,
    version: str | None = None,
    platform_machine: str | None = None,
    offline: bool = False,
    compile_bytecode: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Path:
    """Build k8saudit-eks-py-<version>-linux-<machine>.tar.gz in out_dir.

    For this machine (the default), `library` defaults to the libk8saudit-eks-py.so installed next to the
    package and the runtime is made of the interpreter running this function (its libpython and stdlib)
    and the installed dependencies. For another `platform_machine` (`uname -m` spelling: aarch64) it is a
    cross build: see _build_cross. `offline` forbids downloads (a cross build then uses its cache only).
    """
    target = platform_machine or machine()
    version = version or project_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    built_from = source.build_source()
    with tempfile.TemporaryDirectory(prefix="k8saudit-eks-py-package-") as tmp:
        sysroot: debian.Sysroot | None = None
        if target == machine():
            library = library if library is not None else k8saudit_eks_py.library_path()
            python = host_interpreter()
        else:
            library, python, sysroot = _cross_inputs(Path(tmp), target, library, offline, progress)
        if target in elf.KNOWN_MACHINES and elf.machine(library) != target:
            raise PackageError(f"{library} is built for {elf.machine(library)}, not {target}")
        staging = Path(tmp) / "staging"
        progress(f"bundling the Python runtime ({python.soname}, stdlib, dependencies) for {target}")
        target_wheels = _target_wheels(target, python, offline) if target != machine() else {}
        info = build_runtime(
            staging,
            plugin_package=Path(k8saudit_eks_py.__file__).resolve().parent,
            requirements=runtime_requirements(),
            version=version,
            python=python,
            wheels=target_wheels,
            compile_bytecode=compile_bytecode,
        )
        progress(f"adding {library.name}")
        _stage_library(library, staging, python)
        name = tarball_name(version, target)
        progress("writing the SBOM")
        _write_sbom(staging, name, target, version, python, sysroot, target_wheels, info, built_from)
        progress("writing the tarball")
        tarball = write_tarball(staging, out_dir / name, mtime=built_from.source_date_epoch)
    check_package(tarball)
    sbom.write_beside(tarball)
    return tarball


def _write_sbom(
    staging: Path,
    name: str,
    target: str,
    version: str,
    python: Interpreter,
    sysroot: debian.Sysroot | None,
    target_wheels: dict[str, Path],
    info: RuntimeInfo,
    built_from: source.BuildSource,
) -> None:
    """Every file of the staged artifact assigned to a component, the licence texts added, and the SBOM
    written into the runtime, before the tarball is."""
    inputs = inventory.Inputs(
        version=version,
        python=python,
        sysroot=sysroot,
        distributions=distributions.closure(runtime_requirements()),
        wheels=target_wheels,
        libraries=dict(info.library_sources),
        source=built_from,
        distro=source.debian_release(),
        cached_wheels=sorted(debian.cache_root().glob("*/wheels/*.whl")),
        project_licence=project_licence(),
    )
    try:
        found = inventory.collect(staging, inputs)
    except (inventory.InventoryError, licences.LicenceError) as exc:
        raise PackageError(f"SBOM: {exc}") from None
    sbom.write(staging, sbom.document(found, machine=target, tarball_name=name, source=built_from))


def _compiled_distributions() -> list[tuple[str, str]]:
    """(name, version) of the installed run-time dependencies that carry extension modules."""
    return [
        (str(d.metadata["Name"]), d.version)
        for d in distributions.closure(runtime_requirements())
        if wheels.is_compiled(d)
    ]


def _target_wheels(target: str, python: Interpreter, offline: bool) -> dict[str, Path]:
    cache = debian.cache_dir(cross.debian_arch(target)) / "wheels"
    return {
        distributions.normalize(name): wheels.fetch(name, ver, target, cache, python.version, offline=offline)
        for name, ver in _compiled_distributions()
    }


def download_cross_inputs(target: str, progress: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Fetch into the cache what a cross build for `target` downloads (Debian packages, wheels); build
    nothing. Afterwards `build_package(..., platform_machine=target, offline=True)` needs no network."""
    _check_cross_target(target)
    arch = cross.debian_arch(target)
    progress(f"fetching Debian's {arch} packages")
    files = debian.fetch(arch)
    progress(f"fetching the {target} wheels of {', '.join(n for n, _ in _compiled_distributions())}")
    cache = debian.cache_dir(arch) / "wheels"
    files += [wheels.fetch(n, v, target, cache, debian.PYTHON_VERSION) for n, v in _compiled_distributions()]
    # The pure-Python ones are copied from this environment; their wheels (the same for every platform)
    # let the SBOM name the wheel, and its SHA-256, whose files the artifact ships.
    compiled = set(_compiled_distributions())
    pure = [
        (str(d.metadata["Name"]), d.version)
        for d in distributions.closure(runtime_requirements())
        if (str(d.metadata["Name"]), d.version) not in compiled
    ]
    progress(f"fetching the wheels of {', '.join(n for n, _ in pure)}")
    files += [wheels.fetch(n, v, target, cache, debian.PYTHON_VERSION) for n, v in pure]
    # And this machine's wheels of the compiled ones, for the SBOM of the native build (copied too).
    native = machine()
    if native in elf.KNOWN_MACHINES:
        progress(f"fetching the {native} wheels of {', '.join(n for n, _ in sorted(compiled))}")
        native_cache = debian.cache_dir(oci_arch(native)) / "wheels"
        python = (sys.version_info.major, sys.version_info.minor)
        files += [wheels.fetch(n, v, native, native_cache, python) for n, v in sorted(compiled)]
    return files


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _check_cross_target(target: str) -> None:
    if target not in cross.TARGETS:
        raise PackageError(f"cannot cross-build for {target} (only for {', '.join(cross.TARGETS)})")


def _cross_inputs(
    tmp: Path, target: str, library: Path | None, offline: bool, progress: Callable[[str], None]
) -> tuple[Path, Interpreter, debian.Sysroot]:
    """A cross build: Debian's CPython for `target` (unpacked .debs) and the shim cross-compiled against
    it, unless `library` is a shim already built for the target."""
    _check_cross_target(target)
    if library is None:
        problem = cross.missing_tools(target)
        if problem:
            raise PackageError(problem)
    arch = cross.debian_arch(target)
    progress(f"Debian's {arch} CPython {'{}.{}'.format(*debian.PYTHON_VERSION)} and libraries")
    sysroot = debian.unpack(debian.fetch(arch, offline=offline), tmp / "sysroot", cross.triplet(target))
    libpython = sysroot.library_dirs[0] / "libpython{}.{}.so.1.0".format(*debian.PYTHON_VERSION)
    libpython_package = "libpython{}.{}".format(*debian.PYTHON_VERSION)  # its copyright: CPython's licence
    python = Interpreter(
        machine=target,
        version=debian.PYTHON_VERSION,
        libpython=libpython,
        soname=elf.soname(libpython),
        stdlib=sysroot.stdlib,
        license=_existing(sysroot.root / "usr" / "share" / "doc" / libpython_package / "copyright"),
        needed=lambda path, ignore: elf.needed_in(path, sysroot.library_dirs, ignore),
        copyright=sysroot.copyright,
        strip_tool=f"{cross.triplet(target)}-strip",
    )
    if library is None:
        progress(f"cross-compiling the shim for {target}")
        library = cross.build_shim(tmp / "build", target, sysroot)
    return library, python, sysroot


def check_package(tarball: Path) -> TarballSize:
    """Sizes of a built tarball; raises LayoutError if falcoctl would not install it as a plugin."""
    return check_tarball(tarball, SO_NAME)
