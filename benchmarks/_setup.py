"""What every benchmark sets up: the checkout on sys.path, the dummy AWS environment, a local moto server,
and the real library in the C test host. A benchmark imports this first (`import _setup`: Python puts the
script's folder on sys.path), then anything from k8saudit_eks_py or tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from k8saudit_eks_py import library_path  # noqa: E402 - needs ROOT on sys.path
from tests.support.host import Host, build_host  # noqa: E402
from tests.support.moto_server import MotoServer, dummy_environ, moto_server  # noqa: E402

__all__ = ["ROOT", "c_host", "local_aws"]


def c_host(env: dict[str, str] | None = None) -> Host:
    """The installed library in the C test host (built on first use)."""
    return Host(build_host(), library_path(), env=env or {})


@contextmanager
def local_aws(*, clear_environ: bool = False, **moto_options: bool) -> Iterator[MotoServer]:
    """The dummy AWS environment (alone, with `clear_environ`: nothing of the caller's AWS set-up leaks in)
    and a moto server on 127.0.0.1 for the benchmark's lifetime."""
    if clear_environ:
        os.environ.clear()
    os.environ.update(dummy_environ())
    with moto_server(**moto_options) as server:
        yield server
