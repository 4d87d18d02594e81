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

import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from k8saudit_eks_py.packaging import distributions, elf, stdlib, trim
from k8saudit_eks_py.packaging.naming import DIST_NAME, RUNTIME_DIR

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


def _copy_license(lib_source: Path, licenses: Path) -> None:
    """Copy the Debian copyright file of the package that owns `lib_source`, when dpkg knows it."""
    if shutil.which("dpkg-query") is None:
        return
    candidates = [str(lib_source)]
    if lib_source.parts[1:2] == ("usr",):  # merged /usr: dpkg may have recorded /lib/...
        candidates.append(str(Path("/", *lib_source.parts[2:])))
    for candidate in candidates:
        out = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            package = out.stdout.split(":", 1)[0].strip()
            copyright_file = Path("/usr/share/doc") / package / "copyright"
            if copyright_file.is_file():
                shutil.copy2(copyright_file, licenses / f"{package}.copyright")
            return


def _bundle_libraries(runtime: Path, lib: Path, libpython: str, licenses: Path) -> list[str]:
    """Copy every non-glibc library an ELF file of the runtime needs into lib/, then fix RUNPATHs."""
    bundled: dict[str, Path] = {}
    users: dict[Path, set[str]] = {}
    for module in _elf_files(runtime):
        for soname, path in elf.needed_libraries(module, ignore={libpython}).items():
            if path.is_relative_to(runtime.resolve()):
                continue  # a wheel's own vendored library (cffi.libs/...), already reachable by its RPATH
            bundled.setdefault(soname, path)
            users.setdefault(module, set()).add(soname)
    for soname, source in sorted(bundled.items()):
        target = lib / soname
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        elf.strip(target)
        elf.set_runpath(target, "$ORIGIN")
        _copy_license(source, licenses)
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
    return sorted(bundled)


def build_runtime(
    dest: Path,
    *,
    plugin_package: Path,
    requirements: list[str],
    version: str,
    compile_bytecode: bool = True,
) -> RuntimeInfo:
    """Create dest/k8saudit-eks-py-runtime for the interpreter running this code; return what went in."""
    libdir, libpython = python_libdir()
    runtime = dest / RUNTIME_DIR
    lib = runtime / "lib"
    pylib = lib / f"python{sys.version_info.major}.{sys.version_info.minor}"
    licenses = runtime / "licenses"
    licenses.mkdir(parents=True)
    lib.mkdir()
    shutil.copyfile(libdir / libpython, lib / libpython)
    os.chmod(lib / libpython, 0o755)
    elf.strip(lib / libpython)

    stdlib_dir = Path(sysconfig.get_paths()["stdlib"])
    for module in stdlib.copy_stdlib(stdlib_dir, pylib):
        elf.strip(module)
    python_license = stdlib_dir / "LICENSE.txt"
    if python_license.is_file():
        shutil.copy2(python_license, licenses / "CPython-LICENSE.txt")

    site = pylib / "site-packages"
    site.mkdir()
    dists = distributions.closure(requirements)
    for dist in dists:
        distributions.copy_distribution(dist, site, trim.keep)
    _copy_plugin_package(plugin_package, site, version)

    bundled = _bundle_libraries(runtime, lib, libpython, licenses)
    elf.set_runpath(lib / libpython, "$ORIGIN")

    if compile_bytecode:
        # Unchecked hashes: valid whatever the mtimes falcoctl leaves, and never rewritten at run time.
        compileall.compile_dir(
            pylib,
            quiet=2,
            workers=0,
            stripdir=str(runtime),
            prependdir=f"/{RUNTIME_DIR}",
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    return RuntimeInfo(
        python_version=".".join(map(str, sys.version_info[:3])),
        libpython=libpython,
        distributions=tuple(f"{d.metadata['Name']}=={d.version}" for d in dists),
        bundled_libraries=tuple(bundled),
    )
