"""`push_artifact`: upload plugin tarballs to an OCI registry as falcoctl's plugin artifact, with oras-py."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8saudit_eks_py import REQUIRED_API_VERSION, install_hint
from k8saudit_eks_py.packaging import oci, sbom
from k8saudit_eks_py.packaging.naming import ARTIFACT_NAME, oci_arch
from k8saudit_eks_py.packaging.reference import Reference, parse_reference

_TARBALL = re.compile(r"^(?P<dist>.+)-(?P<version>[^-]+)-linux-(?P<machine>[^-]+)\.tar\.gz$")


class PushError(RuntimeError):
    pass


@dataclass(frozen=True)
class PushResult:
    reference: Reference  # registry/repository, no tag
    tags: tuple[str, ...]
    index_digest: str
    manifest_digests: dict[str, str]  # "linux/amd64" → digest
    sbom_digests: dict[str, str]  # "linux/amd64" → digest of the SBOM artifact referring to that manifest


def _registry(reference: Reference, insecure: bool, username: str | None, password: str | None) -> Any:
    try:
        import oras.provider
    except ImportError as e:  # the optional extra
        raise PushError(f"pushing needs the `package` extra: {install_hint('package')}") from e
    registry = oras.provider.Registry(hostname=reference.registry, insecure=insecure)
    if username and password:
        registry.auth.set_basic_auth(username, password)
    else:  # credentials saved by `docker login` / `oras login`, if any
        registry.auth.load_configs(registry.get_container(str(reference)))
    return registry


# An unreachable registry must fail in seconds, not after the OS's connect timeout (minutes).
PROBE_CONNECT_TIMEOUT = 5.0
PROBE_READ_TIMEOUT = 10.0


def probe_registry(registry: str, insecure: bool) -> None:
    """GET /v2/ once with short timeouts: a clear PushError for an unreachable host, a plain-HTTP registry
    reached over HTTPS, or a server that is not an OCI registry. 401 is fine (credentials come later)."""
    try:
        import requests
    except ImportError as e:  # installed with oras, the `package` extra
        raise PushError(f"pushing needs the `package` extra: {install_hint('package')}") from e
    scheme = "http" if insecure else "https"
    url = f"{scheme}://{registry}/v2/"
    try:
        response = requests.get(url, timeout=(PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT))
    except requests.exceptions.SSLError as exc:
        text = str(exc)
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "wrong version number" in text:
            raise PushError(
                f"{registry} answers plain HTTP, not HTTPS; add --insecure if it is meant to be a plain-HTTP "
                "registry (a local test registry)"
            ) from None
        raise PushError(f"TLS with {registry} failed: {_short(text)}") from None
    except requests.exceptions.Timeout:
        raise PushError(
            f"registry {registry} did not answer within {PROBE_CONNECT_TIMEOUT + PROBE_READ_TIMEOUT:g}s; "
            "check the host and port in --push and the network path to it"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise PushError(
            f"cannot reach registry {registry} ({_short(str(exc))}); check the host and port in --push"
        ) from None
    if response.status_code not in (200, 401):
        raise PushError(
            f"{url} answered HTTP {response.status_code}: {registry} does not look like an OCI registry"
        )


def _short(text: str) -> str:
    """The useful end of a urllib3 error chain ("... Connection refused')")."""
    reason = re.findall(r"\[Errno -?\d+\] [^'\")]+|Connection refused|Name or service not known", text)
    return reason[-1] if reason else text[:200]


def _check(response: Any, what: str) -> None:
    if response.status_code not in (200, 201, 202):
        raise PushError(f"{what}: HTTP {response.status_code} {response.text.strip()[:500]}")


def _upload_blob(registry: Any, container: Any, blob: oci.Blob) -> None:
    with tempfile.NamedTemporaryFile(prefix="k8saudit-eks-py-blob-") as f:
        f.write(blob.data)
        f.flush()
        _check(registry.upload_blob(f.name, container, blob.descriptor()), f"upload of {blob.digest}")


def _put_manifest(registry: Any, container: Any, blob: oci.Blob, ref: str) -> None:
    url = f"{registry.prefix}://{container.manifest_url(ref)}"
    headers = {"Content-Type": blob.media_type}
    _check(registry.do_request(url, "PUT", data=blob.data, headers=headers), f"manifest {ref}")


def platform_of(tarball: Path) -> tuple[str, str]:
    """("linux", OCI architecture) from a tarball named by build_package."""
    match = _TARBALL.match(tarball.name)
    if match is None:
        raise PushError(f"{tarball.name} is not named <name>-<version>-linux-<arch>.tar.gz")
    return "linux", oci_arch(match.group("machine"))


def push_artifact(
    tarballs: Sequence[Path],
    reference: str,
    *,
    version: str,
    tags: Sequence[str] | None = None,
    insecure: bool = False,
    username: str | None = None,
    password: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> PushResult:
    """Push one tarball per platform as one image index at REGISTRY/REPOSITORY, tags <version>, latest.

    A tag in `reference` replaces the default tags. `insecure` talks plain HTTP (a local registry).
    `progress` receives one line per step.
    """
    ref = parse_reference(reference)
    tags = tuple(tags) if tags else ((ref.tag,) if ref.tag else (version, "latest"))
    repo = Reference(ref.registry, ref.repository)
    for tarball in tarballs:  # local mistakes first, before any network call
        platform_of(tarball)
        if not tarball.is_file():
            raise PushError(f"{tarball}: no such file")
    progress(f"checking registry {ref.registry}")
    probe_registry(ref.registry, insecure)
    registry = _registry(repo, insecure, username, password)
    container = registry.get_container(str(repo))

    config = oci.config_blob(ARTIFACT_NAME, version, REQUIRED_API_VERSION)
    _upload_blob(registry, container, config)
    manifests: list[tuple[oci.Blob, str, str]] = []
    sboms: dict[str, str] = {}
    for tarball in tarballs:
        os_, arch = platform_of(tarball)
        data = tarball.read_bytes()
        progress(f"uploading {tarball.name} ({len(data) / 2**20:.1f} MiB) for {os_}/{arch}")
        layer = oci.layer_blob(tarball.name, data)
        _upload_blob(registry, container, layer)
        manifest = oci.image_manifest(config, layer)
        _put_manifest(registry, container, manifest, manifest.digest)
        manifests.append((manifest, os_, arch))
        sboms[f"{os_}/{arch}"] = _push_sbom(registry, container, tarball, manifest)
    if len({(o, a) for _, o, a in manifests}) != len(manifests):
        raise PushError("two tarballs for the same platform")
    index = oci.image_index(manifests)
    progress(f"tagging {repo} as {', '.join(tags)}")
    for tag in tags:
        _put_manifest(registry, container, index, tag)
    return PushResult(
        reference=repo,
        tags=tags,
        index_digest=index.digest,
        manifest_digests={f"{o}/{a}": m.digest for m, o, a in manifests},
        sbom_digests=sboms,
    )


def _push_sbom(registry: Any, container: Any, tarball: Path, manifest: oci.Blob) -> str:
    """The tarball's SBOM (with its digest) as a referrer of its platform manifest, also under the
    fallback tag for registries without the Referrers API. Returns the referrer's digest."""
    try:
        data = sbom.with_tarball(sbom.from_tarball(tarball), tarball)
    except sbom.SbomError as exc:
        raise PushError(str(exc)) from None
    layer = oci.sbom_blob(sbom.sbom_name(tarball.name), data)
    _upload_blob(registry, container, oci.empty_config())
    _upload_blob(registry, container, layer)
    referrer = oci.referrer_manifest(manifest, layer)
    _put_manifest(registry, container, referrer, referrer.digest)
    index = oci.referrers_index([referrer])
    _put_manifest(registry, container, index, oci.referrers_tag(manifest.digest))
    return referrer.digest
