"""Names shared by the packager, the OCI pusher and the docs: one place for every spelling."""

from __future__ import annotations

import platform

from k8saudit_eks_py import LIBRARY_NAME, PLUGIN_NAME

DIST_NAME = "k8saudit-eks-py"
# Directory next to the .so holding the private CPython; the shim looks for exactly this name.
RUNTIME_DIR = "k8saudit-eks-py-runtime"
SO_NAME = LIBRARY_NAME
ARTIFACT_NAME = PLUGIN_NAME

# `uname -m` spelling (tarball names, like the official plugins) → OCI/Go spelling (platform.architecture).
_OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def machine() -> str:
    """This host's architecture as `uname -m` spells it (the only one we can package: we copy our own ELF)."""
    return platform.machine()


def oci_arch(uname_machine: str) -> str:
    try:
        return _OCI_ARCH[uname_machine]
    except KeyError:
        raise ValueError(f"unsupported architecture {uname_machine!r}: only x86_64 and aarch64") from None


def tarball_name(version: str, uname_machine: str) -> str:
    return f"{DIST_NAME}-{version}-linux-{uname_machine}.tar.gz"
