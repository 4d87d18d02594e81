"""Running an unpacked plugin artifact inside a Debian root, shared by the x86_64 and arm64 artifact tests:
the staging folder the root sees, the host's JSON lines, and a CloudWatch log group (moto on 127.0.0.1,
reachable from the root: it shares the network namespace) with the config and environment that read it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from tests.support.moto_server import REGION, create_group, logs_client, put_events

__all__ = ["AUDIT_STREAM", "DEMO_GROUP", "elf_files", "events", "lines", "seed_demo_group", "stage"]

DEMO_GROUP = "/aws/eks/demo/cluster"  # open_params "demo"
AUDIT_STREAM = "kube-apiserver-audit-0123456789abcdef"


def stage(tmp: Path, plugins: Path, plughost: Path, files: dict[str, bytes]) -> Path:
    """A folder holding plugins/, the C host and `files`, to be bind-mounted into a root."""
    folder = tmp / "stage"
    shutil.copytree(plugins, folder / "plugins")
    shutil.copy2(plughost, folder / "plughost")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def elf_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*.so*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def events(host_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in host_lines if "values" in line]


def seed_demo_group(url: str, docs: list[bytes]) -> tuple[str, dict[str, str]]:
    """`docs` put into the demo cluster's audit stream a second ago; the plugin config (JSON) and the
    environment (dummy credentials, no instance metadata) with which a host in a root reads them."""
    now_ms = int(time.time() * 1000)
    client = logs_client(url)
    create_group(client, DEMO_GROUP, [AUDIT_STREAM])
    put_events(
        client, DEMO_GROUP, AUDIT_STREAM, [(now_ms - 1000 + i, d.decode()) for i, d in enumerate(docs)]
    )
    config = json.dumps({"endpoint_url": url, "region": REGION, "shift": 600, "polling_interval": 1})
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": "/root",
    }
    return config, env
