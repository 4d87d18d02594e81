"""Debian's packages of another architecture (multiarch): fetched with apt-get download, unpacked only.

A cross build takes its CPython (libpython, the standard library, the headers the shim compiles against)
and the libraries the extension modules need from the same Debian release as the build machine, for the
target architecture. The .debs are cached; a build reuses them, so it is repeatable and can run offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Debian bookworm's CPython and what its kept extension modules and libpython link against. The modules the
# runtime leaves out (stdlib.EXCLUDED_EXTENSIONS: curses, readline, sqlite3, dbm, nis, crypt) need
# libraries that are deliberately not here; elf.needed_in fails loudly if a kept one needs a missing one.
PYTHON_VERSION = (3, 11)
PACKAGES = (
    "libpython3.11",  # libpython3.11.so.1.0
    "libpython3.11-minimal",  # core of the standard library
    "libpython3.11-stdlib",  # the rest, lib-dynload
    "libpython3.11-dev",  # headers for the shim (not shipped)
    "libssl3",  # _ssl, _hashlib
    "libexpat1",  # pyexpat
    "zlib1g",  # zlib, libpython
    "libbz2-1.0",  # _bz2
    "liblzma5",  # _lzma
    "libffi8",  # _ctypes
    "libuuid1",  # _uuid
)
_MANIFEST = "debs.json"


class DebianError(RuntimeError):
    pass


@dataclass(frozen=True)
class DebPackage:
    """One Debian binary package as the SBOM names it: name, version, architecture and its source package."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str


def parse_control(text: str) -> DebPackage:
    """A DebPackage from control fields (`dpkg-deb -f` or `dpkg-query -W` output in the same shape).

    `Source: openssl (3.0.11-1)` names the source version when it differs from the binary's."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields[key.strip()] = value.strip()
    try:
        name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
    except KeyError as e:
        raise DebianError(f"control fields without {e.args[0]}: {text[:200]!r}") from None
    source, _, source_version = (fields.get("Source") or name).partition(" ")
    return DebPackage(name, version, arch, source, source_version.strip("()") or version)


@dataclass(frozen=True)
class Sysroot:
    """The unpacked packages: a tree shaped like the target's / (usr/lib/<triplet>, usr/include, ...)."""

    root: Path
    triplet: str  # aarch64-linux-gnu
    owners: dict[str, str]  # path inside root ("usr/lib/.../libssl.so.3") → package name
    packages: dict[str, DebPackage] = field(default_factory=dict)  # package name → what it is

    @property
    def library_dirs(self) -> list[Path]:
        return [self.root / "usr" / "lib" / self.triplet, self.root / "lib" / self.triplet]

    @property
    def stdlib(self) -> Path:
        return self.root / "usr" / "lib" / "python{}.{}".format(*PYTHON_VERSION)

    def owner(self, path: Path) -> DebPackage | None:
        """The package that brought a file of the sysroot (a path inside `root`)."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            relative = path.resolve().relative_to(self.root.resolve())
        name = self.owners.get(relative.as_posix())
        return None if name is None else self.packages.get(name)

    def copyright(self, path: Path) -> tuple[str, Path] | None:
        """(package, its copyright file) for a file of the sysroot."""
        package = self.owners.get(path.relative_to(self.root).as_posix())
        if package is None:
            return None
        copyright_file = self.root / "usr" / "share" / "doc" / package / "copyright"
        return (package, copyright_file) if copyright_file.is_file() else None


def cache_root() -> Path:
    """Where cross builds keep what they download, one folder per Debian architecture."""
    base = os.environ.get("K8SAUDIT_EKS_PY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "k8saudit-eks-py"
    )
    return Path(base) / "cross"


def cache_dir(arch: str) -> Path:
    return cache_root() / arch


def _cached(debs: Path) -> list[Path] | None:
    try:
        names = json.loads((debs / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if sorted(names) != sorted(PACKAGES):
        return None
    files = [debs / names[package] for package in PACKAGES]
    return files if all(f.is_file() for f in files) else None


def _foreign_ready(arch: str) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DebianError(
            f"fetching Debian's {arch} packages needs apt-get and dpkg (a Debian or Ubuntu host)"
        )
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True)
    if arch != native and arch not in foreign.stdout.split():
        raise DebianError(
            f"apt does not know the {arch} packages yet: run as root "
            f"`dpkg --add-architecture {arch} && apt-get update` (or tests/setup-system)"
        )


def fetch(arch: str, *, offline: bool = False) -> list[Path]:
    """The .debs of PACKAGES for `arch`, from the cache or downloaded into it (one apt-get download)."""
    debs = cache_dir(arch) / "debs"
    cached = _cached(debs)
    if cached is not None:
        return cached
    if offline:
        raise DebianError(
            f"Debian's {arch} packages are not cached in {debs}: run `k8saudit-eks-py package --platform "
            f"linux/{arch} --download-only` (or tests/setup-system) once with network access"
        )
    _foreign_ready(arch)
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        out = subprocess.run(
            ["apt-get", "download", *(f"{p}:{arch}" for p in PACKAGES)],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            errors = [line for line in out.stderr.splitlines() if line.startswith("E:")]
            reason = errors[0] if errors else out.stderr.strip()[-300:]
            raise DebianError(
                f"apt-get download of the {arch} packages failed: {reason} (try apt-get update)"
            )
        names: dict[str, str] = {}
        for deb in Path(tmp).glob("*.deb"):
            names[deb.name.split("_", 1)[0]] = deb.name
            os.replace(deb, debs / deb.name)
    missing = sorted(set(PACKAGES) - set(names))
    if missing:
        raise DebianError(f"apt-get download did not fetch {', '.join(missing)} for {arch}")
    (debs / _MANIFEST).write_text(json.dumps(names, indent=1, sort_keys=True) + "\n")
    return [debs / names[p] for p in PACKAGES]


def _resolve(root: Path, link: Path, depth: int = 0) -> Path | None:
    """Where a symlink of the sysroot points inside the sysroot (absolute targets are sysroot-relative)."""
    if depth > 20:
        return None
    target = os.readlink(link)
    candidate = root / target.lstrip("/") if target.startswith("/") else link.parent / target
    candidate = Path(os.path.normpath(candidate))
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_symlink():
        return _resolve(root, candidate, depth + 1)
    return candidate if candidate.exists() else None


def _materialize_links(root: Path) -> None:
    """Replace every symlink by a copy of what it names inside the sysroot, or drop it.

    Copying then never follows a link out of the sysroot into the build machine's own files (Debian's
    /usr/lib/python3.11/sitecustomize.py points at /etc/python3.11/sitecustomize.py)."""
    links = sorted((p for p in root.rglob("*") if p.is_symlink()), key=lambda p: len(p.parts), reverse=True)
    resolved = {link: _resolve(root, link) for link in links}
    for link, target in resolved.items():
        link.unlink()
        if target is None:
            continue
        if target.is_dir():
            shutil.copytree(target, link, symlinks=False)
        else:
            shutil.copy2(target, link)


def unpack(debs: list[Path], dest: Path, triplet: str) -> Sysroot:
    """dpkg-deb -x every package into dest; links made real files; records which package owns each file."""
    if shutil.which("dpkg-deb") is None:
        raise DebianError("unpacking Debian packages needs dpkg-deb (apt-get install dpkg)")
    owners: dict[str, str] = {}
    packages: dict[str, DebPackage] = {}
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True)
        info = parse_control(control.stdout)
        packages[info.name] = info
        listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
        package = deb.name.split("_", 1)[0]
        for name in _tar_names(listing.stdout):
            owners[os.path.normpath(name)] = package
    _materialize_links(dest)
    return Sysroot(dest, triplet, owners, packages)


def _tar_names(data: bytes) -> list[str]:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar if m.isfile() or m.issym()]
