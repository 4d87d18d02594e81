"""Issue 17 end to end: `package --platform all` builds the x86_64 and the cross-built aarch64 tarballs on
this x86_64 machine → one push publishes both under one tag → each is pulled by platform as falcoctl does →
the arm64 one runs emulated (qemu user mode) in an arm64 Debian root without Python, in the arm64 C test
host, and gives the same values as the x86_64 one run in the x86_64 root, and reads a local CloudWatch.

Everything downloaded (Debian's arm64 packages, the aarch64 wheels, the arm64 root) comes from the cache
that tests/setup-system fills: the build runs with --offline and the tests only talk to 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cyclonedx import spdx
from packageurl import PackageURL

from k8saudit_eks_py.cli import main as cli_main
from k8saudit_eks_py.packaging import check_package, debian, elf, licences, project_version
from tests.support import emulation, registry, rootfs, sbom_checks, unpacked
from tests.support.moto_server import moto_server
from tests.support.registry import falcoctl_extract, local_registry, pull_plugin

pytestmark = pytest.mark.slow

REPOSITORY = "falco-plugins/plugin/k8saudit-eks-py"
SO = "libk8saudit-eks-py.so"
RUNTIME = "k8saudit-eks-py-runtime"
MAX_COMPRESSED = 40 * 1024 * 1024  # the x86_64 tarball's budget (test_artifact.py)
EVENTS = 400  # the whole first reference set: a smoke test, emulation is slow
DEV_EVENTS = "audit-events-dev.jsonl"
GOLDEN = "golden-dev.jsonl"
ARCHES = ("amd64", "arm64")
ROOT = Path(__file__).resolve().parents[2]
MACHINES = {"x86_64": "amd64", "aarch64": "arm64"}
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both tarballs from one `package --platform all` (uname -m → tarball)."""
    out = tmp_path_factory.mktemp("dist")
    assert cli_main(["package", "--platform", "all", "--offline", "--out", str(out)]) == 0
    built = {p.name.rsplit("-", 1)[1].removesuffix(".tar.gz"): p for p in out.glob("*.tar.gz")}
    assert sorted(built) == ["aarch64", "x86_64"]
    return built


def _beside(tarball: Path) -> Path:
    return tarball.with_name(tarball.name.removesuffix(".tar.gz") + ".cdx.json")


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry.host


@pytest.fixture(scope="module")
def pushed(tarballs: dict[str, Path], registry_host: str) -> str:
    """Both tarballs pushed by the CLI as one artifact; returns the tag."""
    argv = ["package", str(tarballs["x86_64"]), str(tarballs["aarch64"])]
    assert cli_main([*argv, "--push", f"{registry_host}/{REPOSITORY}", "--insecure"]) == 0
    return project_version()


def _installed(registry_host: str, tag: str, arch: str, dest: Path) -> Path:
    """Pulled by platform and unpacked into an empty plugins directory, the way falcoctl installs it."""
    pulled = pull_plugin(registry_host, REPOSITORY, tag, "linux", arch)
    download = dest / pulled.filename
    download.write_bytes(pulled.layer)
    plugins = dest / "plugins"
    plugins.mkdir()
    falcoctl_extract(download, plugins)
    return plugins


@pytest.fixture(scope="module")
def arm64_plugins(pushed: str, registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _installed(registry_host, pushed, "arm64", tmp_path_factory.mktemp("arm64"))


@pytest.fixture(scope="module")
def amd64_plugins(pushed: str, registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _installed(registry_host, pushed, "amd64", tmp_path_factory.mktemp("amd64"))


@pytest.fixture(scope="module")
def arm64_root() -> Path:
    return rootfs.cached_rootfs(emulation.ARCH)


@pytest.fixture(scope="module")
def arm64_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return emulation.build_host(tmp_path_factory.mktemp("arm64-host"))


# ---------------------------------------------------------------------------------------------- tarball


def test_arm64_tarball_is_aarch64_and_within_budget(tarballs: dict[str, Path], tmp_path: Path) -> None:
    tarball = tarballs["aarch64"]
    assert tarball.name == f"k8saudit-eks-py-{project_version()}-linux-aarch64.tar.gz"
    for name, built in sorted(tarballs.items()):
        size = check_package(built)
        print(
            f"\n{name}: {size.compressed / 2**20:.1f} MiB compressed, "
            f"{size.uncompressed / 2**20:.1f} MiB unpacked, {size.files} files"
        )
        assert size.compressed <= MAX_COMPRESSED
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    falcoctl_extract(tarball, plugins)
    assert sorted(p.name for p in plugins.iterdir()) == [RUNTIME, SO]
    elves = unpacked.elf_files(plugins)
    assert len(elves) > 30  # libpython, the bundled libraries, lib-dynload, orjson, cffi
    assert {elf.machine(p) for p in elves} == {"aarch64"}
    assert elf.runpath(plugins / SO) == f"$ORIGIN/{RUNTIME}/lib"
    for path in elves:
        assert all(p.startswith("$ORIGIN") for p in elf.runpath(path).split(":") if p), path
    assert (plugins / RUNTIME / "licenses" / "CPython-LICENSE.txt").is_file()
    site = plugins / RUNTIME / "lib" / "python3.11" / "site-packages"
    assert [p.name for p in site.glob("orjson/orjson.cpython-311-aarch64-linux-gnu.so")]
    assert [p.name for p in site.glob("_cffi_backend.cpython-311-aarch64-linux-gnu.so")]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_a_second_build_gives_the_same_tarball_and_sbom(
    tarballs: dict[str, Path], machine: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Same inputs, same bytes, the SBOM included (no wall-clock time in it): `package --sbom` rebuilds on
    its own and prints an SBOM identical to the first build's, tarball digest included."""
    tarball = tarballs[machine]
    again = tmp_path / "again"
    platform = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}[machine]
    capsysbinary.readouterr()
    assert cli_main(["package", "--platform", platform, "--offline", "--out", str(again), "--sbom"]) == 0
    printed = capsysbinary.readouterr().out
    assert (again / tarball.name).read_bytes() == tarball.read_bytes()
    assert printed == _beside(tarball).read_bytes()
    assert printed == (again / _beside(tarball).name).read_bytes()


# ---------------------------------------------------------------------------------------------- registry


def test_one_tag_holds_both_platforms_and_a_pull_by_platform_gets_its_tarball(
    tarballs: dict[str, Path], pushed: str, registry_host: str
) -> None:
    by_arch = {
        arch: pull_plugin(registry_host, REPOSITORY, pushed, "linux", arch) for arch in ("amd64", "arm64")
    }
    latest = pull_plugin(registry_host, REPOSITORY, "latest", "linux", "arm64")
    assert by_arch["amd64"].index_digest == by_arch["arm64"].index_digest == latest.index_digest
    platforms = [m["platform"] for m in latest.index["manifests"]]
    assert platforms == [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    assert by_arch["amd64"].layer == tarballs["x86_64"].read_bytes()
    assert by_arch["amd64"].filename == tarballs["x86_64"].name
    assert by_arch["arm64"].layer == tarballs["aarch64"].read_bytes()
    assert by_arch["arm64"].filename == tarballs["aarch64"].name
    assert by_arch["amd64"].config == by_arch["arm64"].config
    with pytest.raises(ValueError, match="0 manifests for linux/s390x"):
        pull_plugin(registry_host, REPOSITORY, pushed, "linux", "s390x")


def test_each_platform_has_its_sbom_as_a_referrer_that_falcoctl_never_sees(
    tarballs: dict[str, Path], pushed: str, registry_host: str
) -> None:
    """The SBOM refers to its platform's manifest (OCI subject): the index falcoctl resolves still lists only
    the two plugin manifests, each with its one plugin layer, and a pull by platform gets the tarball."""
    index = pull_plugin(registry_host, REPOSITORY, pushed, "linux", "amd64").index
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    for machine, arch in MACHINES.items():
        pulled = pull_plugin(registry_host, REPOSITORY, pushed, "linux", arch)
        assert pulled.layer == tarballs[machine].read_bytes()
        (subject,) = [m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == arch]
        (referrer,) = registry.referrers(registry_host, REPOSITORY, subject)
        assert referrer["artifactType"] == SBOM_MEDIA_TYPE
        manifest = registry.manifest(registry_host, REPOSITORY, referrer["digest"])
        assert manifest["subject"]["digest"] == subject
        assert manifest["artifactType"] == SBOM_MEDIA_TYPE
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == SBOM_MEDIA_TYPE
        sbom = registry.blob(registry_host, REPOSITORY, layer["digest"])
        assert sbom == _beside(tarballs[machine]).read_bytes()
        # The SBOM names the very layer falcoctl downloads.
        [digest] = json.loads(sbom)["metadata"]["component"]["hashes"]
        assert f"sha256:{digest['content']}" == pulled.manifest["layers"][0]["digest"]


# ---------------------------------------------------------------------------------------------- SBOM


@pytest.fixture(scope="module")
def unpacked_tarballs(tarballs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each tarball unpacked as falcoctl does (uname -m → plugins directory)."""
    out = {}
    for machine, tarball in tarballs.items():
        plugins = tmp_path_factory.mktemp(f"sbom-{machine}") / "plugins"
        plugins.mkdir()
        falcoctl_extract(tarball, plugins)
        out[machine] = plugins
    return out


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_sbom_is_valid_cyclonedx_and_states_digest_commit_and_rebuild(
    tarballs: dict[str, Path], unpacked_tarballs: dict[str, Path], machine: str
) -> None:
    tarball = tarballs[machine]
    data = _beside(tarball).read_bytes()
    assert sbom_checks.validation_errors(data) == []
    broken = json.loads(data)
    broken["metadata"]["component"]["checksum"] = "not a CycloneDX field"
    assert sbom_checks.validation_errors(json.dumps(broken).encode())  # the validator does refuse
    inside_data = (unpacked_tarballs[machine] / RUNTIME / "sbom.cdx.json").read_bytes()
    assert sbom_checks.validation_errors(inside_data) == []
    doc, inside = json.loads(data), json.loads(inside_data)

    # The copy beside the tarball is the one inside plus the tarball's digest.
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    subject = doc["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert [r["hashes"] for r in subject["externalReferences"] if r["url"] == tarball.name] == [
        [{"alg": "SHA-256", "content": digest}]
    ]
    assert sbom_checks.prop(doc["metadata"], "tarball-sha256") == [digest]
    assert "hashes" not in inside["metadata"]["component"]
    assert inside["components"] == doc["components"]

    # The project is the subject, with its version and commit; the time is the commit's (or
    # SOURCE_DATE_EPOCH), never the wall clock; the rebuild command names the commit and the platform.
    arch = MACHINES[machine]
    assert (subject["name"], subject["version"]) == ("k8saudit-eks-py", project_version())
    head = _git("rev-parse", "HEAD")
    assert subject["pedigree"] == {"commits": [{"uid": head}]}
    assert sbom_checks.prop(subject, "commit") == [head]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or _git("log", "-1", "--format=%ct"))
    assert doc["metadata"]["timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    assert sbom_checks.prop(doc["metadata"], "platform") == [f"linux/{arch}"]
    [rebuild] = sbom_checks.prop(doc["metadata"], "rebuild")
    assert f"git checkout {head} " in rebuild and f"--platform linux/{arch} --offline" in rebuild
    assert "SOURCE_DATE_EPOCH=" in rebuild
    for component in doc["components"]:
        if component["bom-ref"].startswith("pypi:"):
            assert f"'{component['name']}=={component['version']}'" in rebuild
    [workflow] = doc["formulation"][0]["workflows"]
    assert workflow["steps"][0]["commands"] == [{"executed": rebuild}]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_shipped_file_belongs_to_one_component_and_every_component_is_shipped(
    tarballs: dict[str, Path], unpacked_tarballs: dict[str, Path], machine: str
) -> None:
    doc = sbom_checks.load(_beside(tarballs[machine]))
    root = unpacked_tarballs[machine]
    owners, twice = sbom_checks.owners(doc)
    assert twice == []
    shipped = sbom_checks.files(root)
    assert sorted(shipped - owners.keys()) == [], "files of the tarball no component accounts for"
    assert sorted(owners.keys() - shipped) == [], "files the SBOM lists that the tarball lacks"
    elves = sbom_checks.elf_files(root)
    assert len(elves) > 30 and elves <= owners.keys()
    packages = sbom_checks.package_dirs(root)
    site = f"{RUNTIME}/lib/python3.11/site-packages"
    assert {f"{site}/botocore", f"{site}/k8saudit_eks_py", f"{RUNTIME}/lib/python3.11/json"} <= packages
    for package in packages:
        assert f"{package}/__init__.py" in owners
        if package.startswith(
            site + "/"
        ):  # a distribution's package: all its modules are that distribution's
            modules = [f for f in shipped if f.rsplit("/", 1)[0] == package and f.endswith(".py")]
            assert len({owners[m] for m in modules}) == 1, package
    refs = [c["bom-ref"] for c in sbom_checks.all_components(doc)]
    assert len(refs) == len(set(refs))
    assert set(owners.values()) == set(refs), "components that ship no file"
    python = "cpython" if machine == "x86_64" else "deb:libpython3.11"
    assert owners[SO] == owners[f"{site}/k8saudit_eks_py/plugin.py"] == "k8saudit-eks-py"
    assert owners[f"{RUNTIME}/sbom.cdx.json"] == "k8saudit-eks-py"
    assert owners[f"{RUNTIME}/lib/libpython3.11.so.1.0"] == python
    assert owners[f"{RUNTIME}/lib/libssl.so.3"] == owners[f"{RUNTIME}/lib/libcrypto.so.3"] == "deb:libssl3"
    assert owners[f"{site}/orjson/orjson.cpython-311-{machine}-linux-gnu.so"] == "pypi:orjson"
    counts = {ref: sum(1 for r in owners.values() if r == ref) for ref in refs}
    print(f"\n{machine}: {len(refs)} components, {len(shipped)} files: {counts}")


def _shipped_distributions(site: Path) -> dict[str, str]:
    found = {}
    for metadata_file in site.glob("*.dist-info/METADATA"):
        header = metadata_file.read_text(encoding="utf-8").split("\n\n", 1)[0]
        fields = dict(line.split(": ", 1) for line in header.splitlines() if ": " in line)
        found[re.sub(r"[-_.]+", "-", fields["Name"]).lower()] = fields["Version"]
    return found


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_sbom_versions_are_those_shipped_and_their_sources(
    tarballs: dict[str, Path], unpacked_tarballs: dict[str, Path], machine: str
) -> None:
    doc = sbom_checks.load(_beside(tarballs[machine]))
    site = unpacked_tarballs[machine] / RUNTIME / "lib" / "python3.11" / "site-packages"
    purls = {c["bom-ref"]: PackageURL.from_string(c["purl"]) for c in sbom_checks.all_components(doc)}
    pypi = {p.name: p.version for ref, p in purls.items() if p.type == "pypi"}
    shipped = _shipped_distributions(site)
    assert shipped.pop("k8saudit-eks-py") == project_version()
    assert pypi == shipped
    assert {"boto3", "botocore", "orjson", "cffi"} <= pypi.keys()
    debs = {p.name: p for p in purls.values() if p.type == "deb"}
    assert {"libssl3", "zlib1g", "libffi8"} <= debs.keys()
    for purl in debs.values():
        assert purl.qualifiers["arch"] == MACHINES[machine] and purl.qualifiers["distro"] == "debian-12"
    # Every PyPI component names the wheel it came in by its SHA-256: a wheel cached by --download-only
    # (tests/setup-system), the target's build for the compiled ones.
    cached = {
        hashlib.sha256(w.read_bytes()).hexdigest(): w.name for w in debian.cache_root().glob("*/wheels/*.whl")
    }
    for component in doc["components"]:
        if component["bom-ref"].startswith("pypi:"):
            assert "hashes" in component, (
                f"{component['name']}: no wheel hash (tests/setup-system caches them)"
            )
            [digest] = component["hashes"]
            wheel = cached[digest["content"]]
            assert wheel.startswith(f"{component['name'].replace('-', '_')}-{component['version']}-"), wheel
            assert wheel.endswith("-any.whl") or machine in wheel, wheel
            assert any(wheel in p["value"] for p in component["properties"]), wheel
    if machine == "aarch64":
        # Debian's arm64 packages, as cached by --download-only.
        cache = debian.cache_dir("arm64")
        files = json.loads((cache / "debs" / "debs.json").read_text())
        for name, purl in debs.items():
            control = subprocess.run(
                ["dpkg-deb", "-f", str(cache / "debs" / files[name]), "Version"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert purl.version == control.stdout.strip(), name
        assert {"libpython3.11", "libpython3.11-minimal", "libpython3.11-stdlib"} <= debs.keys()
    else:
        for name, purl in debs.items():
            installed = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", f"{name}:amd64"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert purl.version == installed.stdout, name
        (cpython,) = [c for c in doc["components"] if c["bom-ref"] == "cpython"]
        assert cpython["version"] == platform.python_version()
        assert cpython["cpe"] == f"cpe:2.3:a:python:python:{platform.python_version()}:*:*:*:*:*:*:*"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_component_licence_is_known_allowed_and_its_text_shipped(
    tarballs: dict[str, Path], unpacked_tarballs: dict[str, Path], machine: str
) -> None:
    doc = sbom_checks.load(_beside(tarballs[machine]))
    root = unpacked_tarballs[machine]
    owners, _ = sbom_checks.owners(doc)
    seen = {}
    for component in sbom_checks.all_components(doc):
        ref = component["bom-ref"]
        [entry] = component["licenses"]
        expression = entry["expression"]
        for identifier in licences.identifiers(expression):
            assert spdx.is_supported_id(identifier) or identifier == "LicenseRef-public-domain", (
                ref,
                identifier,
            )
        assert licences.compatible(expression), (ref, expression)
        texts = sbom_checks.prop(component, "licence-text")
        assert texts, f"{ref} ships no licence text"
        assert all(t in owners and (root / t).stat().st_size > 0 for t in texts), (ref, texts)
        assert max((root / t).stat().st_size for t in texts) > 500, (ref, texts)  # a licence, not a notice
        seen[ref] = expression
    # What orjson compiles in (its Rust crates), from the SBOM its wheel ships: licences checked the same way.
    (orjson,) = [c for c in doc["components"] if c["name"] == "orjson"]
    crates = orjson["components"]
    assert {"pyo3-ffi", "simdutf8"} <= {c["name"] for c in crates}
    assert {PackageURL.from_string(c["purl"]).type for c in crates} == {"cargo"}
    for crate in crates:
        [entry] = crate["licenses"]
        assert licences.compatible(entry["expression"]), (crate["name"], entry)
        assert all(spdx.is_supported_id(i) for i in licences.identifiers(entry["expression"])), crate["name"]
    [own] = orjson["externalReferences"]
    assert own["type"] == "bom" and own["url"] in owners and owners[own["url"]] == "pypi:orjson"
    licence_dir = root / RUNTIME / "licenses"
    assert (licence_dir / "k8saudit-eks-py-LICENSE.txt").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert (
        b"PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in (licence_dir / "CPython-LICENSE.txt").read_bytes()
    )
    assert seen["k8saudit-eks-py"] == "Apache-2.0" and seen["deb:libssl3"] == "Apache-2.0"
    print(f"\n{machine} licences: {sorted(set(seen.values()))}")


# ---------------------------------------------------------------------------------------------- emulated


def test_arm64_root_and_host_are_aarch64_and_the_root_lacks_python(
    arm64_root: Path, arm64_host: Path
) -> None:
    assert elf.machine(arm64_root / "usr" / "bin" / "ls") == "aarch64"
    assert elf.machine(arm64_host) == "aarch64"
    assert not list(arm64_root.glob("usr/bin/python*")) and not list(arm64_root.glob("usr/lib/python3*"))
    assert not list(arm64_root.glob("usr/lib/*/libpython*"))


def test_arm64_artifact_gives_the_x86_64_values_for_every_field_request(
    arm64_root: Path,
    arm64_plugins: Path,
    arm64_host: Path,
    amd64_plugins: Path,
    plughost_binary: Path,
    reference_dir: Path,
    tmp_path: Path,
) -> None:
    """Same events, same 117 requests (field-requests.txt) through init/open/next_batch/extract: the arm64
    artifact emulated in the arm64 root equals the x86_64 artifact in the x86_64 root, and the Go plugin."""
    audit = b"\n".join((reference_dir / DEV_EVENTS).read_bytes().splitlines()[:EVENTS]) + b"\n"
    requests = (reference_dir / "field-requests.txt").read_bytes()
    files = {"audit.jsonl": audit, "requests.txt": requests}
    run = ["run", "--open", "file://{}/audit.jsonl", "--requests", "{}/requests.txt"]

    arm_stage = unpacked.stage(tmp_path / "arm64", arm64_plugins, arm64_host, files)
    emulation.stage_emulator(arm_stage)
    started = time.monotonic()
    with rootfs.staged(arm64_root, arm_stage) as (_, inside):
        argv = [f"{inside}/plughost", f"{inside}/plugins/{SO}"]
        arm_info = emulation.run(arm64_root, inside, [*argv, "info"])
        arm_run = emulation.run(arm64_root, inside, [*argv, *(a.format(inside) for a in run)])
    print(f"\narm64 under emulation: info + {EVENTS} events in {time.monotonic() - started:.1f}s")
    assert arm_info.returncode == 0, arm_info.stderr
    assert arm_run.returncode == 0, arm_run.stderr

    amd_stage = unpacked.stage(tmp_path / "amd64", amd64_plugins, plughost_binary, files)
    amd64_root = rootfs.ensure_rootfs()
    with rootfs.staged(amd64_root, amd_stage) as (_, inside):
        argv = [f"{inside}/plughost", f"{inside}/plugins/{SO}"]
        amd_info = rootfs.run(amd64_root, [*argv, "info"])
        amd_run = rootfs.run(amd64_root, [*argv, *(a.format(inside) for a in run)])
    assert amd_info.returncode == 0 and amd_run.returncode == 0, amd_info.stderr + amd_run.stderr

    assert unpacked.lines(arm_info.stdout) == unpacked.lines(amd_info.stdout)
    request_names = [r for r in requests.decode().splitlines() if r]
    arm_events, amd_events = (
        unpacked.events(unpacked.lines(arm_run.stdout)),
        unpacked.events(unpacked.lines(amd_run.stdout)),
    )
    assert len(arm_events) == len(amd_events) == EVENTS
    golden = [json.loads(line) for line in (reference_dir / GOLDEN).read_text().splitlines()][:EVENTS]
    compared, differences, from_go = 0, [], []
    for arm, amd, expected in zip(arm_events, amd_events, golden, strict=True):
        for request, arm_value, amd_value in zip(request_names, arm["values"], amd["values"], strict=True):
            compared += 1
            if arm_value != amd_value:
                differences.append((arm["n"], request, arm_value, amd_value))
            if arm_value != expected[request]:
                from_go.append((expected["n"], request, arm_value, expected[request]))
    print(f"field requests compared: {compared}, arm64 vs x86_64 differences: {len(differences)}")
    assert compared == EVENTS * len(request_names) == EVENTS * 117
    assert not differences, f"{len(differences)} differences, first: {differences[:5]}"
    assert not from_go, f"{len(from_go)} differences from the Go plugin, first: {from_go[:5]}"
    assert unpacked.lines(arm_run.stdout)[-1]["summary"]["extract_failures"] == 0


def test_arm64_artifact_reads_cloudwatch_under_emulation(
    arm64_root: Path, arm64_plugins: Path, arm64_host: Path, reference_dir: Path, tmp_path: Path
) -> None:
    """botocore (trimmed) builds its session and Logs client, signs and sends FilterLogEvents, emulated."""
    docs = (reference_dir / DEV_EVENTS).read_bytes().splitlines()[:20]
    stage = unpacked.stage(tmp_path, arm64_plugins, arm64_host, {"requests.txt": b"ka.auditid\nka.verb\n"})
    emulation.stage_emulator(stage)
    with moto_server() as server:
        config, env = unpacked.seed_demo_group(server.url, docs)
        with rootfs.staged(arm64_root, stage) as (_, inside):
            argv = [
                f"{inside}/plughost",
                f"{inside}/plugins/{SO}",
                "run",
                "--config",
                config,
                "--open",
                "demo",
            ]
            argv += ["--requests", f"{inside}/requests.txt", "--max-events", str(len(docs))]
            result = emulation.run(arm64_root, inside, [*argv, "--max-seconds", "120"], env=env)
    assert result.returncode == 0, result.stderr
    events = unpacked.events(unpacked.lines(result.stdout))
    assert [e["values"][0] for e in events] == [[json.loads(d)["auditID"]] for d in docs]
