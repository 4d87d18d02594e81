"""The falcoctl index entry (index.yaml) that lets users `falcoctl index add` and install by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k8saudit_eks_py.packaging.naming import DIST_NAME
from k8saudit_eks_py.packaging.reference import Reference

DESCRIPTION = (
    "Reads Kubernetes audit events for EKS clusters from CloudWatch Logs (k8s_audit source); "
    "a Python drop-in for k8saudit-eks with its own CPython runtime"
)
KEYWORDS = ("audit", "audit-log", "audit-events", "kubernetes", "eks", "cloudwatch", "aws", DIST_NAME)


def index_entry(
    reference: Reference,
    *,
    home: str,
    maintainers: list[dict[str, str]],
    name: str = DIST_NAME,
    license_: str = "Apache-2.0",
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """One entry of falcoctl's index format; `name` is what `falcoctl artifact install` takes.

    The default name is k8saudit-eks-py, not k8saudit-eks: falcoctl merges all configured indexes and the
    falcosecurity index already has k8saudit-eks.
    """
    return {
        "name": name,
        "type": "plugin",
        "registry": reference.registry,
        "repository": reference.repository,
        "description": DESCRIPTION,
        "home": home,
        "keywords": list(KEYWORDS),
        "license": license_,
        "maintainers": maintainers,
        "sources": sources if sources is not None else [home],
    }


def upsert_index(path: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Write `entry` into the index at `path` (created if missing), replacing one of the same name."""
    import yaml  # PyYAML, in the `package` extra

    entries: list[dict[str, Any]] = []
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or []
        if not isinstance(loaded, list):
            raise ValueError(f"{path} is not a falcoctl index (a YAML list)")
        entries = [e for e in loaded if e.get("name") != entry["name"]]
    entries.append(entry)
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True))
    return entries
