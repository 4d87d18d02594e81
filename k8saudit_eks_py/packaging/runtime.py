"""Assemble the private CPython runtime that sits next to the .so: libpython, pruned stdlib, site-packages.

Layout (the shim starts Python with home = <plugins dir>/k8saudit-eks-py-runtime):

    k8saudit-eks-py-runtime/
      lib/libpython3.X.so.1.0          found through the .so's RUNPATH $ORIGIN/k8saudit-eks-py-runtime/lib
      lib/libssl.so.3, libz.so.1, ...  non-glibc libraries the extension modules need (RUNPATH $ORIGIN)
      lib/python3.X/                   standard library (site.py adds lib/python3.X/site-packages)
      lib/python3.X/lib-dynload/       extension modules (RUNPATH $ORIGIN/../..)
      lib/python3.X/site-packages/     k8saudit_eks_py, boto3, botocore (trimmed), orjson, ...
      licenses/                        CPython's licence and the bundled libraries' copyright files
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from k8saudit_eks_py.packaging import distributions, elf, stdlib, trim
from k8saudit_eks_py.packaging import wheels as wheel_files
from k8saudit_eks_py.packaging.naming import DIST_NAME, RUNTIME_DIR, machine

PLUGIN_PACKAGE = "k8saudit_eks_py"
# Parts of the plugin package that are build/dev tools, not run-time code.
_PLUGIN_PACKAGE_SKIPPED = ("__pycache__", "*.pyc", "*.so", "packaging")


class RuntimeBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class RuntimeInfo:
    python_version: str  # "3.11.7"
    libpython: str  # soname, e.g. libpython3.11.so.1.0
    distributions: tuple[str, ...]  # "name==version", sorted
    bundled_libraries: tuple[str, ...]  # sonames copied into lib/
    library_sources: tuple[tuple[str, Path], ...] = ()  # (soname, the file it was copied from)


@dataclass(frozen=True)
class Interpreter:
    """The CPython a runtime is made of: the one running the packager, or Debian's for another machine."""

    machine: str  # `uname -m` of its ELF files
    version: tuple[int, int]
    libpython: Path  # the library file
    soname: str
    stdlib: Path  # lib/python3.X
    license: Path | None
    # Non-glibc libraries an ELF file loads (soname → file to copy), ignoring the given sonames.
    needed: Callable[[Path, set[str]], dict[str, Path]]
    # (name, copyright file) to put in licenses/ for a copied library, when known.
    copyright: Callable[[Path], tuple[str, Path] | None]
    strip_tool: str = "strip"


def python_libdir() -> tuple[Path, str]:
    """(directory, soname) of the libpython of the interpreter running the packager."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise RuntimeBuildError(
            f"{sys.executable} was built without --enable-shared: there is no libpython to bundle"
        )
    soname = str(sysconfig.get_config_var("INSTSONAME"))
    libdir = Path(str(sysconfig.get_config_var("LIBDIR")))
    if not (libdir / soname).is_file():
        raise RuntimeBuildError(f"{libdir / soname} not found")
    return libdir, soname


def host_interpreter() -> Interpreter:
    """The interpreter running this code, its libraries resolved by ldd, licences from dpkg when known."""
    libdir, soname = python_libdir()
    stdlib_dir = Path(sysconfig.get_paths()["stdlib"])
    python_license = stdlib_dir / "LICENSE.txt"
    return Interpreter(
        machine=machine(),
        version=(sys.version_info.major, sys.version_info.minor),
        libpython=libdir / soname,
        soname=soname,
        stdlib=stdlib_dir,
        license=python_license if python_license.is_file() else None,
        needed=lambda path, ignore: elf.needed_libraries(path, ignore=ignore),
        copyright=_dpkg_copyright,
    )


def _copy_plugin_package(source: Path, site: Path, version: str) -> None:
    shutil.copytree(source, site / PLUGIN_PACKAGE, ignore=shutil.ignore_patterns(*_PLUGIN_PACKAGE_SKIPPED))
    # importlib.metadata.version("k8saudit-eks-py") must work inside the runtime.
    info = site / f"{PLUGIN_PACKAGE}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\n")


def _elf_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".so" in path.name:
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def _dpkg_copyright(lib_source: Path) -> tuple[str, Path] | None:
    """The Debian package that owns `lib_source` and its copyright file, when dpkg knows it."""
    if shutil.which("dpkg-query") is None:
        return None
    candidates = [str(lib_source)]
    if lib_source.parts[1:2] == ("usr",):  # merged /usr: dpkg may have recorded /lib/...
        candidates.append(str(Path("/", *lib_source.parts[2:])))
    for candidate in candidates:
        out = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            package = out.stdout.split(":", 1)[0].strip()
            copyright_file = Path("/usr/share/doc") / package / "copyright"
            return (package, copyright_file) if copyright_file.is_file() else None
    return None


def _bundle_libraries(runtime: Path, lib: Path, python: Interpreter, licenses: Path) -> dict[str, Path]:
    """Copy every non-glibc library an ELF file of the runtime needs into lib/, then fix RUNPATHs."""
    bundled: dict[str, Path] = {}
    users: dict[Path, set[str]] = {}
    for module in _elf_files(runtime):
        for soname, path in python.needed(module, {python.soname}).items():
            if path.is_relative_to(runtime.resolve()):
                continue  # a wheel's own vendored library (cffi.libs/...), already reachable by its RPATH
            bundled.setdefault(soname, path)
            users.setdefault(module, set()).add(soname)
    for soname, source in sorted(bundled.items()):
        target = lib / soname
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        elf.strip(target, python.strip_tool)
        elf.set_runpath(target, "$ORIGIN")
        known = python.copyright(source)
        if known is not None:
            shutil.copy2(known[1], licenses / f"{known[0]}.copyright")
    for module in _elf_files(runtime):
        if module.parent == lib:
            continue
        # Keep a wheel's own $ORIGIN entries (auditwheel's .libs dirs); drop build-machine paths (pyenv
        # builds its extension modules with RUNPATH=<prefix>/lib); add lib/ where a bundled library is used.
        entries = [e for e in elf.runpath(module).split(":") if e.startswith("$ORIGIN")]
        if module in users:
            relative = os.path.relpath(lib, module.parent)
            entries.append(f"$ORIGIN/{relative}")
        wanted = ":".join(dict.fromkeys(entries))
        if wanted != elf.runpath(module):
            elf.set_runpath(module, wanted)
    return dict(sorted(bundled.items()))


def _compile_bytecode(pylib: Path, runtime: Path) -> None:
    """Precompile with unchecked hashes: valid whatever the mtimes falcoctl leaves, never rewritten at run
    time. In a fresh interpreter, one process, fixed hash seed: marshal writes frozenset constants in hash
    order and back-references by reference count, so that is what makes the same inputs give the same
    .pyc bytes. Files that do not compile are left as source, as pip does."""
    command = [sys.executable, "-m", "compileall", "-q", "-q", "-j", "1", "-s", str(runtime)]
    command += ["-p", f"/{RUNTIME_DIR}", "--invalidation-mode", "unchecked-hash", str(pylib)]
    out = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    if out.returncode not in (0, 1):  # 1: some file did not compile
        raise RuntimeBuildError(f"compileall failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")


def _check_machine(runtime: Path, expected: str) -> None:
    """Every ELF file of the runtime is built for the target: nothing of the build machine slipped in."""
    if expected not in elf.KNOWN_MACHINES:
        return  # a native build on a machine we do not publish for: nothing to compare with
    for path in _elf_files(runtime):
        found = elf.machine(path)
        if found != expected:
            raise RuntimeBuildError(f"{path.relative_to(runtime)} is built for {found}, not {expected}")


def build_runtime(
    dest: Path,
    *,
    plugin_package: Path,
    requirements: list[str],
    version: str,
    python: Interpreter | None = None,
    wheels: dict[str, Path] | None = None,
    compile_bytecode: bool = True,
) -> RuntimeInfo:
    """Create dest/k8saudit-eks-py-runtime from `python` (default: the interpreter running this code).

    `wheels` maps a distribution name (normalized) to the wheel that replaces its installed files: the
    target's build of a compiled dependency in a cross build.
    """
    python = python or host_interpreter()
    wheels = wheels or {}
    runtime = dest / RUNTIME_DIR
    lib = runtime / "lib"
    pylib = lib / "python{}.{}".format(*python.version)
    licenses = runtime / "licenses"
    licenses.mkdir(parents=True)
    lib.mkdir()
    libpython = python.soname
    shutil.copyfile(python.libpython, lib / libpython)
    os.chmod(lib / libpython, 0o755)
    elf.strip(lib / libpython, python.strip_tool)

    for module in stdlib.copy_stdlib(python.stdlib, pylib):
        elf.strip(module, python.strip_tool)
    if python.license is not None:
        shutil.copy2(python.license, licenses / "CPython-LICENSE.txt")

    site = pylib / "site-packages"
    site.mkdir()
    dists = distributions.closure(requirements)
    for dist in dists:
        wheel = wheels.get(distributions.normalize(dist.metadata["Name"]))
        if wheel is not None:
            wheel_files.install(wheel, site, trim.keep)
        else:
            distributions.copy_distribution(dist, site, trim.keep)
    _copy_plugin_package(plugin_package, site, version)

    bundled = _bundle_libraries(runtime, lib, python, licenses)
    elf.set_runpath(lib / libpython, "$ORIGIN")
    _check_machine(runtime, python.machine)

    if compile_bytecode:
        if python.version != sys.version_info[:2]:
            raise RuntimeBuildError(
                "precompiling the runtime's bytecode needs the packager to run on Python {}.{}, "
                "the runtime's version, not {}.{}".format(*python.version, *sys.version_info[:2])
            )
        _compile_bytecode(pylib, runtime)
    return RuntimeInfo(
        python_version=".".join(map(str, python.version)),
        libpython=libpython,
        distributions=tuple(f"{d.metadata['Name']}=={d.version}" for d in dists),
        bundled_libraries=tuple(bundled),
        library_sources=tuple(bundled.items()),
    )
