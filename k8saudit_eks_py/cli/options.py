"""Option types and option groups shared by the subcommands: each rejects nonsense with one clear line."""

from __future__ import annotations

import argparse
import re

__all__ = [
    "DURATION_FORMAT",
    "add_aws_options",
    "non_negative_float",
    "parse_duration",
    "positive_duration",
    "positive_float",
    "positive_int",
]

DURATION_FORMAT = "90s, 15m, 2h or 1d; a bare number is seconds"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90' / '90s' / '15m' / '2h' / '1d' → whole seconds."""
    m = _DURATION.fullmatch(text.strip().lower())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. {DURATION_FORMAT})")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def positive_duration(text: str) -> int:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {text!r}")
    return seconds


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(_number(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    parser.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    parser.add_argument("--role-arn", help="IAM role to assume for reading the logs")
    parser.add_argument(
        "--endpoint-url",
        help="endpoint override (VPC endpoint, local server): CloudWatch Logs, and Kinesis for kinesis://",
    )
