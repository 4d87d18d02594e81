"""Names shared by the packager, the OCI pusher and the docs: one place for every spelling."""

from __future__ import annotations

import platform

from k8saudit_eks_py import LIBRARY_NAME, PLUGIN_NAME

DIST_NAME = "k8saudit-eks-py"
# Directory next to the .so holding the private CPython; the shim looks for exactly this name.
RUNTIME_DIR = "k8saudit-eks-py-runtime"
SO_NAME = LIBRARY_NAME
ARTIFACT_NAME = PLUGIN_NAME

# `uname -m` spelling (tarball names, like the official plugins) → OCI/Go spelling (platform.architecture),
# which is also Debian's architecture name for both.
_OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# `--platform` values (falcoctl's spelling) → `uname -m`.
PLATFORMS = {f"linux/{oci}": uname for uname, oci in _OCI_ARCH.items()}
ALL_PLATFORMS = "all"


def machine() -> str:
    """This host's architecture as `uname -m` spells it."""
    return platform.machine()


def parse_platform(text: str) -> list[str]:
    """`uname -m` machines for a `--platform` value: linux/amd64, linux/arm64 or all (both)."""
    if text == ALL_PLATFORMS:
        return list(PLATFORMS.values())
    try:
        return [PLATFORMS[text]]
    except KeyError:
        choices = ", ".join([*PLATFORMS, ALL_PLATFORMS])
        raise ValueError(f"--platform {text!r} is not one of {choices}") from None


def oci_arch(uname_machine: str) -> str:
    try:
        return _OCI_ARCH[uname_machine]
    except KeyError:
        raise ValueError(f"unsupported architecture {uname_machine!r}: only x86_64 and aarch64") from None


def tarball_name(version: str, uname_machine: str) -> str:
    return f"{DIST_NAME}-{version}-linux-{uname_machine}.tar.gz"
