"""A set of event hashes summarised in a few bytes: its size and its first `c` power sums modulo the prime
2^61 - 1 (`c`, the capacity, chosen per set). Given a superset (what a later read met), the sketch names
the up to `c` elements the set lacks: the power sums of those missing elements are the superset's minus
the sketch's, Newton's identities turn them into the polynomial whose roots they are, and the superset's
members that are roots are the missing ones. This is how a restarted reader tells the events its
predecessor delivered from those CloudWatch made visible later, without the predecessor's eventIds.

What a sketch lacks can be more events than its capacity (CloudWatch makes a whole PutLogEvents batch
searchable late); guesses made another way (ledger.py: by ingestion second) are then tested against
the count and every power sum (`lacking_sums`, `power_sums`; a wrong guess passes with probability about
2^-61 per power sum).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["MAX_POWERS", "PRIME", "Sketch", "event_hash", "lacking_sums", "missing", "power_sums"]

PRIME = (1 << 61) - 1
MAX_POWERS = 64  # the largest capacity (power sums kept)


def event_hash(event_id: str) -> int:
    """In [1, PRIME), stable across processes (a checkpoint's sketch is read by the next holder)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (PRIME - 1) + 1


@dataclass(slots=True)
class Sketch:
    n: int = 0
    sums: list[int] = field(default_factory=lambda: [0] * MAX_POWERS)

    def add(self, h: int, sign: int = 1) -> None:
        self.n += sign
        x = 1
        for j in range(len(self.sums)):
            x = x * h % PRIME
            self.sums[j] = (self.sums[j] + sign * x) % PRIME

    def plus(self, other: Sketch) -> Sketch:
        """The sketch of both sets (disjoint), with the smaller capacity of the two."""
        return Sketch(
            self.n + other.n, [(a + b) % PRIME for a, b in zip(self.sums, other.sums, strict=False)]
        )

    def cut(self, capacity: int) -> Sketch:
        return Sketch(self.n, self.sums[:capacity])


def lacking_sums(superset: Sequence[int], sketch: Sketch) -> list[int]:
    """Power sums of what the sketched set lacks: the superset's minus the sketch's."""
    p = [(-d) % PRIME for d in sketch.sums]
    for h in superset:
        x = 1
        for j in range(len(p)):
            x = x * h % PRIME
            p[j] = (p[j] + x) % PRIME
    return p


def missing(superset: Sequence[int], sketch: Sketch) -> set[int] | None:
    """Indexes of the members of `superset` (hashes, each once) that the sketched set lacks, when the
    sketched set is a subset of it and lacks at most the sketch's capacity of them; None when that is not
    so (more missing, or the sketched set is not a subset): the caller cannot tell."""
    k = len(superset) - sketch.n
    c = len(sketch.sums)
    if k < 0 or k > c:
        return None
    p = lacking_sums(superset, sketch)
    e = [1] + [0] * k  # their elementary symmetric polynomials (Newton's identities)
    for j in range(1, k + 1):
        acc = 0
        for i in range(1, j + 1):
            term = e[j - i] * p[i - 1] % PRIME
            acc = acc + term if i % 2 == 1 else acc - term
        e[j] = acc % PRIME * pow(j, PRIME - 2, PRIME) % PRIME
    coefficients = [e[j] if j % 2 == 0 else (-e[j]) % PRIME for j in range(k + 1)]
    roots = set()
    for index, h in enumerate(superset):
        value = 0
        for coefficient in coefficients:  # Horner: x^k - e1 x^(k-1) + e2 x^(k-2) ...
            value = (value * h + coefficient) % PRIME
        if value == 0:
            roots.add(index)
    if len(roots) != k:
        return None
    # Every power sum must agree, not only the first k: a set that is not a subset fails here.
    for j in range(k, c):
        if p[j] != sum(pow(superset[i], j + 1, PRIME) for i in roots) % PRIME:
            return None
    return roots


def power_sums(hashes: Sequence[int], c: int) -> list[int]:
    """The first `c` power sums of `hashes`."""
    out = [0] * c
    for h in hashes:
        x = 1
        for j in range(c):
            x = x * h % PRIME
            out[j] = (out[j] + x) % PRIME
    return out
