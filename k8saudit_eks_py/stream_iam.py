"""The IAM policies of stream mode, as JSON text: the reader's (Falco) and the role CloudWatch Logs assumes
to put subscription records into the stream. Shared by open errors, setup-stream and check."""

from __future__ import annotations

import orjson

__all__ = ["logs_trust_policy", "put_records_policy", "reader_policy", "stream_arn"]


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
