"""This replica's name in the lease table."""

from __future__ import annotations

import os
import socket


def default_replica_id() -> str:
    """$POD_NAME (set from the downward API in the Helm example) or the hostname, plus the pid: a restarted
    process is a new replica, so it never mistakes its predecessor's leases for its own."""
    base = os.environ.get("POD_NAME", "") or socket.gethostname() or "replica"
    return f"{base}-{os.getpid()}"
