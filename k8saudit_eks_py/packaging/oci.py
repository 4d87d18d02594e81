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
