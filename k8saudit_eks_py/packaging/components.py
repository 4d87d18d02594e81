"""What the artifact is made of, one Component per source: a Debian package, a PyPI distribution, a CPython
build, and the project itself. Each knows its version, where it came from, its licence and its files."""

from __future__ import annotations

import email
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from k8saudit_eks_py.packaging import licences
from k8saudit_eks_py.packaging.debian import DebPackage, parse_control
from k8saudit_eks_py.packaging.distributions import normalize

PROJECT_REF = "k8saudit-eks-py"
PROJECT_LICENCE = "Apache-2.0"


@dataclass(frozen=True)
class Embedded:
    """A component compiled into another one's files, as that one's own SBOM lists it (orjson's Rust crates,
    from the CycloneDX file its wheel carries in .dist-info/sboms/, PEP 770)."""

    name: str
    version: str
    purl: str
    licence: str


@dataclass
class Component:
    ref: str  # bom-ref, unique in the SBOM: "deb:libssl3", "pypi:botocore", "cpython", "k8saudit-eks-py"
    kind: str  # "debian", "pypi", "cpython", "project"
    name: str
    version: str
    licence: str  # SPDX expression
    purl: str | None = None
    cpe: str | None = None
    sha256: str | None = None  # of the file it came in (a wheel), when the build had it
    properties: list[tuple[str, str]] = field(default_factory=list)
    licence_texts: list[str] = field(default_factory=list)  # tarball paths
    files: list[str] = field(default_factory=list)  # tarball paths
    embedded: list[Embedded] = field(default_factory=list)
    boms: list[str] = field(default_factory=list)  # tarball paths of the component's own SBOMs


def _purl_version(version: str) -> str:
    return quote(version, safe="")


def debian(package: DebPackage, copyright_file: Path, distro: str) -> Component:
    """A Debian binary package; `distro` is `debian-12` (the purl qualifier scanners match advisories by)."""
    text = copyright_file.read_text(encoding="utf-8", errors="replace")
    qualifiers = f"arch={package.architecture}&distro={distro}"
    if package.source != package.name:
        upstream = package.source
        if package.source_version != package.version:
            upstream += f"@{package.source_version}"
        qualifiers += f"&upstream={quote(upstream, safe='@')}"
    return Component(
        ref=f"deb:{package.name}",
        kind="debian",
        name=package.name,
        version=package.version,
        licence=licences.from_debian_copyright(package.name, text),
        purl=f"pkg:deb/debian/{package.name}@{_purl_version(package.version)}?{qualifiers}",
        properties=[
            (
                "k8saudit-eks-py:source",
                f"Debian package {package.name} {package.version} ({package.architecture})",
            ),
            ("k8saudit-eks-py:debian-source-package", f"{package.source} {package.source_version}"),
        ],
    )


def pypi(dist_info: Path, wheel: Path | None) -> Component:
    """A distribution as shipped (its .dist-info in site-packages); `wheel`: the file it was unpacked from."""
    metadata_text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    fields = email.message_from_string(metadata_text)
    name, version = str(fields["Name"]).strip(), str(fields["Version"]).strip()
    key = normalize(name)
    if wheel is not None:
        source = f"PyPI wheel {wheel.name}"
        digest: str | None = hashlib.sha256(wheel.read_bytes()).hexdigest()
    else:
        source = f"PyPI distribution {name} {version}, copied from the packaging environment"
        digest = None
    return Component(
        ref=f"pypi:{key}",
        kind="pypi",
        name=name,
        version=version,
        licence=licences.from_wheel_metadata(metadata_text),
        purl=f"pkg:pypi/{key}@{_purl_version(version)}",
        sha256=digest,
        properties=[("k8saudit-eks-py:source", source)],
        embedded=[e for bom in own_sboms(dist_info) for e in embedded(bom)],
    )


def own_sboms(dist_info: Path) -> list[Path]:
    """The CycloneDX SBOMs a distribution ships about itself (PEP 770: .dist-info/sboms/)."""
    return sorted(p for p in (dist_info / "sboms").glob("*.json") if p.is_file())


def embedded(bom: Path) -> list[Embedded]:
    """The components a distribution's own CycloneDX SBOM lists as part of it (scope `excluded`: build
    tools, left out)."""
    try:
        doc = json.loads(bom.read_text(encoding="utf-8"))
    except ValueError:
        raise licences.LicenceError(f"{bom}: not JSON") from None
    if doc.get("bomFormat") != "CycloneDX":
        return []
    out = []
    for item in doc.get("components", []):
        if item.get("scope") == "excluded" or not item.get("purl"):
            continue
        entries = item.get("licenses", [])
        terms = [e.get("expression") or e.get("license", {}).get("id") for e in entries]
        if not terms or not all(terms):
            raise licences.LicenceError(f"{bom.name}: {item.get('name')} has no SPDX licence")
        licence = terms[0] if len(terms) == 1 else " AND ".join(f"({t})" for t in terms)
        out.append(Embedded(str(item["name"]), str(item.get("version", "")), str(item["purl"]), licence))
    return sorted(out, key=lambda e: e.purl)


def cpython(version: str, licence_file: Path, build: str) -> Component:
    """The interpreter running the packager (a CPython build of its own, not a distribution's package)."""
    text = licence_file.read_text(encoding="utf-8", errors="replace")
    if "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" not in text:
        raise licences.LicenceError(f"{licence_file} is not CPython's licence (PSF-2.0)")
    return Component(
        ref="cpython",
        kind="cpython",
        name="cpython",
        version=version,
        licence="PSF-2.0",
        purl=f"pkg:generic/cpython@{_purl_version(version)}",
        cpe=f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*",
        properties=[("k8saudit-eks-py:source", f"CPython {version} build: {build}")],
    )


def project(version: str, commit: str | None, modified: bool) -> Component:
    properties = [("k8saudit-eks-py:source", "this project's source tree")]
    properties.append(("k8saudit-eks-py:commit", commit or "unknown: not built from a git checkout"))
    if modified:
        properties.append(("k8saudit-eks-py:source-modified", "true: the checkout had uncommitted changes"))
    return Component(
        ref=PROJECT_REF,
        kind="project",
        name=PROJECT_REF,
        version=version,
        licence=PROJECT_LICENCE,
        purl=f"pkg:generic/{PROJECT_REF}@{_purl_version(version)}",
        properties=properties,
    )


def host_package(path: Path) -> tuple[DebPackage, Path] | None:
    """The Debian package installed on this machine that owns `path`, and its copyright file."""
    if shutil.which("dpkg-query") is None:
        return None
    candidates = [str(path)]
    if path.parts[1:2] == ("usr",):  # merged /usr: dpkg may have recorded /lib/...
        candidates.append(str(Path("/", *path.parts[2:])))
    for candidate in candidates:
        out = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            continue
        package = out.stdout.split(": ", 1)[0].split(",")[0].strip()  # "libssl3:amd64"
        control = subprocess.run(
            [
                "dpkg-query",
                "-W",
                "-f=Package: ${Package}\nVersion: ${Version}\nArchitecture: ${Architecture}\n"
                "Source: ${source:Package} (${source:Version})\n",
                package,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        info = parse_control(control.stdout)
        copyright_file = Path("/usr/share/doc") / info.name / "copyright"
        return (info, copyright_file) if copyright_file.is_file() else None
    return None
