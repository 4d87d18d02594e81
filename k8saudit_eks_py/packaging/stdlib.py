"""Copy CPython's standard library into the private runtime, minus what a headless plugin never imports."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

# Top-level entries of lib/python3.X that are left out. Everything else is kept: boto3/botocore/urllib3
# reach into email, http, json, ssl, xml, logging, concurrent, multiprocessing, zipfile, ...
EXCLUDED_TOP_LEVEL = (
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "turtle.py",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "pydoc.py",
    "distutils",
    "venv",
    "curses",
    "dbm",
    "sqlite3",
    "__phello__",
    "site-packages",  # the packager fills its own
    "config-*",  # static libpython.a and the Makefile: build-time only
    "LICENSE.txt",  # copied separately into the runtime's root
)

# Extension modules left out: test modules, GUI/terminal bindings, dead Unix databases, and
# anything whose only purpose would pull another system library in.
EXCLUDED_EXTENSIONS = (
    "_test*",
    "_xxtestfuzz*",
    "_ctypes_test*",
    "xxlimited*",
    "_xxsubinterpreters*",
    "_tkinter*",
    "_curses*",
    "readline*",
    "nis*",
    "spwd*",
    "ossaudiodev*",
    "_sqlite3*",
    "_dbm*",
    "_gdbm*",
    "audioop*",
    "_crypt*",
)

_SKIPPED_ANYWHERE = ("__pycache__", "*.pyc", "*.exe", "test", "tests", "idle_test")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def copy_stdlib(src: Path, dest: Path) -> list[Path]:
    """Copy the pruned library of `src` (lib/python3.X) to `dest`; return the kept extension modules."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if _matches(entry.name, EXCLUDED_TOP_LEVEL) or entry.name == "lib-dynload":
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, ignore=shutil.ignore_patterns(*_SKIPPED_ANYWHERE))
        elif not _matches(entry.name, _SKIPPED_ANYWHERE):
            shutil.copy2(entry, dest / entry.name)
    kept: list[Path] = []
    dynload = dest / "lib-dynload"
    dynload.mkdir()
    for module in sorted((src / "lib-dynload").iterdir()):
        if module.suffix == ".so" and not _matches(module.name, EXCLUDED_EXTENSIONS):
            kept.append(Path(shutil.copy2(module, dynload / module.name)))
    return kept
