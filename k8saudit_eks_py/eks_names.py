"""What an EKS cluster name and an AWS region look like, for messages that say what to fix before any call."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

import botocore.session

__all__ = ["cluster_name_problem", "known_regions", "region_problem"]

# EKS: 1-100 characters, letters, digits, '-' and '_', starting with a letter or digit.
_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")


def cluster_name_problem(name: str) -> str | None:
    """Why `name` cannot be an EKS cluster name, or None."""
    if _CLUSTER_NAME.fullmatch(name):
        return None
    return (
        f"{name[:120]!r} is not a valid EKS cluster name (1-100 characters: letters, digits, '-' and '_', "
        "starting with a letter or digit)"
    )


@lru_cache(maxsize=1)
def _partitions() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """(region pattern, regions CloudWatch Logs is in) per AWS partition, from botocore's endpoint data."""
    session = botocore.session.get_session()
    out = []
    for partition in session.get_data("endpoints")["partitions"]:
        regions = session.get_available_regions("logs", partition_name=partition["partition"])
        out.append((re.compile(partition["regionRegex"]), frozenset(regions)))
    return tuple(out)


def known_regions() -> frozenset[str]:
    return frozenset().union(*(regions for _, regions in _partitions()))


def region_problem(region: str) -> tuple[bool, str] | None:
    """None for a region botocore knows; else (fatal, why). A name shaped like a region of a partition
    but not (yet) in botocore's list is not fatal: AWS may have opened it after this botocore."""
    if region in known_regions():
        return None
    close = difflib.get_close_matches(region, sorted(known_regions()), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if any(pattern.match(region) for pattern, _ in _partitions()):
        return False, (
            f"{region} is not in botocore {botocore.__version__}'s region list{hint}; if AWS opened it "
            "recently, upgrade boto3"
        )
    return True, f"{region!r} is not an AWS region{hint}"
