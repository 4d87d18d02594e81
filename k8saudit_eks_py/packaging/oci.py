"""falcoctl's plugin artifact as OCI documents: config blob, per-platform image manifest, image index.

Pure functions over bytes; push.py sends them. Shapes follow falcoctl's pusher (oras Pack with
PackImageManifest and an explicit config): no artifactType, the config media type carries the type.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.cncf.falco.plugin.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.cncf.falco.plugin.layer.v1+tar.gz"
TITLE_ANNOTATION = "org.opencontainers.image.title"
# The SBOM is a referrer of each platform's manifest (OCI 1.1 `subject`), never part of the index falcoctl
# reads: an artifact of its own with an empty config, found through the Referrers API or, on registries
# without it, the fallback tag sha256-<hex of the subject's digest>.
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        out.update(extra)
        return out


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def config_blob(name: str, version: str, plugin_api_version: str) -> Blob:
    config = {
        "name": name,
        "version": version,
        "requirements": [{"name": "plugin_api_version", "version": plugin_api_version}],
    }
    return Blob(CONFIG_MEDIA_TYPE, _json(config))


def layer_blob(tarball_name: str, data: bytes) -> Blob:
    return Blob(LAYER_MEDIA_TYPE, data, ((TITLE_ANNOTATION, tarball_name),))


def image_manifest(config: Blob, layer: Blob) -> Blob:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    return Blob(MANIFEST_MEDIA_TYPE, _json(manifest))


def image_index(manifests: list[tuple[Blob, str, str]]) -> Blob:
    """Index over (manifest, os, architecture) entries, one per platform."""
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            manifest.descriptor(platform={"architecture": arch, "os": os_})
            for manifest, os_, arch in manifests
        ],
    }
    return Blob(INDEX_MEDIA_TYPE, _json(index))


def empty_config() -> Blob:
    return Blob(EMPTY_MEDIA_TYPE, b"{}")


def sbom_blob(file_name: str, data: bytes) -> Blob:
    return Blob(SBOM_MEDIA_TYPE, data, ((TITLE_ANNOTATION, file_name),))


def referrer_manifest(subject: Blob, layer: Blob) -> Blob:
    """An artifact manifest (artifactType = the layer's media type) that refers to `subject`."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": layer.media_type,
        "config": empty_config().descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
    }
    return Blob(MANIFEST_MEDIA_TYPE, _json(manifest))


def referrers_tag(digest: str) -> str:
    """The OCI referrers tag schema's fallback tag for a subject: sha256:abc... → sha256-abc..."""
    return digest.replace(":", "-", 1)


def referrers_index(referrers: list[Blob]) -> Blob:
    """What the fallback tag points at: an index of the referrers, each with its artifactType."""
    entries = []
    for referrer in referrers:
        artifact_type = json.loads(referrer.data).get("artifactType", "")
        entries.append(referrer.descriptor(artifactType=artifact_type))
    return Blob(
        INDEX_MEDIA_TYPE, _json({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries})
    )
