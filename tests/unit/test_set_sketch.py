"""The restart sketch: it names exactly the events a predecessor did not deliver, up to its capacity, and
says "cannot tell" (never a wrong answer) beyond it, over many seeded sets."""

from __future__ import annotations

import random

from k8saudit_eks_py.sources.cloudwatch.set_sketch import MAX_POWERS, Sketch, event_hash, missing


def _sketch_of(ids: list[str], capacity: int) -> Sketch:
    s = Sketch()
    for i in ids:
        s.add(event_hash(i))
    return s.cut(capacity)


def test_the_missing_events_are_named_up_to_the_capacity_over_seeded_sets() -> None:
    for seed in range(300):
        rng = random.Random(seed)
        capacity = rng.randint(1, MAX_POWERS)
        superset = [f"{rng.getrandbits(64):020d}" for _ in range(rng.randint(0, 400))]
        k = rng.randint(0, min(capacity, len(superset)))
        lacking = set(rng.sample(range(len(superset)), k))
        delivered = [e for n, e in enumerate(superset) if n not in lacking]
        got = missing([event_hash(e) for e in superset], _sketch_of(delivered, capacity))
        assert got == lacking, (seed, capacity, k)


def test_more_missing_than_the_capacity_is_never_answered_wrongly() -> None:
    for seed in range(200):
        rng = random.Random(seed)
        capacity = rng.randint(1, 8)
        superset = [f"e{seed}-{n}" for n in range(rng.randint(capacity + 1, 200))]
        lacking = set(rng.sample(range(len(superset)), rng.randint(capacity + 1, len(superset))))
        delivered = [e for n, e in enumerate(superset) if n not in lacking]
        assert missing([event_hash(e) for e in superset], _sketch_of(delivered, capacity)) is None


def test_a_sketch_of_events_not_all_in_the_superset_is_refused() -> None:
    # An event delivered before that CloudWatch no longer returns: the sums cannot match.
    for seed in range(100):
        rng = random.Random(seed)
        superset = [f"s{seed}-{n}" for n in range(50)]
        delivered = [*rng.sample(superset, 40), f"gone-{seed}"]
        assert missing([event_hash(e) for e in superset], _sketch_of(delivered, 16)) is None


def test_sketches_add_up_and_keep_the_smaller_capacity() -> None:
    a, b = _sketch_of(["x", "y"], 4), _sketch_of(["z"], MAX_POWERS)
    both = a.plus(b)
    assert both.n == 3 and len(both.sums) == 4
    assert both == _sketch_of(["x", "y", "z"], 4)
