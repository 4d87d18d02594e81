"""Write the plugin tarball the way falcoctl can extract it, and check an archive against falcoctl's rules.

falcoctl (internal/utils/extract.go) extracts entries relative to the plugins directory with no path
stripping; it rejects any name containing "..", creates directories with MkdirAll but files with a plain
create (so a file's directory entry must come first), and has no business with links. We therefore write
only directories and regular files, parents before children, in a fixed order with fixed owners and
times, so the same inputs give the same bytes.
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class TarballSize:
    compressed: int
    uncompressed: int  # sum of the regular files' sizes
    files: int


def _entries(root: Path) -> list[Path]:
    """Every path under root, each directory immediately before its contents, names sorted."""
    out: list[Path] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise LayoutError(f"{entry} is a symbolic link: falcoctl does not install links")
        if stat.S_ISDIR(mode):
            out.append(entry)
            out.extend(_entries(entry))
        elif stat.S_ISREG(mode):
            out.append(entry)
        else:
            raise LayoutError(f"{entry} is neither a file nor a directory")
    return out


def check_name(name: str) -> None:
    if ".." in name:
        raise LayoutError(f"{name!r} contains '..': falcoctl rejects the whole archive")
    if name.startswith("/") or not name:
        raise LayoutError(f"{name!r} is not a relative path")


def write_tarball(root: Path, dest: Path, mtime: int | None = None) -> Path:
    """Archive the contents of `root` (not root itself) into the gzip'd tar `dest`."""
    if mtime is None:
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    with (
        dest.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _entries(root):
            name = path.relative_to(root).as_posix()
            check_name(name)
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            if info.isdir():
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
    return dest


def check_tarball(tarball: Path, library: str) -> TarballSize:
    """Raise LayoutError unless falcoctl would install `tarball` with `library` in the plugins dir."""
    seen_dirs: set[str] = set()
    files = uncompressed = 0
    with tarfile.open(tarball, mode="r:gz") as tar:
        for member in tar:
            check_name(member.name)
            parent = member.name.rsplit("/", 1)[0] if "/" in member.name else ""
            if parent and parent not in seen_dirs:
                raise LayoutError(f"{member.name} comes before its directory {parent}")
            if member.isdir():
                seen_dirs.add(member.name.rstrip("/"))
            elif member.isreg():
                files += 1
                uncompressed += member.size
            else:
                raise LayoutError(f"{member.name} is not a regular file or directory (type {member.type!r})")
        names = tar.getnames()
    if library not in names:
        raise LayoutError(f"{library} is not at the archive root")
    return TarballSize(compressed=tarball.stat().st_size, uncompressed=uncompressed, files=files)
