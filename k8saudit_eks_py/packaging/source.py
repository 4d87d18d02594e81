"""Where a build comes from: the checkout's commit, whether it was modified, the time the build records
(SOURCE_DATE_EPOCH, else the commit's time: never the wall clock) and the Debian release it ran on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import k8saudit_eks_py
from k8saudit_eks_py.packaging.naming import DIST_NAME


@dataclass(frozen=True)
class BuildSource:
    commit: str | None  # None: not built from a git checkout
    modified: bool  # tracked files differ from the commit
    source_date_epoch: int  # what the tarball's entries are stamped with
    timestamp: int  # what the SBOM records as its time


def _installed_from() -> Path | None:
    """The local folder pip installed the distribution from (its direct_url.json), if any."""
    try:
        text = metadata.distribution(DIST_NAME).read_text("direct_url.json")
        url = str(json.loads(text or "{}").get("url", ""))
    except (metadata.PackageNotFoundError, ValueError):
        return None
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def checkout() -> Path | None:
    """The checkout the packaged code comes from: the one it is imported from (a source tree), else the
    folder pip installed it from. Never the current directory: it may hold another version."""
    for candidate in (Path(k8saudit_eks_py.__file__).resolve().parent.parent, _installed_from()):
        if (
            candidate is not None
            and (candidate / "pyproject.toml").is_file()
            and (candidate / "shim").is_dir()
        ):
            return candidate
    return None


def _git(tree: Path, *args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def build_source() -> BuildSource:
    tree = checkout()
    commit = _git(tree, "rev-parse", "HEAD") if tree is not None else None
    modified = bool(commit and tree and _git(tree, "status", "--porcelain", "--untracked-files=no"))
    epoch_text = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch_text and not epoch_text.isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH={epoch_text!r} is not a number of seconds since 1970")
    epoch = int(epoch_text) if epoch_text else 0
    commit_time = _git(tree, "log", "-1", "--format=%ct") if commit and tree else None
    timestamp = epoch if epoch_text else int(commit_time) if commit_time else 0
    return BuildSource(commit, modified, epoch, timestamp)


def debian_release(os_release: Path = Path("/etc/os-release")) -> str:
    """`debian-12`: the distro qualifier of the Debian packages' purls (the build machine's release, which
    is also where a cross build's packages come from)."""
    fields: dict[str, str] = {}
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key] = value.strip().strip('"')
    return f"{fields.get('ID', 'debian')}-{fields.get('VERSION_ID', 'unknown')}"
