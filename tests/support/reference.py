"""The field-parity reference data kept in the repository (tests/data/reference, large files gzipped).

Tests and benchmarks read it only through this module: `read_bytes` for in-process use, `unpack` where a
process (the C test host) needs plain files on disk.
"""

from __future__ import annotations

import gzip
from pathlib import Path

__all__ = ["EVENT_SETS", "REFERENCE", "read_bytes", "unpack"]

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"

# (events, golden) pairs; both must match the Go plugin with 0 differences.
EVENT_SETS = (
    ("audit-events-dev.jsonl", "golden-dev.jsonl"),
    ("audit-events-dev-2.jsonl", "golden-dev-2.jsonl"),
)


def read_bytes(name: str, reference: Path = REFERENCE) -> bytes:
    """One reference file's content, whether it is stored plain or as NAME.gz."""
    plain = reference / name
    if plain.is_file():
        return plain.read_bytes()
    packed = reference / f"{name}.gz"
    if packed.is_file():
        return gzip.decompress(packed.read_bytes())
    raise FileNotFoundError(f"reference file {name} missing in {reference}")


def unpack(dest: Path, reference: Path = REFERENCE) -> Path:
    """Plain copies of every reference file in dest (a folder the caller owns); returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(reference.iterdir()):
        name = path.name.removesuffix(".gz")
        (dest / name).write_bytes(read_bytes(name, reference))
    return dest
