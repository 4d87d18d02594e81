"""Compiled dependencies for another architecture: the published manylinux wheels of the installed versions.

Pure-Python distributions are copied from this environment whatever the target; one with extension modules
(orjson, cffi) is replaced by its wheel for the target, same name and version, fetched with
`pip download --platform` into a cache and unpacked into site-packages.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath

from k8saudit_eks_py.packaging.distributions import keep_file


class WheelError(RuntimeError):
    pass


# manylinux tags a Debian bookworm target (glibc 2.36) runs, newest first; pip wants them spelled out.
def platform_tags(uname_machine: str) -> list[str]:
    return [f"manylinux_2_{minor}_{uname_machine}" for minor in (36, 34, 31, 28, 27, 24, 17)] + [
        f"manylinux2014_{uname_machine}"
    ]


def is_compiled(dist: metadata.Distribution) -> bool:
    """True when the installed distribution carries extension modules or shared libraries."""
    return any(".so" in PurePosixPath(str(f)).name for f in dist.files or [])


def _wheel_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _matching(
    directory: Path, name: str, version: str, uname_machine: str, python: tuple[int, int]
) -> Path | None:
    pythons = {f"cp{python[0]}{python[1]}", "abi3", "none"}
    for wheel in sorted(directory.glob("*.whl")):
        parts = wheel.name[:-4].split("-")
        if len(parts) < 5 or _wheel_name(parts[0]) != _wheel_name(name) or parts[1] != version:
            continue
        abis, platforms = set(parts[-2].split(".")), set(parts[-1].split("."))
        if abis & pythons and any(p.endswith(f"_{uname_machine}") or p == "any" for p in platforms):
            return wheel
    return None


def wheel_identity(wheel: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's file name."""
    parts = wheel.name[:-4].split("-")
    return _wheel_name(parts[0]).replace("_", "-"), parts[1]


def record(wheel: Path) -> dict[str, str]:
    """A wheel's RECORD: path → SHA-256 (hex) of each file it installs, as its publisher wrote it."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
        if len(names) != 1:
            raise WheelError(f"{wheel.name} has no RECORD")
        text = archive.read(names[0]).decode()
    out = {}
    for line in text.splitlines():
        path, _, rest = line.partition(",")
        parts = PurePosixPath(path).parts
        if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib"):
            path = PurePosixPath(*parts[2:]).as_posix()  # installed into site-packages itself
        algorithm, _, encoded = rest.partition(",")[0].partition("=")
        if algorithm == "sha256":
            out[path] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
    return out


def fetch(
    name: str,
    version: str,
    uname_machine: str,
    cache: Path,
    python: tuple[int, int],
    *,
    offline: bool = False,
) -> Path:
    """The wheel of name==version for the target, from `cache` or downloaded into it."""
    found = _matching(cache, name, version, uname_machine, python)
    if found is not None:
        return found
    if offline:
        raise WheelError(
            f"no {uname_machine} wheel of {name}=={version} in {cache}: run `k8saudit-eks-py package "
            "--platform ... --download-only` (or tests/setup-system) once with network access"
        )
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    for tag in platform_tags(uname_machine):
        command += ["--platform", tag]
    command += ["--python-version", f"{python[0]}.{python[1]}", "--implementation", "cp"]
    out = subprocess.run([*command, "-d", str(cache), f"{name}=={version}"], capture_output=True, text=True)
    if out.returncode != 0:
        lines = [line for line in out.stderr.splitlines() if "ERROR" in line] or [out.stderr.strip()[-300:]]
        raise WheelError(f"pip download of the {uname_machine} wheel of {name}=={version} failed: {lines[0]}")
    found = _matching(cache, name, version, uname_machine, python)
    if found is None:
        raise WheelError(f"pip download gave no {uname_machine} wheel of {name}=={version} in {cache}")
    return found


def install(wheel: Path, site: Path, keep: Callable[[PurePosixPath], bool] = lambda _: True) -> int:
    """Unpack a wheel into site-packages (its purelib/platlib content; pip's bookkeeping left out)."""
    copied = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            relative = PurePosixPath(info.filename)
            if info.is_dir():
                continue
            top = relative.parts[0]
            if top.endswith(".data"):
                if len(relative.parts) < 3 or relative.parts[1] not in ("purelib", "platlib"):
                    raise WheelError(f"{wheel.name} installs {info.filename} outside site-packages")
                relative = PurePosixPath(*relative.parts[2:])
            if not keep_file(relative) or not keep(relative):
                continue
            target = site.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            mode = (info.external_attr >> 16) & 0o777
            target.chmod(0o755 if mode & 0o100 or ".so" in target.name else 0o644)
            copied += info.file_size
    return copied
