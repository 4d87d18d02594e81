"""Find the installed distributions the plugin needs at run time and copy their files into site-packages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Files of an installed distribution that do not belong in a runtime: pip's bookkeeping (RECORD would
# be wrong after trimming), caches, and anything installed outside site-packages (console scripts).
_DIST_INFO_DROPPED = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "entry_points.txt"}


class DistributionError(RuntimeError):
    pass


@dataclass(frozen=True)
class Requirement:
    name: str
    conditional: bool  # carries an environment marker: the installer may rightly have skipped it


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> Requirement | None:
    """Name and marker-ness of one Requires-Dist line; None for extras-only requirements."""
    requirement, _, marker = text.partition(";")
    if "extra" in marker:
        return None
    match = _NAME.match(requirement)
    if match is None:
        raise DistributionError(f"cannot parse requirement {text!r}")
    return Requirement(match.group(1), conditional=bool(marker.strip()))


def closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """Installed distributions reachable from `requirements` (Requires-Dist strings), sorted by name."""
    found: dict[str, metadata.Distribution] = {}
    pending = [r for r in map(parse_requirement, requirements) if r is not None]
    while pending:
        requirement = pending.pop()
        key = normalize(requirement.name)
        if key in found:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            if requirement.conditional:
                continue
            raise DistributionError(f"{requirement.name} is required but not installed") from None
        found[key] = dist
        pending.extend(r for r in map(parse_requirement, dist.requires or []) if r is not None)
    return [found[k] for k in sorted(found)]


def keep_file(path: PurePosixPath) -> bool:
    """False for pip's bookkeeping, caches and files installed outside site-packages."""
    parts = path.parts
    if not parts or parts[0] == ".." or "__pycache__" in parts or path.suffix == ".pyc":
        return False
    return not (parts[0].endswith(".dist-info") and path.name in _DIST_INFO_DROPPED)


def copy_distribution(
    dist: metadata.Distribution, dest: Path, keep: Callable[[PurePosixPath], bool] = lambda _: True
) -> int:
    """Copy `dist`'s installed files (per its RECORD) under `dest`; `keep` filters further. Returns bytes."""
    if dist.files is None:
        raise DistributionError(f"{dist.metadata['Name']} has no RECORD: reinstall it with pip")
    copied = 0
    for file in dist.files:
        relative = PurePosixPath(str(file))
        if not keep_file(relative) or not keep(relative):
            continue
        source = Path(str(dist.locate_file(file)))
        if not source.is_file():
            continue
        target = dest.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied += target.stat().st_size
    return copied
