"""Packaging for falcoctl: plugin tarball with a private CPython runtime, OCI artifact, index entry.

    build_package(out_dir) -> Path            k8saudit-eks-py-<version>-linux-<arch>.tar.gz (docs/artifact.md)
    build_package(out_dir, platform_machine="aarch64")   the same, cross-built from Debian's arm64 packages
    download_cross_inputs("aarch64")          fill the cache a cross build reads (then offline=True works)
    check_package(tarball) -> TarballSize     falcoctl's layout rules; compressed/uncompressed sizes
    build_package also writes the tarball's CycloneDX SBOM, inside it and beside it (<name>.cdx.json)
    sbom.from_tarball(tarball) / sbom.with_tarball(doc, tarball)   the SBOM carried; plus the SHA-256
    push_artifact([tarball], "registry/repo", version=...) -> PushResult   (the SBOMs as referrers)
    index_entry(reference, home=..., maintainers=[...]) / upsert_index(path, entry)

Building needs patchelf (and strip, from binutils, to keep the size down); a cross build needs Debian's
cross compiler (gcc-aarch64-linux-gnu), apt-get/dpkg-deb and pip; pushing and the index need the
`package` extra (oras, PyYAML).
"""

from __future__ import annotations

from k8saudit_eks_py.packaging.build import (
    PackageError,
    build_package,
    check_package,
    download_cross_inputs,
    project_version,
)
from k8saudit_eks_py.packaging.cross import CrossError
from k8saudit_eks_py.packaging.debian import DebianError
from k8saudit_eks_py.packaging.elf import ElfError
from k8saudit_eks_py.packaging.index_yaml import index_entry, upsert_index
from k8saudit_eks_py.packaging.push import PushError, PushResult, push_artifact
from k8saudit_eks_py.packaging.reference import Reference, parse_reference
from k8saudit_eks_py.packaging.sbom import SbomError
from k8saudit_eks_py.packaging.tarball import LayoutError, TarballSize
from k8saudit_eks_py.packaging.wheels import WheelError

# What a cross build can fail with besides PackageError: each message says what to install or run.
CrossBuildError = (CrossError, DebianError, WheelError)

__all__ = [
    "CrossBuildError",
    "CrossError",
    "DebianError",
    "ElfError",
    "LayoutError",
    "PackageError",
    "PushError",
    "PushResult",
    "Reference",
    "SbomError",
    "TarballSize",
    "WheelError",
    "build_package",
    "check_package",
    "download_cross_inputs",
    "index_entry",
    "parse_reference",
    "project_version",
    "push_artifact",
    "upsert_index",
]
