"""Issue 17 end to end: `package --platform all` builds the x86_64 and the cross-built aarch64 tarballs on
this x86_64 machine → one push publishes both under one tag → each is pulled by platform as falcoctl does →
the arm64 one runs emulated (qemu user mode) in an arm64 Debian root without Python, in the arm64 C test
host, and gives the same values as the x86_64 one run in the x86_64 root, and reads a local CloudWatch.

Everything downloaded (Debian's arm64 packages, the aarch64 wheels, the arm64 root) comes from the cache
that tests/setup-system fills: the build runs with --offline and the tests only talk to 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8saudit_eks_py.cli import main as cli_main
from k8saudit_eks_py.packaging import check_package, elf, project_version
from tests.support import emulation, rootfs, unpacked
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


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both tarballs from one `package --platform all` (uname -m → tarball)."""
    out = tmp_path_factory.mktemp("dist")
    assert cli_main(["package", "--platform", "all", "--offline", "--out", str(out)]) == 0
    built = {p.name.rsplit("-", 1)[1].removesuffix(".tar.gz"): p for p in out.glob("*.tar.gz")}
    assert sorted(built) == ["aarch64", "x86_64"]
    return built


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


def test_arm64_tarball_is_aarch64_within_budget_and_reproducible(
    tarballs: dict[str, Path], tmp_path: Path
) -> None:
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
    # Same inputs, same bytes: a second build on its own gives the identical tarball.
    again = tmp_path / "again"
    assert cli_main(["package", "--platform", "linux/arm64", "--offline", "--out", str(again)]) == 0
    assert (again / tarball.name).read_bytes() == tarball.read_bytes()


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
