"""Every IAM policy the plugin prints, least privilege each: poll mode's reader (`check`), stream mode's
reader (Falco) and the role CloudWatch Logs assumes to put subscription records into the stream
(setup-stream, `check kinesis://`, the stream source's access-denied error), and the lease table's
statement (setup-coordination, `check --coordination-table`, coordination's open errors)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "LEASE_TABLE_ACTIONS",
    "iam_policy",
    "iam_statement",
    "logs_trust_policy",
    "put_records_policy",
    "reader_policy",
    "stream_arn",
]

# What the plugin does with the lease table (and what `check` probes).
LEASE_TABLE_ACTIONS = (
    "dynamodb:DescribeTable",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",  # presence items of replicas long gone (optional: without it they stay)
)


def iam_policy(log_group_arn: str = "arn:aws:logs:*:*:log-group:/aws/eks/*/cluster:*") -> dict[str, Any]:
    """Least privilege for the plugin in poll mode (+ the optional eks:DescribeCluster that `check` uses)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadEksAuditLogs",
                "Effect": "Allow",
                "Action": ["logs:FilterLogEvents", "logs:DescribeLogStreams"],
                "Resource": log_group_arn,
            },
            {
                # A list call: CloudWatch Logs authorizes it on the account's log-group ARNs, not a name.
                "Sid": "FindTheLogGroup",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": "arn:aws:logs:*:*:log-group:*",
            },
            {
                "Sid": "OptionalCheckAuditLoggingIsEnabled",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": "arn:aws:eks:*:*:cluster/*",
            },
        ],
    }


def iam_statement(table: str, region: str, account: str = "*") -> dict[str, Any]:
    """The statement that lets the plugin use the lease table `table` (a name or an ARN)."""
    arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return {
        "Sid": "K8sAuditEksPyLeases",
        "Effect": "Allow",
        "Action": list(LEASE_TABLE_ACTIONS),
        "Resource": arn,
    }


def stream_arn(region: str, stream: str, account: str = "*") -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{stream}"


def _dump(doc: object) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def reader_policy(region: str, stream: str, account: str = "*") -> str:
    """What Falco needs to read the stream (DescribeStreamSummary at open, then shards and records)."""
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "kinesis:DescribeStreamSummary",
                        "kinesis:ListShards",
                        "kinesis:GetShardIterator",
                        "kinesis:GetRecords",
                    ],
                    "Resource": stream_arn(region, stream, account),
                }
            ],
        }
    )


def logs_trust_policy(region: str) -> str:
    """Only CloudWatch Logs of this region may assume the delivery role."""
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def put_records_policy(region: str, stream: str, account: str = "*") -> str:
    """The delivery role may put records into this stream and nothing else."""
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
                    "Resource": stream_arn(region, stream, account),
                }
            ],
        }
    )
