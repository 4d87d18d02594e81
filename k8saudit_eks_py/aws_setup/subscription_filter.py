"""The subscription filter the set-up commands put on a log group (to a Kinesis stream for stream mode,
to a Firehose delivery stream for an archive): kept when it already points there, refused when the group
has no room left for one, put (retried while CloudWatch Logs cannot use a new role yet) otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from k8saudit_eks_py.aws_setup.aws_errors import error_code
from k8saudit_eks_py.aws_setup.setup_session import SetupError

__all__ = ["put_subscription_filter"]


def put_subscription_filter(
    logs: Any,
    filters: list[dict[str, Any]],
    *,
    group: str,
    name: str,
    pattern: str,
    destination_arn: str,
    role_arn: str,
    dry_run: bool,
    wait_s: float,
    sleep: Callable[[float], None],
) -> str:
    """`filters`: the group's current subscription filters. What was done: "exists", "would create",
    "would update", "created" or "updated"."""
    ours = [f for f in filters if f.get("filterName") == name]
    if (
        ours
        and ours[0].get("destinationArn") == destination_arn
        and ours[0].get("filterPattern", "") == pattern
    ):
        return "exists"
    if not ours and len(filters) >= 2:
        raise SetupError(
            f"log group {group} already has 2 subscription filters (the CloudWatch limit): remove one "
            f"({', '.join(str(f.get('filterName')) for f in filters)}) and run again"
        )
    verb = "update" if ours else "create"
    if dry_run:
        return f"would {verb}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            logs.put_subscription_filter(
                logGroupName=group,
                filterName=name,
                filterPattern=pattern,
                destinationArn=destination_arn,
                roleArn=role_arn,
            )
            return f"{verb}d"
        except botocore.exceptions.ClientError as exc:
            # A new role takes a few seconds to be usable by CloudWatch Logs (its test delivery fails).
            if error_code(exc) != "InvalidParameterException" or time.monotonic() > deadline:
                raise
            sleep(3.0)
