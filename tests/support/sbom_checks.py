"""An auditor's reading of an artifact's CycloneDX SBOM, written apart from the packager: schema validation
with the CycloneDX reference library, which component each listed file belongs to, and the files and ELF
objects of an unpacked tarball."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

PROP = "k8saudit-eks-py:"


def validation_errors(data: bytes) -> list[str]:
    """Every schema error of a CycloneDX 1.6 JSON document (strict: no unknown fields)."""
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode(), all_errors=True)
    return [] if errors is None else [str(e).splitlines()[0] for e in errors]  # type: ignore[union-attr]


def all_components(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The subject (metadata.component, the project) first, then the listed components."""
    yield doc["metadata"]["component"]
    yield from doc["components"]


def prop(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == PROP + name]


def owners(doc: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """tarball path → bom-ref of the component whose evidence lists it; and the paths listed twice."""
    found: dict[str, str] = {}
    twice = []
    for component in all_components(doc):
        for occurrence in component.get("evidence", {}).get("occurrences", []):
            location = occurrence["location"]
            if location in found:
                twice.append(location)
            found[location] = component["bom-ref"]
    return found, twice


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def elf_files(root: Path) -> set[str]:
    out = set()
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.add(path.relative_to(root).as_posix())
    return out


def package_dirs(root: Path) -> set[str]:
    """Python package directories: those holding an __init__.py."""
    return {p.parent.relative_to(root).as_posix() for p in root.rglob("__init__.py")}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded
