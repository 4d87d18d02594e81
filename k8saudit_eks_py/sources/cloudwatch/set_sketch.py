"""A set of event hashes summarised in a few dozen bytes: its size and its first `POWERS` power sums
modulo the prime 2^61 - 1. Given a superset (what a later read met), the sketch names the up to
`POWERS` elements the set lacks: the power sums of those missing elements are the superset's minus the
sketch's, Newton's identities turn them into the polynomial whose roots they are, and the superset's
members that are roots are the missing ones. This is how a restarted reader tells the events its
predecessor delivered from those CloudWatch made visible later, without the predecessor's eventIds.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["POWERS", "Sketch", "event_hash", "missing"]

PRIME = (1 << 61) - 1
POWERS = 4  # missing elements the sketch can name (more: the caller cannot tell which)
_FORMAT = "<I" + "Q" * POWERS  # the encoded sketch: size, then the power sums


def event_hash(event_id: str) -> int:
    """In [1, PRIME), stable across processes (a checkpoint's sketch is read by the next holder)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (PRIME - 1) + 1


def _powers(h: int) -> list[int]:
    out, x = [], 1
    for _ in range(POWERS):
        x = x * h % PRIME
        out.append(x)
    return out


@dataclass(slots=True)
class Sketch:
    n: int = 0
    sums: list[int] = field(default_factory=lambda: [0] * POWERS)

    def add(self, h: int, sign: int = 1) -> None:
        self.n += sign
        for j, x in enumerate(_powers(h)):
            self.sums[j] = (self.sums[j] + sign * x) % PRIME

    def plus(self, other: Sketch) -> Sketch:
        return Sketch(self.n + other.n, [(a + b) % PRIME for a, b in zip(self.sums, other.sums, strict=True)])

    def encode(self) -> str:
        return base64.b64encode(struct.pack(_FORMAT, self.n, *self.sums)).decode()

    @staticmethod
    def decode(text: str) -> Sketch:
        """ValueError (binascii.Error, struct.error are ValueErrors too) when `text` is not encode()'s."""
        raw = base64.b64decode(text.encode(), validate=True)
        if len(raw) != struct.calcsize(_FORMAT):
            raise ValueError(f"a sketch of {len(raw)} bytes, expected {struct.calcsize(_FORMAT)}")
        n, *sums = struct.unpack(_FORMAT, raw)
        if any(s >= PRIME for s in sums):
            raise ValueError("a power sum out of range")
        return Sketch(n, list(sums))


def missing(superset: Sequence[int], sketch: Sketch) -> set[int] | None:
    """Indexes of the members of `superset` (hashes, each once) that the sketched set lacks, when the
    sketched set is a subset of it and lacks at most POWERS of them; None when that is not so (more
    missing, or the sketched set is not a subset): the caller cannot tell."""
    k = len(superset) - sketch.n
    if k < 0 or k > POWERS:
        return None
    diff = list(sketch.sums)
    for h in superset:
        for j, x in enumerate(_powers(h)):
            diff[j] = (diff[j] - x) % PRIME
    p = [(-d) % PRIME for d in diff]  # power sums of the missing elements
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
        for c in coefficients:  # Horner: x^k - e1 x^(k-1) + e2 x^(k-2) ...
            value = (value * h + c) % PRIME
        if value == 0:
            roots.add(index)
    if len(roots) != k:
        return None
    # Every power sum must agree, not only the first k: a set that is not a subset fails here.
    for j in range(POWERS):
        if p[j] != sum(pow(superset[i], j + 1, PRIME) for i in roots) % PRIME:
            return None
    return roots
