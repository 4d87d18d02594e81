"""Two Falco replicas (the real library in two C host processes) sharing a 4-shard stream through the lease
table, with steady traffic: every event once across their outputs, kill -9 of one, its shards moving to
the survivor within lease_duration + one renewal, nothing lost, repeats only from the killed batch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tests.support.host import Host
from tests.support.host_procs import HostProc, wait_past_marks
from tests.support.kinesis import Traffic, create_stream
from tests.support.leases import new_table, owners, wait_for
from tests.support.moto_server import MotoServer

LEASE_S = 3
FLUSHED = ("--flush", "--max-seconds", "120")  # batch lines: what the victim had in flight


def test_two_host_replicas_deliver_once_and_survive_a_kill_9(
    host: Host, moto: MotoServer, tmp_path: Path, started: list[HostProc]
) -> None:
    create_stream(moto.url, "ha", 4)
    table = new_table(moto.url)
    requests = tmp_path / "requests.txt"
    requests.write_text("ka.auditid\n")
    traffic = Traffic(moto.url, "ha", per_round=20, every_s=0.1)
    try:
        for name in ("r0", "r1"):
            config = {
                "kinesis_endpoint_url": moto.url,
                "coordination_endpoint_url": moto.url,
                "coordination_table": table,
                "lease_duration": LEASE_S,
                "replica_id": name,
                "region": "us-east-1",
                "shift": 600,
            }
            out = tmp_path / f"{name}.jsonl"
            started.append(HostProc(host, out, config, "kinesis://ha", requests, *FLUSHED))
        survivor, victim = started

        def per_owner() -> Counter[str]:
            return Counter(owners(moto.url, table).values())

        assert wait_for(lambda: per_owner() == Counter({"r0": 2, "r1": 2}), 30, step=0.2), per_owner()
        assert wait_for(lambda: len(victim.ids()) > 100 and len(survivor.ids()) > 100, 30)

        killed_at = time.monotonic()
        victim.kill9()
        assert wait_for(lambda: per_owner() == Counter({"r0": 4}), 3 * LEASE_S, step=0.05), per_owner()
        moved_after = time.monotonic() - killed_at
        before = len(survivor.ids())
        assert wait_for(lambda: len(survivor.ids()) > before + 100, 20)  # it reads all four shards
    finally:
        total = traffic.stop()
    everything = {f"a-{i}" for i in range(total)}
    assert wait_for(lambda: set(survivor.ids()) | set(victim.ids()) >= everything, 30), len(everything)
    # Read past a last record in every shard, twice: a repeat would show up there.
    assert wait_past_marks(traffic.mark, lambda: set(survivor.ids()), 30)
    everything = {f"a-{i}" for i in range(traffic.sent)}
    survivor.stop()

    # Not before the victim's lease could expire; within lease_duration + one renewal period (+ slack for
    # a loaded machine: the victim's last renewal was at most one period before the kill).
    assert LEASE_S - LEASE_S / 3 - 0.5 <= moved_after <= LEASE_S + LEASE_S / 3 + 1.0, moved_after
    seen = Counter(survivor.ids() + victim.ids())
    assert set(seen) == everything  # 0 lost
    repeated = {k for k, v in seen.items() if v > 1}
    assert all(seen[k] == 2 for k in repeated)
    assert repeated <= set(victim.last_batch())  # repeats only from the batch the victim had in flight
    assert Counter(survivor.ids()).most_common(1)[0][1] == 1  # the survivor itself never repeats
