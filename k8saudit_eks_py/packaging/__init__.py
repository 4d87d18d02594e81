"""Packaging for falcoctl: plugin tarball with a private CPython runtime, OCI artifact, index entry.

    build_package(out_dir) -> Path            k8saudit-eks-py-<version>-linux-<arch>.tar.gz (docs/artifact.md)
    check_package(tarball) -> TarballSize     falcoctl's layout rules; compressed/uncompressed sizes
    push_artifact([tarball], "registry/repo", version=...) -> PushResult
    index_entry(reference, home=..., maintainers=[...]) / upsert_index(path, entry)

Building needs patchelf (and strip, from binutils, to keep the size down); pushing and the index need the
`package` extra (oras, PyYAML).
"""

from __future__ import annotations

from k8saudit_eks_py.packaging.build import PackageError, build_package, check_package, project_version
from k8saudit_eks_py.packaging.elf import ElfError
from k8saudit_eks_py.packaging.index_yaml import index_entry, upsert_index
from k8saudit_eks_py.packaging.push import PushError, PushResult, push_artifact
from k8saudit_eks_py.packaging.reference import Reference, parse_reference
from k8saudit_eks_py.packaging.tarball import LayoutError, TarballSize

__all__ = [
    "ElfError",
    "LayoutError",
    "PackageError",
    "PushError",
    "PushResult",
    "Reference",
    "TarballSize",
    "build_package",
    "check_package",
    "index_entry",
    "parse_reference",
    "project_version",
    "push_artifact",
    "upsert_index",
]
