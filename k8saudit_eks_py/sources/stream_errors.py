"""Stream mode's open_params and Kinesis failures: what `kinesis://...` names, which retry class an error
gets, and the text telling the user what to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8saudit_eks_py import aws
from k8saudit_eks_py.aws_setup.iam_policies import reader_policy
from k8saudit_eks_py.errors import OpenError

__all__ = ["StreamRef", "classify", "open_failure", "parse_stream"]

_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")
_ARN = re.compile(r"arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([a-zA-Z0-9_.-]{1,128})")
_THROTTLE = {"ProvisionedThroughputExceededException", "LimitExceededException"}


@dataclass(frozen=True, slots=True)
class StreamRef:
    ident: str  # as the user wrote it (name or ARN): the checkpoint keys use it
    name: str
    region: str | None  # from the ARN
    request: dict[str, str]  # StreamName=... or StreamARN=... for every Kinesis call


def parse_stream(params: str) -> StreamRef:
    text = params.strip()
    m = _ARN.fullmatch(text)
    if m:
        return StreamRef(text, m.group(3), m.group(1), {"StreamARN": text})
    if _NAME.fullmatch(text):
        return StreamRef(text, text, None, {"StreamName": text})
    raise OpenError(
        f"open_params kinesis://{text[:140]} does not name a Kinesis stream: write kinesis://NAME (1-128 "
        "letters, digits, '_', '-', '.') or kinesis://arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"
    )


def classify(exc: BaseException) -> str:
    """aws.classify, plus Kinesis's own throttle and iterator answers ('expired')."""
    code = aws.error_code(exc)
    if code in _THROTTLE:
        return "throttle"
    if code == "ExpiredIteratorException":
        return "expired"
    if code in ("InvalidArgumentException",):
        return "invalid"
    return aws.classify(exc)


def open_failure(exc: BaseException, *, stream: str, region: str) -> str | None:
    """The text for a configuration error found at open; None when the error is transient."""
    kind = classify(exc)
    cause = aws.describe(exc)
    name = stream.rsplit("/", 1)[-1]
    if kind == "not_found":
        return (
            f"Kinesis stream {stream} not found in region {region} ({cause}). Create it and the subscription "
            f"with: k8saudit-eks-py setup-stream CLUSTER --stream {name} --region {region} "
            "(or fix open_params / region in init_config)"
        )
    if kind == "denied":
        return (
            f"access denied reading Kinesis stream {stream} ({cause}). The IAM identity Falco runs as needs "
            "this policy:\n" + reader_policy(region, name)
        )
    if kind == "credentials":
        return (
            f"no usable AWS credentials ({cause}). Provide them through the default chain: IRSA or EKS Pod "
            "Identity on the Falco pod, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile "
            "('profile' in init_config); set role_arn to assume a role"
        )
    if kind == "invalid" and not isinstance(exc, OpenError):
        return f"Kinesis rejected the request for stream {stream} ({cause}): check open_params and region"
    return None
