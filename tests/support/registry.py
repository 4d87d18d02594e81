"""A throwaway OCI registry on 127.0.0.1 (Debian's docker-registry) and a falcoctl-style puller/extractor.

The puller and extractor deliberately share no code with k8saudit_eks_py.packaging: they re-implement
what falcoctl does (pkg/oci/puller, internal/utils/extract.go) with urllib, so a test that pushes with
the packager and pulls with these checks the artifact, not the packager against itself.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PLUGIN_CONFIG = "application/vnd.cncf.falco.plugin.config.v1+json"
PLUGIN_LAYER = "application/vnd.cncf.falco.plugin.layer.v1+tar.gz"
TITLE = "org.opencontainers.image.title"


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # 127.0.0.1:PORT
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(storage: Path, port: int) -> str:
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


@contextmanager
def local_registry(workdir: Path, timeout_s: float = 30.0) -> Iterator[LocalRegistry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed: apt-get install docker-registry")
    port = _free_port()
    (workdir / "storage").mkdir(parents=True)
    config = workdir / "config.yml"
    config.write_text(_config(workdir / "storage", port))
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited ({process.returncode}): {log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer in {timeout_s}s: {log.read_text()}")
            time.sleep(0.1)
        yield LocalRegistry(f"127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- falcoctl-style pull -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pulled:
    index: dict[str, Any]
    index_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    filename: str  # the layer's title annotation: falcoctl's name for the downloaded file
    layer: bytes


def _get(url: str, accept: str | None = None) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read(), r.headers.get("Content-Type", "")


def _verified(data: bytes, digest: str) -> bytes:
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ValueError(f"digest mismatch: expected {digest}, got {actual}")
    return data


def pull_plugin(host: str, repository: str, tag: str, os_: str = "linux", arch: str = "amd64") -> Pulled:
    """Resolve REPOSITORY:TAG, pick the manifest for os_/arch from the index, fetch config and the layer."""
    base = f"http://{host}/v2/{repository}"
    raw_index, content_type = _get(f"{base}/manifests/{tag}", f"{INDEX}, {MANIFEST}")
    if content_type != INDEX:
        raise ValueError(f"{tag} resolves to {content_type}, not an image index")
    index = json.loads(raw_index)
    chosen = [
        m
        for m in index["manifests"]
        if m.get("platform", {}).get("os") == os_ and m.get("platform", {}).get("architecture") == arch
    ]
    if len(chosen) != 1:
        raise ValueError(f"{len(chosen)} manifests for {os_}/{arch} in {index}")
    raw_manifest, _ = _get(f"{base}/manifests/{chosen[0]['digest']}", MANIFEST)
    manifest = json.loads(_verified(raw_manifest, chosen[0]["digest"]))
    if manifest["config"]["mediaType"] != PLUGIN_CONFIG:
        raise ValueError(f"not a plugin artifact: config media type {manifest['config']['mediaType']}")
    if len(manifest["layers"]) != 1 or manifest["layers"][0]["mediaType"] != PLUGIN_LAYER:
        raise ValueError(f"expected exactly one plugin layer: {manifest['layers']}")
    layer_desc = manifest["layers"][0]
    config = json.loads(
        _verified(_get(f"{base}/blobs/{manifest['config']['digest']}")[0], manifest["config"]["digest"])
    )
    layer = _verified(_get(f"{base}/blobs/{layer_desc['digest']}")[0], layer_desc["digest"])
    return Pulled(
        index=index,
        index_digest="sha256:" + hashlib.sha256(raw_index).hexdigest(),
        manifest=manifest,
        config=config,
        filename=layer_desc["annotations"][TITLE],
        layer=layer,
    )


def falcoctl_extract(tarball: Path, dest: Path) -> list[Path]:
    """Extract like falcoctl's ExtractTarGz with no stripping: any '..' rejects the archive; directories are
    created with all parents, files with a plain create (their directory must already exist); anything but
    directories and regular files (links included) is refused."""
    created: list[Path] = []
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if ".." in member.name:
                raise ValueError("not allowed relative path in tar archive")
            target = dest / member.name
            if member.isdir():
                target.mkdir(mode=0o750, parents=True, exist_ok=True)
            elif member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                with open(target, "xb") as out:  # os.Create: no parent creation
                    shutil.copyfileobj(source, out)
                target.chmod(member.mode & 0o7777)
            else:
                raise ValueError(f"extractTarGz: unknown type {member.type!r} in {member.name}")
            created.append(target)
    return created


# ---- referrers (the SBOM), read the way `oras discover` does on a registry without the Referrers API ----


def referrers(host: str, repository: str, subject: str) -> list[dict[str, Any]]:
    """Descriptors of the artifacts that refer to manifest `subject`, from the fallback tag sha256-<hex>."""
    base = f"http://{host}/v2/{repository}"
    raw, content_type = _get(f"{base}/manifests/{subject.replace(':', '-', 1)}", INDEX)
    if content_type != INDEX:
        raise ValueError(f"the referrers tag of {subject} is {content_type}, not an image index")
    manifests: list[dict[str, Any]] = json.loads(raw)["manifests"]
    return manifests


def manifest(host: str, repository: str, digest: str) -> dict[str, Any]:
    raw, _ = _get(f"http://{host}/v2/{repository}/manifests/{digest}", MANIFEST)
    loaded: dict[str, Any] = json.loads(_verified(raw, digest))
    return loaded


def blob(host: str, repository: str, digest: str) -> bytes:
    return _verified(_get(f"http://{host}/v2/{repository}/blobs/{digest}")[0], digest)
