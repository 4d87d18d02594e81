"""Put → next_batch latency, shared by the poll and stream benchmarks: a writer thread puts one audit event
every `every_s` seconds while the source is drained as Falco would; each event's time from its put to the
batch that carries it."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.support.moto_server import audit_event, audit_ids, put_events

__all__ = ["put_to_batch"]

FIRST_ID = 10_000_000  # audit ids the latency events use (a-10000000, ...): apart from any other events


def put_to_batch(
    source: Any, logs: Any, group: str, stream: str, count: int, every_s: float, wait_s: float
) -> list[float]:
    """Seconds from put to delivery of each of `count` events; `wait_s` is next_batch's wait. Closes
    `source`."""
    put_at: dict[str, float] = {}
    seen: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        for i in range(count):
            ts = int(time.time() * 1000)
            put_at[f"a-{FIRST_ID + i}"] = time.monotonic()
            put_events(logs, group, stream, [(ts, audit_event(FIRST_ID + i, ts))])
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + count * every_s + 30
    try:
        while len(seen) < count and time.monotonic() < deadline:
            batch, _ = source.next_batch(64, wait_s)
            now = time.monotonic()
            seen.extend(now - put_at[a] for a in audit_ids(batch) if a in put_at)
    finally:
        stop.set()
        thread.join()
        source.close()
    return seen
