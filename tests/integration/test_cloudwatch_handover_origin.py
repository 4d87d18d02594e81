"""Poll mode with replicas: a log group handed over before its first holder committed anything is read
by the new holder from the origin the first take recorded in the lease, not from the new holder's own
now - shift (which lost the events put in between)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from k8saudit_eks_py.sources.cloudwatch import CloudWatchSource, open_cloudwatch
from tests.support.leases import new_table, owners, wait_for
from tests.support.moto_server import (
    FAST,
    MotoServer,
    audit_event,
    audit_ids,
    aws_env,  # noqa: F401
    create_group,
    logs_client,
    make_config,
    put_events,
)

STREAM = "kube-apiserver-audit-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CLUSTERS = ["ho-a", "ho-b", "ho-c"]


class Writer:
    """Puts events stamped with the current time into every cluster, ~15 per second each, until stopped."""

    def __init__(self, moto: MotoServer) -> None:
        self.client = logs_client(moto.url)
        self.put: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            now = int(time.time() * 1000)
            for cluster in CLUSTERS:
                events = [(now, audit_event(n + i, now)) for i in range(3)]
                put_events(self.client, f"/aws/eks/{cluster}/cluster", STREAM, events)
                self.put.extend(f"a-{n + i}" for i in range(3))
                n += 3
            self._stop.wait(0.2)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class Falco:
    """Asks one source for batches in a loop (as Falco does) once `running` is set."""

    def __init__(self, source: CloudWatchSource) -> None:
        self.source = source
        self.got: list[str] = []
        self.running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.running.wait(0.05):
                continue
            batch, _ = self.source.next_batch(128, 0.1)
            self.got.extend(audit_ids(batch))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.source.close()


def test_groups_handed_over_before_any_checkpoint_lose_nothing(
    moto: MotoServer, started: list[Falco]
) -> None:
    client = logs_client(moto.url)
    for cluster in CLUSTERS:
        create_group(client, f"/aws/eks/{cluster}/cluster", [STREAM])
    table = new_table(moto.url)
    params = ",".join(CLUSTERS)

    def config(replica: str) -> object:
        return make_config(
            moto.url,
            coordination_table=table,
            coordination_endpoint_url=moto.url,
            lease_duration=3,
            shift=0,
            replica_id=replica,
        )

    with Writer(moto) as writer:
        # The first replica takes every group while alone, and its Falco asks for nothing yet: nothing
        # it read is ever committed before it hands two of the groups over.
        started.append(Falco(open_cloudwatch(params, config("r0"), tuning=FAST)))  # type: ignore[arg-type]
        assert wait_for(lambda: sorted(owners(moto.url, table).values()) == ["r0"] * 3, 20)
        # shift 0: reading starts when r0 took the groups; skip the round of puts that may straddle it.
        start = len(writer.put) + 3 * len(CLUSTERS)
        assert wait_for(lambda: len(writer.put) >= start + 90, 20)  # events flow while only r0 holds them
        for replica in ("r1", "r2"):
            started.append(Falco(open_cloudwatch(params, config(replica), tuning=FAST)))  # type: ignore[arg-type]
            started[-1].running.set()
        assert wait_for(lambda: sorted(Counter(owners(moto.url, table).values()).values()) == [1, 1, 1], 30)
        started[0].running.set()
        assert wait_for(lambda: len(writer.put) >= start + 300, 30)
    put = set(writer.put[start:])

    def delivered() -> Counter[str]:
        return Counter(i for f in started for i in f.got)

    lost = lambda: sorted(put - set(delivered()), key=lambda i: int(i[2:]))  # noqa: E731
    assert wait_for(lambda: not lost(), 30), f"never delivered: {lost()}"
    repeated = {i: n for i, n in delivered().items() if n > 1}
    assert not repeated, f"{len(repeated)} events delivered twice"
