"""Issue 6 end to end: package → push to a real registry on 127.0.0.1 → pull and unpack like falcoctl →
run the unpacked plugin in the C test host inside a Debian minbase root without Python, and compare with
the installed plugin run outside."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8saudit_eks_py import REQUIRED_API_VERSION
from k8saudit_eks_py.cli import main as cli_main
from k8saudit_eks_py.packaging import (
    check_package,
    index_entry,
    parse_reference,
    project_version,
    push_artifact,
    upsert_index,
)
from k8saudit_eks_py.packaging.trim import SERVICES
from tests.support import rootfs, unpacked
from tests.support.host import Host
from tests.support.moto_server import moto_server
from tests.support.registry import falcoctl_extract, local_registry, pull_plugin

pytestmark = pytest.mark.slow

REPOSITORY = "falco-plugins/plugin/k8saudit-eks-py"
SO = "libk8saudit-eks-py.so"
RUNTIME = "k8saudit-eks-py-runtime"
MAX_COMPRESSED = 40 * 1024 * 1024
REQUESTS = ("ka.auditid", "ka.verb", "ka.user.name", "ka.target.resource", "ka.target.namespace", "ka.uri")
DEV_EVENTS = "audit-events-dev.jsonl"


@pytest.fixture(scope="module")
def tarball(host: Host, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built by `k8saudit-eks-py package` from the installed library (the one the `host`
    fixture runs outside)."""
    out = tmp_path_factory.mktemp("dist")
    assert cli_main(["package", "--out", str(out), "--library", str(host.library)]) == 0
    (built,) = out.glob("k8saudit-eks-py-*-linux-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry.host


@pytest.fixture(scope="module")
def pushed(tarball: Path, registry_host: str) -> Any:
    return push_artifact([tarball], f"{registry_host}/{REPOSITORY}", version=project_version(), insecure=True)


@pytest.fixture(scope="module")
def plugins_dir(pushed: Any, registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pulled by tag and unpacked into an empty plugins directory the way falcoctl installs it."""
    pulled = pull_plugin(registry_host, REPOSITORY, "latest", "linux", "amd64")
    download = tmp_path_factory.mktemp("download") / pulled.filename
    download.write_bytes(pulled.layer)
    plugins = tmp_path_factory.mktemp("usr-share-falco") / "plugins"
    plugins.mkdir()
    falcoctl_extract(download, plugins)
    return plugins


@pytest.fixture(scope="module")
def root() -> Path:
    return rootfs.ensure_rootfs()


def _runpath(path: Path) -> str:
    return subprocess.run(
        ["patchelf", "--print-rpath", str(path)], capture_output=True, text=True
    ).stdout.strip()


# ---------------------------------------------------------------------------------------------- tarball


def test_tarball_name_layout_and_size(tarball: Path, plugins_dir: Path) -> None:
    assert tarball.name == f"k8saudit-eks-py-{project_version()}-linux-x86_64.tar.gz"
    size = check_package(tarball)
    print(
        f"\n{tarball.name}: {size.compressed / 2**20:.1f} MiB compressed, "
        f"{size.uncompressed / 2**20:.1f} MiB unpacked, {size.files} files"
    )
    assert size.compressed <= MAX_COMPRESSED
    assert sorted(p.name for p in plugins_dir.iterdir()) == [RUNTIME, SO]
    runtime = plugins_dir / RUNTIME / "lib"
    assert (runtime / "libpython3.11.so.1.0").is_file()
    # Only $ORIGIN-relative RUNPATHs: nothing may point back at the build machine.
    assert _runpath(plugins_dir / SO) == f"$ORIGIN/{RUNTIME}/lib"
    for elf in unpacked.elf_files(plugins_dir):
        assert all(p.startswith("$ORIGIN") for p in _runpath(elf).split(":") if p), elf
    stdlib = runtime / "python3.11"
    for dropped in (
        "test",
        "idlelib",
        "tkinter",
        "ensurepip",
        "lib2to3",
        "turtledemo",
        "distutils",
        "config-3.11-x86_64-linux-gnu",
    ):
        assert not (stdlib / dropped).exists(), dropped
    services = {p.name for p in (stdlib / "site-packages" / "botocore" / "data").iterdir() if p.is_dir()}
    assert services == set(SERVICES)
    assert not (stdlib / "site-packages" / "k8saudit_eks_py" / SO).exists()
    assert (stdlib / "site-packages" / "botocore" / "cacert.pem").is_file()


# ---------------------------------------------------------------------------------------------- registry


def test_registry_holds_a_falcoctl_plugin_artifact(tarball: Path, pushed: Any, registry_host: str) -> None:
    version = project_version()
    assert pushed.tags == (version, "latest")
    by_version = pull_plugin(registry_host, REPOSITORY, version)
    by_latest = pull_plugin(registry_host, REPOSITORY, "latest")
    assert by_version.index_digest == by_latest.index_digest == pushed.index_digest
    index = by_latest.index
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [{"architecture": "amd64", "os": "linux"}]
    manifest = by_latest.manifest
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.falco.plugin.config.v1+json"
    assert "artifactType" not in manifest
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.falco.plugin.layer.v1+tar.gz"
    assert layer["annotations"] == {"org.opencontainers.image.title": tarball.name}
    assert by_latest.config == {
        "name": "k8saudit-eks",
        "version": version,
        "requirements": [{"name": "plugin_api_version", "version": REQUIRED_API_VERSION}],
    }
    assert by_latest.filename == tarball.name
    assert by_latest.layer == tarball.read_bytes()
    with pytest.raises(ValueError, match="0 manifests for linux/arm64"):
        pull_plugin(registry_host, REPOSITORY, "latest", "linux", "arm64")


def test_package_command_pushes_and_writes_the_index_entry(
    tarball: Path, registry_host: str, tmp_path: Path
) -> None:
    index = tmp_path / "index.yaml"
    argv = ["package", str(tarball), "--push", f"{registry_host}/cli/plugin/k8saudit-eks-py", "--insecure"]
    argv += ["--index-file", str(index), "--home", "https://example.test/k8saudit-eks-py"]
    assert cli_main([*argv, "--maintainer", "Platform team <platform@example.test>"]) == 0
    pulled = pull_plugin(registry_host, "cli/plugin/k8saudit-eks-py", project_version(), "linux", "amd64")
    assert pulled.layer == tarball.read_bytes()
    (entry,) = yaml.safe_load(index.read_text())
    assert entry["repository"] == "cli/plugin/k8saudit-eks-py" and entry["type"] == "plugin"
    assert entry["maintainers"] == [{"email": "platform@example.test", "name": "Platform team"}]


def test_index_entry_names_the_pushed_repository(pushed: Any, tmp_path: Path) -> None:
    index = tmp_path / "index.yaml"
    maintainers = [{"name": "Platform team", "email": "platform@example.com"}]
    entry = index_entry(
        parse_reference(str(pushed.reference)),
        home="https://example.com/k8saudit-eks-py",
        maintainers=maintainers,
    )
    upsert_index(index, {"name": "other", "type": "rulesfile", "registry": "r", "repository": "x"})
    upsert_index(index, entry)
    upsert_index(index, entry)  # upsert by name: still one entry
    loaded = yaml.safe_load(index.read_text())
    assert [e["name"] for e in loaded] == ["other", "k8saudit-eks-py"]
    ours = loaded[1]
    assert ours["type"] == "plugin"
    assert f"{ours['registry']}/{ours['repository']}" == str(pushed.reference)
    assert set(ours) == {
        "name",
        "type",
        "registry",
        "repository",
        "description",
        "home",
        "keywords",
        "license",
        "maintainers",
        "sources",
    }
    assert ours["maintainers"] == maintainers


# ---------------------------------------------------------------------------------------------- no Python


def test_root_filesystem_has_no_python(root: Path) -> None:
    probe = rootfs.run(
        root, ["sh", "-c", "command -v python3 || command -v python || ls -d /usr/lib/python3*"]
    )
    assert probe.returncode != 0 and probe.stdout == "", probe.stdout
    assert not list(root.glob("usr/bin/python*")) and not list(root.glob("usr/lib/libpython*"))


def test_unpacked_plugin_runs_without_python_like_the_installed_one(
    root: Path, plugins_dir: Path, plughost_binary: Path, host: Host, reference_dir: Path, tmp_path: Path
) -> None:
    audit = b"\n".join((reference_dir / DEV_EVENTS).read_bytes().splitlines()[:200]) + b"\n"
    requests = ("\n".join(REQUESTS) + "\n").encode()
    stage = unpacked.stage(
        tmp_path, plugins_dir, plughost_binary, {"audit.jsonl": audit, "requests.txt": requests}
    )

    with rootfs.staged(root, stage) as (_, inside):
        chroot_info = rootfs.run(root, [f"{inside}/plughost", f"{inside}/plugins/{SO}", "info"])
        chroot_run = rootfs.run(
            root,
            [
                f"{inside}/plughost",
                f"{inside}/plugins/{SO}",
                "run",
                "--open",
                f"file://{inside}/audit.jsonl",
                "--requests",
                f"{inside}/requests.txt",
            ],
        )
    assert chroot_info.returncode == 0, chroot_info.stderr
    assert chroot_run.returncode == 0, chroot_run.stderr

    outside_info = host.run("info", check=True)
    outside_run = host.run(
        "run", "--open", f"file://{stage}/audit.jsonl", "--requests", f"{stage}/requests.txt", check=True
    )
    assert unpacked.lines(chroot_info.stdout) == outside_info.lines
    inside_events = unpacked.events(unpacked.lines(chroot_run.stdout))
    assert len(inside_events) == 200
    assert inside_events == outside_run.events
    assert unpacked.lines(chroot_run.stdout)[-1]["summary"]["events"] == outside_run.summary["events"] == 200


def test_unpacked_plugin_reads_cloudwatch_without_python(
    root: Path, plugins_dir: Path, plughost_binary: Path, reference_dir: Path, tmp_path: Path
) -> None:
    """The trimmed botocore builds its session and Logs client, signs and sends FilterLogEvents in the chroot.

    The chroot shares the network namespace, so the moto server on 127.0.0.1 is the CloudWatch it reads."""
    docs = (reference_dir / DEV_EVENTS).read_bytes().splitlines()[:20]
    requests = ("\n".join(REQUESTS) + "\n").encode()
    stage = unpacked.stage(tmp_path, plugins_dir, plughost_binary, {"requests.txt": requests})
    with moto_server() as server:
        config, env = unpacked.seed_demo_group(server.url, docs)
        with rootfs.staged(root, stage) as (_, inside):
            result = rootfs.run(
                root,
                [
                    f"{inside}/plughost",
                    f"{inside}/plugins/{SO}",
                    "run",
                    "--config",
                    config,
                    "--open",
                    "demo",
                    "--requests",
                    f"{inside}/requests.txt",
                    "--max-events",
                    str(len(docs)),
                    "--max-seconds",
                    "60",
                ],
                env=env,
            )
    assert result.returncode == 0, result.stderr
    events = unpacked.events(unpacked.lines(result.stdout))
    expected = [json.loads(d)["auditID"] for d in docs]
    assert [e["values"][0] for e in events] == [[a] for a in expected]
