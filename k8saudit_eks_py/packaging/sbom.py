"""The artifact's SBOM: CycloneDX 1.6 JSON, one per platform, the same bytes from the same inputs.

The copy inside the tarball (k8saudit-eks-py-runtime/sbom.cdx.json) cannot name the tarball's own digest;
the copy beside it (<tarball name without .tar.gz>.cdx.json), the one pushed to the registry and the one
`package --sbom` prints is that same document plus the tarball's SHA-256 (`with_tarball`).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from k8saudit_eks_py.packaging.components import Component
from k8saudit_eks_py.packaging.inventory import SBOM_PATH
from k8saudit_eks_py.packaging.naming import oci_arch
from k8saudit_eks_py.packaging.source import BuildSource

SPEC_VERSION = "1.6"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
_PROP = "k8saudit-eks-py:"


class SbomError(RuntimeError):
    pass


def sbom_name(tarball_name: str) -> str:
    """k8saudit-eks-py-0.12.100-linux-aarch64.tar.gz → k8saudit-eks-py-0.12.100-linux-aarch64.cdx.json"""
    return tarball_name.removesuffix(".tar.gz") + ".cdx.json"


def _properties(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def _component(component: Component) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "application" if component.kind == "project" else "library",
        "bom-ref": component.ref,
        "name": component.name,
        "version": component.version,
    }
    if component.kind == "debian":
        out["supplier"] = {"name": "Debian"}
    if component.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": component.sha256}]
    out["licenses"] = [{"expression": component.licence}]
    if component.cpe:
        out["cpe"] = component.cpe
    if component.purl:
        out["purl"] = component.purl
    if component.boms:
        out["externalReferences"] = [
            {"type": "bom", "url": path, "comment": f"{component.name}'s own SBOM, shipped with it"}
            for path in component.boms
        ]
    properties = list(component.properties)
    properties += [(f"{_PROP}licence-text", path) for path in component.licence_texts]
    out["properties"] = _properties(properties)
    if component.embedded:
        out["components"] = [
            {
                "type": "library",
                "bom-ref": f"{component.ref}/{part.purl}",
                "name": part.name,
                "version": part.version,
                "licenses": [{"expression": part.licence}],
                "purl": part.purl,
                "properties": _properties(
                    [(f"{_PROP}source", f"compiled into {component.name}: its own SBOM lists it")]
                ),
            }
            for part in component.embedded
        ]
    out["evidence"] = {"occurrences": [{"location": path} for path in component.files]}
    return out


def rebuild_command(source: BuildSource, platform: str, pins: list[str]) -> str:
    """The README's set-up on the same commit with the same distribution versions (`pins`), then the same
    build: Debian's packages come from the cache setup-system fills, the tarball's times from
    SOURCE_DATE_EPOCH."""
    checkout = f"git checkout {source.commit} && " if source.commit else ""
    pinned = " ".join(f"'{pin}'" for pin in pins)
    return (
        f"{checkout}tests/setup-system --build && python3.11 -m venv .venv && "
        f".venv/bin/pip install '.[test]' {pinned} && tests/setup-system && "
        f"SOURCE_DATE_EPOCH={source.source_date_epoch} "
        f".venv/bin/k8saudit-eks-py package --platform {platform} --offline"
    )


def document(
    components: list[Component], *, machine: str, tarball_name: str, source: BuildSource
) -> dict[str, Any]:
    """The SBOM of one platform's tarball (without its digest: see with_tarball). `components[0]` is the
    project: the SBOM's subject, with its version and commit."""
    project, *parts = components
    platform = f"linux/{oci_arch(machine)}"
    subject = _component(project)
    if source.commit:
        subject["pedigree"] = {"commits": [{"uid": source.commit}]}
    subject["description"] = f"falcoctl plugin artifact {tarball_name} for {platform}"
    timestamp = datetime.fromtimestamp(source.timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    pins = [f"{c.name}=={c.version}" for c in parts if c.kind == "pypi"]
    rebuild = rebuild_command(source, platform, pins)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "lifecycles": [{"phase": "build"}],
            "tools": {
                "components": [
                    {"type": "application", "name": "k8saudit-eks-py package", "version": project.version}
                ]
            },
            "component": subject,
            "properties": _properties(
                [
                    (f"{_PROP}platform", platform),
                    (f"{_PROP}tarball", tarball_name),
                    (f"{_PROP}source-date-epoch", str(source.source_date_epoch)),
                    (f"{_PROP}rebuild", rebuild),
                ]
            ),
        },
        "components": [_component(c) for c in parts],
        "dependencies": [
            {"ref": project.ref, "dependsOn": [c.ref for c in parts]},
            *({"ref": c.ref} for c in parts),
        ],
        "formulation": [
            {
                "bom-ref": "formulation",
                "workflows": [
                    {
                        "bom-ref": "build",
                        "uid": f"package-{machine}",
                        "name": f"k8saudit-eks-py package for {platform}",
                        "description": "Same commit, same SOURCE_DATE_EPOCH and the component versions "
                        "listed here (the Debian packages, the wheels, and on amd64 the same interpreter "
                        "build as the cpython component) give the same tarball bytes.",
                        "taskTypes": ["build"],
                        "steps": [{"name": "rebuild", "commands": [{"executed": rebuild}]}],
                    }
                ],
            }
        ],
    }


def dumps(doc: dict[str, Any]) -> bytes:
    """Serialized with a serial number derived from the content: the same document, the same bytes."""
    body = {k: v for k, v in doc.items() if k != "serialNumber"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    serial = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'k8saudit-eks-py-sbom:' + digest)}"
    ordered = {"bomFormat": body["bomFormat"], "specVersion": body["specVersion"], "serialNumber": serial}
    ordered.update((k, v) for k, v in body.items() if k not in ordered)
    return (json.dumps(ordered, indent=1, ensure_ascii=False) + "\n").encode()


def write(staging: Path, doc: dict[str, Any]) -> Path:
    path = staging / SBOM_PATH
    path.write_bytes(dumps(doc))
    return path


def from_tarball(tarball: Path) -> dict[str, Any]:
    """The SBOM a tarball carries."""
    try:
        with tarfile.open(tarball, mode="r:gz") as tar:
            member = tar.extractfile(SBOM_PATH)
            if member is None:
                raise KeyError(SBOM_PATH)
            loaded: dict[str, Any] = json.loads(member.read())
            return loaded
    except KeyError:
        raise SbomError(f"{tarball.name} carries no {SBOM_PATH}: build it again with this version") from None
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise SbomError(f"cannot read the SBOM of {tarball}: {exc}") from None


def with_tarball(doc: dict[str, Any], tarball: Path) -> bytes:
    """The SBOM that travels beside the tarball: the carried one plus the tarball's SHA-256."""
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    out = json.loads(json.dumps(doc))
    out.pop("serialNumber", None)
    subject = out["metadata"]["component"]
    subject["hashes"] = [{"alg": "SHA-256", "content": digest}]
    subject.setdefault("externalReferences", []).append(
        {
            "type": "distribution",
            "url": tarball.name,
            "comment": "the falcoctl plugin tarball this SBOM describes",
            "hashes": [{"alg": "SHA-256", "content": digest}],
        }
    )
    out["metadata"]["properties"].append({"name": f"{_PROP}tarball-sha256", "value": digest})
    return dumps(out)


def write_beside(tarball: Path) -> Path:
    """<tarball>.cdx.json next to the tarball, from the SBOM inside it."""
    path = tarball.with_name(sbom_name(tarball.name))
    path.write_bytes(with_tarball(from_tarball(tarball), tarball))
    return path
