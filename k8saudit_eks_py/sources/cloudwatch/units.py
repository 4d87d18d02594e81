"""What the CloudWatch source keeps of each log group (a work unit) and of the events it queues, the
internals tests shrink (Tuning), and the request and checkpoint key naming a log group."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from k8saudit_eks_py import log
from k8saudit_eks_py.config import PluginConfig
from k8saudit_eks_py.sources.cloudwatch.streams import GroupPositions, Read, ReadParams

__all__ = [
    "IncompleteResponse",
    "QueuedEvent",
    "Step",
    "Tuning",
    "Unit",
    "group_request",
    "log_line",
    "unit_key",
]


@dataclass(frozen=True, slots=True)
class Tuning:
    """Internals that are not user configuration; tests shrink them."""

    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    page_limit: int | None = None  # None: the service maximum (10,000 events or 1 MB)
    reads: ReadParams | None = None  # None: derived from lookback and polling_interval
    full_list_every_s: float = 300.0  # complete stream listing (the safety net for lastEventTimestamp)
    list_every_s: float = 60.0  # listing of the most recently written streams (streams arriving late)
    quiet_max_polls: int = 6  # a group whose polls find nothing is polled at most this much less often
    preflight_attempts: int = 3
    close_timeout_s: float = 10.0
    log_every_s: float = 30.0


class IncompleteResponse(Exception):
    """A 200 answer without its list (cut short on the way): not the end of the data."""


def group_request(log_group: str) -> dict[str, str]:
    """Arguments selecting a log group given by name or by ARN (cross-account)."""
    if log_group.startswith("arn:"):
        return {"logGroupIdentifier": log_group.removesuffix(":*")}
    return {"logGroupName": log_group}


def unit_key(config: PluginConfig, region: str, log_group: str) -> str:
    """The checkpoint key of a log group (the same across restarts and replicas)."""
    return f"{config.endpoint_url or 'aws'}|{region}|{log_group}"


def log_line(message: str, key: str | None = None) -> None:
    """Routine lines are info; keyed lines are the repeated kind (errors, retries): warning, rate-limited."""
    if key is None:
        log.info(message)
    else:
        log.warning(message, key=key)


class QueuedEvent(NamedTuple):
    ts_ns: int
    payload: bytes
    unit: str
    cluster: str
    audit_id: str | None
    stream: str
    event_id: str
    ts_ms: int
    ingestion_ms: int  # its PutLogEvents batch's ingestionTime (0: not in the answer)


@dataclass(slots=True)
class Step:
    """One paginated API call sequence: list recent streams, list all streams (the listing track), or a
    read of a poll (the poll track)."""

    kind: str  # "recent" | "all" | "read"
    read: Read | None = None
    token: str | None = None
    names: list[str] = field(default_factory=list)  # "all": names listed so far
    found: Counter[str] = field(default_factory=Counter)  # "read": new events per stream
    held: list[dict[str, Any]] = field(default_factory=list)  # sweep: events placed once it is read


@dataclass(slots=True)
class Unit:
    key: str
    cluster: str
    log_group: str
    request: dict[str, str]
    positions: GroupPositions
    steps: deque[Step] = field(default_factory=deque)  # the reads of the current poll
    listing: Step | None = None  # the stream listing in progress
    poll_ms: int = 0  # now_ms when the current poll began
    poll_began: float = 0.0  # monotonic, same moment
    due: float = 0.0  # next call of the poll track
    list_due: float = 0.0  # next call of the listing track
    failures: int = 0
    next_full_list: float = 0.0
    # monotonic start of the last poll that finished: the group is read up to it
    read_up_to: float = field(default_factory=time.monotonic)
    interval: float = 0.0  # seconds between polls now (longer while the group is quiet)
    poll_found: int = 0  # new events the current poll found
    first_delivered: bool = False
    removed: bool = False
    route: tuple[str, str] = ("", "")  # (account, Region) whose quotas its calls spend (routes.py)
