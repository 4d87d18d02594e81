"""A log group's read positions (streams.py with its ledger and trailing sweep) against a CloudWatch model
that makes each PutLogEvents batch searchable after a seeded delay (ingested on time but searchable late,
or ingested late), and some single events too, so that a stream's older events turn up after newer ones;
with restarts from the checkpoint at seeded instants. Over many seeds: every event visible within
`lookback` of its timestamp is delivered exactly once (no restart repeats one, late batches larger than
the sketches' capacity included); one visible later is never delivered twice."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from k8saudit_eks_py.sources.cloudwatch.streams import GroupPositions, Read, ReadParams

LOOKBACK = 30_000
PARAMS = ReadParams.derive(LOOKBACK / 1000, 1)
START = 1_000_000_000


@dataclass(frozen=True)
class Ev:
    stream: str
    eid: str
    ts: int
    ingested: int  # its batch's ingestionTime
    visible: int


def _delay(rng: random.Random) -> float:
    return rng.uniform(3_000, 25_000) if rng.random() < 1 / 30 else rng.uniform(0, 2_000)


def _events(rng: random.Random, until: int) -> list[Ev]:
    """Three streams at ~20 events/s in batches of 0.2-1 s, each batch searchable after 0-2 s, one in 30
    after 3-25 s (half of those ingested late, half ingested on time and searchable late); one event in
    50 ingested late on its own; bursts of one millisecond; the third stream is quiet for a while."""
    out = []
    n = 0
    for stream in ("a", "b", "c"):
        t = START
        while t < until:
            batch_end = t + rng.randint(200, 1_000)
            batch: list[tuple[str, int]] = []
            while t < batch_end:
                t += rng.randint(1, 100)
                if stream == "c" and START + 20_000 <= t < START + 35_000:
                    continue
                for _ in range(rng.choice((1, 1, 1, 4))):  # same-millisecond bursts
                    batch.append((f"{n:08d}", t))
                    n += 1
            put = t + 50
            delay = int(_delay(rng))
            ingested = put if rng.random() < 0.5 else put + delay
            for eid, ts in batch:
                if rng.random() < 1 / 50:
                    alone = put + int(_delay(rng))
                    out.append(Ev(stream, eid, ts, alone, alone))
                else:
                    out.append(Ev(stream, eid, ts, ingested, put + delay))
    return out


class Reader:
    """One holder of the group: polls every second, delivers what it takes at once, checkpoints."""

    def __init__(self, state: dict | None, now: int) -> None:
        self.g = GroupPositions(PARAMS, state, now, 5_000)
        self.delivered: list[str] = []

    def poll(self, now: int, events: list[Ev]) -> None:
        reads = self.g.plan(now, discover=True)
        sweep = self.g.sweep_plan(now)
        for read in [*reads, *([sweep] if sweep else [])]:
            self._read(read, now, events)
        self.g.followed(now)

    def _read(self, read: Read, now: int, events: list[Ev]) -> None:
        found: dict[str, int] = {}
        held: list[tuple[str, str, int, int]] = []
        for e in sorted(events, key=lambda e: (e.ts, e.stream, e.eid)):
            if not (read.start <= e.ts <= read.end and e.visible <= now):
                continue
            if not read.prefix and e.stream not in read.names:
                continue
            verdict = self.g.take(read, e.stream, e.eid, e.ts, e.ingested)
            if verdict is None:
                held.append((e.stream, e.eid, e.ts, e.ingested))
            elif verdict:
                self._deliver(e.stream, e.eid, e.ts, e.ingested)
                found[e.stream] = found.get(e.stream, 0) + 1
        if read.sweep:
            of = {eid: (stream, ts, ingested) for stream, eid, ts, ingested in held}
            for eid in self.g.release(read, held):
                self._deliver(of[eid][0], eid, of[eid][1], of[eid][2])
        self.g.finished(read, found, now)

    def _deliver(self, stream: str, eid: str, ts: int, ingested: int) -> None:
        self.g.streams[stream].queued += 1
        self.g.delivered(stream, eid, ts, ingested)
        self.delivered.append(eid)


def _run(seed: int) -> tuple[list[Ev], list[str], int]:
    rng = random.Random(seed)
    writing_ends = START + 60_000
    end = writing_ends + LOOKBACK + 40_000
    events = _events(rng, writing_ends)
    restarts = sorted(rng.sample(range(START + 5_000, writing_ends + 20_000, 1_000), rng.randint(0, 3)))
    now = START
    reader = Reader(None, now)
    delivered: list[str] = []
    repeated_unsure = 0
    while now <= end:
        if restarts and now >= restarts[0]:
            restarts.pop(0)
            state = orjson.loads(orjson.dumps(reader.g.state(now)))  # what the checkpoint file holds
            delivered += reader.delivered
            reader = Reader(state, now)
        reader.poll(now, events)
        repeated_unsure += reader.g.unsure_delivered
        reader.g.unsure_delivered = 0
        now += 1_000
    return events, delivered + reader.delivered, repeated_unsure


def test_events_visible_within_lookback_are_delivered_once_across_restarts() -> None:
    late_seen = 0
    for seed in range(40):
        events, delivered, repeated_unsure = _run(seed)
        counts: dict[str, int] = {}
        for eid in delivered:
            counts[eid] = counts.get(eid, 0) + 1
        required = {e.eid for e in events if e.visible - e.ts <= LOOKBACK}
        lost = required - set(counts)
        twice = {eid for eid, n in counts.items() if n > 1}
        assert not lost and not twice and repeated_unsure == 0, (seed, sorted(lost)[:5], sorted(twice)[:5])
        late_seen += sum(1 for e in events if e.visible - e.ts > 3_000)
    assert late_seen > 100  # the schedules did make events visible long after newer ones
