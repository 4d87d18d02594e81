"""k8saudit-eks-py: a Falco k8s_audit source plugin for EKS audit logs in CloudWatch Logs."""

from __future__ import annotations

import sysconfig as _sysconfig
from importlib import metadata as _metadata
from importlib import resources as _resources
from pathlib import Path

# Identity reported to Falco. Name, ID and source equal the official k8saudit-eks so that the stock
# k8s_audit rules (required_plugin_versions) accept this plugin as a drop-in replacement.
PLUGIN_NAME = "k8saudit-eks"
PLUGIN_ID = 9
EVENT_SOURCE = "k8s_audit"
REQUIRED_API_VERSION = "3.0.0"
LIBRARY_NAME = "libk8saudit-eks-py.so"

try:
    __version__ = _metadata.version("k8saudit-eks-py")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


def install_hint(extra: str = "") -> str:
    """How to install this package (with an extra): it is installed from a checkout or a built wheel."""
    spec = f"[{extra}]" if extra else ""
    return (
        f"pip install '.{spec}' in the source checkout, or pip install "
        f"'k8saudit_eks_py-VERSION-....whl{spec}' for a wheel built with `pip wheel --no-deps -w dist .` "
        "(see docs/operating.md, Install)"
    )


def library_path() -> Path:
    """Absolute path of the plugin shared library installed with this package."""
    # A regular install puts the library inside the package; an editable install keeps the Python
    # sources in the checkout and the built library in the environment's site-packages.
    candidates = [Path(str(_resources.files(__name__).joinpath(LIBRARY_NAME)))]
    for scheme_path in ("platlib", "purelib"):
        candidates.append(Path(_sysconfig.get_paths()[scheme_path]) / __name__ / LIBRARY_NAME)
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise FileNotFoundError(
        f"{LIBRARY_NAME} is not installed (looked in {', '.join(str(c.parent) for c in candidates)}); "
        f"reinstall: {install_hint()}"
    )
