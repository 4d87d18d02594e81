"""`k8saudit-eks-py package` mistakes: one line, a hint, the right exit status, and no waiting on a registry
that cannot answer. Real processes, a real plain-HTTP registry (docker-registry) and real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import local_registry

ROOT = Path(__file__).resolve().parents[2]
TARBALL = "k8saudit-eks-py-0.12.100-linux-x86_64.tar.gz"


def package(
    *args: str, path: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "HOME": str(cwd or ROOT), "PATH": path or "/usr/bin:/bin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "k8saudit_eks_py", "package", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("[package] ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]


@pytest.fixture
def fake_tarball(tmp_path: Path) -> Path:
    path = tmp_path / TARBALL
    path.write_bytes(b"not really a tarball")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--library", "/etc/passwd"], "--library /etc/passwd is not a shared library"),
        (["--library", "/nonexistent/lib.so"], "--library /nonexistent/lib.so: no such file"),
        (["x.tar.gz"], "TARBALLs are only read by --push"),
        (["--index-file", "index.yaml"], "--index-file records a pushed artifact: add --push"),
        (["--push", "not-a-reference"], "is not REGISTRY/REPOSITORY[:TAG]"),
        (
            ["--push", "127.0.0.1:1/x/y", "--maintainer", "nobody"],
            '--maintainer must look like "Name <email>"',
        ),
        (
            ["--platform", "linux/s390x"],
            "--platform 'linux/s390x' is not one of linux/amd64, linux/arm64, all",
        ),
        (["--platform", "all", "--library", "/etc/passwd"], "--library is one platform's .so"),
        (["x.tar.gz", "--push", "127.0.0.1:1/x/y", "--platform", "all"], "--platform chooses what to build"),
        (["--download-only"], "--download-only is for another platform's build: add --platform linux/arm64"),
        (["--download-only", "--platform", "all", "--offline"], "--download-only only fills the cache"),
        (["--sbom", "--platform", "all"], "--sbom prints one SBOM: give one TARBALL, or --platform"),
        (["a.tar.gz", "b.tar.gz", "--sbom"], "--sbom prints one SBOM: give one TARBALL"),
        (["--sbom", "--push", "127.0.0.1:1/x/y"], "--sbom prints one SBOM: drop --push"),
    ],
)
def test_usage_mistakes_fail_fast_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    start = time.monotonic()
    proc = package(*args, "--out", str(tmp_path / "dist"), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in _one_error_line(proc)
    assert not (tmp_path / "dist").exists()  # nothing was built
    assert time.monotonic() - start < 30


def test_missing_patchelf_is_one_line_with_the_install_hint(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = package("--out", str(tmp_path / "dist"), path=str(empty), cwd=tmp_path)
    assert proc.returncode == 2
    assert "apt-get install patchelf" in _one_error_line(proc)


def _bin_with(tmp_path: Path, tools: dict[str, str]) -> str:
    """A PATH of one folder holding only `tools` (name → link target, or a script when it starts with #!)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in tools.items():
        if target.startswith("#!"):
            (folder / name).write_text(target)
            (folder / name).chmod(0o755)
        else:
            (folder / name).symlink_to(target)
    return str(folder)


def test_missing_cross_compiler_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    path = _bin_with(tmp_path, {"patchelf": "/usr/bin/patchelf", "cmake": "/usr/bin/cmake"})
    proc = package("--platform", "linux/arm64", "--out", str(tmp_path / "dist"), path=path, cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "needs aarch64-linux-gnu-gcc: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross" in line
    assert not (tmp_path / "dist").exists()


def test_cross_compiler_without_its_c_library_is_one_line(tmp_path: Path) -> None:
    # gcc prints the name back when it has no such start file: what it does without libc6-dev-arm64-cross.
    fake_gcc = '#!/bin/sh\necho "${1#-print-file-name=}"\n'
    tools = {"patchelf": "/usr/bin/patchelf", "cmake": "/usr/bin/cmake", "aarch64-linux-gnu-gcc": fake_gcc}
    proc = package("--platform", "all", path=_bin_with(tmp_path, tools), cwd=tmp_path)
    assert proc.returncode == 2
    assert "has no aarch64 C library: apt-get install gcc-aarch64-linux-gnu" in _one_error_line(proc)


def test_offline_cross_build_without_the_cache_says_how_to_fill_it(tmp_path: Path) -> None:
    proc = package(
        "--platform",
        "linux/arm64",
        "--offline",
        "--out",
        str(tmp_path / "dist"),
        cwd=tmp_path,
        env={"K8SAUDIT_EKS_PY_CACHE": str(tmp_path / "empty-cache")},
    )
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert f"Debian's arm64 packages are not cached in {tmp_path / 'empty-cache'}" in line
    assert "--platform linux/arm64 --download-only" in line
    assert not list((tmp_path / "dist").glob("*.tar.gz"))


def test_local_tarball_is_checked_before_the_registry(tmp_path: Path) -> None:
    with socket.socket() as listener:  # a registry that would hang: it never accepts
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        proc = package(str(tmp_path / TARBALL), "--push", f"{host}/x/y", "--insecure", cwd=tmp_path)
        assert time.monotonic() - start < 10
    assert proc.returncode == 2
    assert f"{tmp_path / TARBALL}: no such file" in _one_error_line(proc)


def test_unreachable_registry_fails_in_seconds(fake_tarball: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connection refused
        proc = package(str(fake_tarball), "--push", f"127.0.0.1:{port}/x/y", "--insecure", cwd=tmp_path)
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert f"cannot reach registry 127.0.0.1:{port}" in line and "--push" in line
    assert f"[package] checking registry 127.0.0.1:{port}" in proc.stderr


def test_silent_registry_times_out_quickly(fake_tarball: Path, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes connections; nobody ever answers
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        proc = package(str(fake_tarball), "--push", f"{host}/x/y", "--insecure", cwd=tmp_path)
        elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert f"registry {host} did not answer within 15s" in _one_error_line(proc)
    assert elapsed < 40


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry.host


def test_plain_http_registry_without_insecure_hints_at_it(
    fake_tarball: Path, tmp_path: Path, plain_registry: str
) -> None:
    proc = package(str(fake_tarball), "--push", f"{plain_registry}/x/y", cwd=tmp_path)
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert "answers plain HTTP, not HTTPS; add --insecure" in line
    assert "WRONG_VERSION_NUMBER" not in line


def test_sbom_of_a_file_that_is_not_a_tarball_is_one_line(fake_tarball: Path, tmp_path: Path) -> None:
    proc = package("--sbom", str(fake_tarball), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"cannot read the SBOM of {fake_tarball}" in _one_error_line(proc)
    assert proc.stdout == ""


def test_sbom_of_a_tarball_built_without_one_says_so(tmp_path: Path) -> None:
    library = tmp_path / "libk8saudit-eks-py.so"
    library.write_bytes(b"\x7fELF")
    tarball = tmp_path / TARBALL
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(library, arcname=library.name)
    proc = package("--sbom", str(tarball), cwd=tmp_path)
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert f"{TARBALL} carries no k8saudit-eks-py-runtime/sbom.cdx.json: build it again" in line


def test_a_source_date_epoch_that_is_not_a_number_is_one_line(tmp_path: Path) -> None:
    proc = package("--out", str(tmp_path / "dist"), cwd=tmp_path, env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert proc.returncode == 1
    assert "SOURCE_DATE_EPOCH='yesterday' is not a number of seconds" in _one_error_line(proc)
    assert not list((tmp_path / "dist").glob("*.tar.gz"))
