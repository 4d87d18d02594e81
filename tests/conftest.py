"""Shared fixtures: the installed plugin library, the C test host, and their sanitizer builds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8saudit_eks_py import library_path
from tests.support.host import Host, build_host, build_sanitized
from tests.support.moto_server import moto  # noqa: F401 - a local CloudWatch Logs, one per module
from tests.support.reference import unpack


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """What a test starts in the background (replicas, hosts, sources with a `stop()`), stopped at its end
    even when the test fails."""
    running: list[Any] = []
    yield running
    for item in running:
        item.stop()


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/reference unpacked (the C host reads plain files)."""
    return unpack(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def plughost_binary() -> Path:
    return build_host()


@pytest.fixture(scope="session")
def host(plughost_binary: Path) -> Host:
    """The installed libk8saudit-eks-py.so in the C test host, found the way Falco would load it."""
    return Host(plughost_binary, library_path())


@pytest.fixture(scope="session")
def asan_host() -> Host:
    """Shim and host built with ASan/UBSan. The library sits in a build folder, so it is pointed at this
    environment's Python with the documented override variable."""
    binary, library = build_sanitized()
    return Host(
        binary,
        library,
        env={
            "K8SAUDIT_EKS_PY_PYTHON": sys.executable,
            # CPython keeps its interned objects for the process lifetime: not leaks of ours.
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        },
    )
