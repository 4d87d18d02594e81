"""`setup-archive` logic: the AWS side of long retention beside stream mode, created idempotently (or only
planned, --dry-run, naming every call it would make).

1. the S3 bucket (private, encrypted, objects expiring after --retention-days);
2. the IAM role Firehose assumes to write the bucket;
3. the Firehose delivery stream writing the subscription records as they come (gzip already) under the
   prefix, Firehose adding YYYY/MM/DD/HH/;
4. the IAM role CloudWatch Logs assumes to put records into the delivery stream;
5. one subscription filter per cluster log group, named `k8saudit-eks-py-archive` (a log group takes two
   filters: stream mode's `k8saudit-eks-py` stays).

Each step reads what exists first and changes only what differs, so running it again is harmless. The
plugin then replays the archive with open_params s3://BUCKET/PREFIX.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions

from k8saudit_eks_py.aws_setup.aws_errors import error_code
from k8saudit_eks_py.aws_setup.iam_policies import logs_trust_policy
from k8saudit_eks_py.aws_setup.logs_check import enable_audit_command
from k8saudit_eks_py.aws_setup.setup_session import SetupError, open_setup_session
from k8saudit_eks_py.aws_setup.subscription_filter import put_subscription_filter

__all__ = [
    "FILTER_NAME",
    "ArchiveOptions",
    "ArchiveResult",
    "SetupError",
    "archive_reader_policy",
    "setup_archive",
]

FILTER_NAME = "k8saudit-eks-py-archive"


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    clusters: tuple[str, ...]
    bucket: str
    prefix: str = "eks-audit/"
    delivery_stream: str = "k8saudit-eks-archive"
    retention_days: int = 400
    region: str = ""
    profile: str = ""
    filter_pattern: str = ""
    endpoint_url: str = ""
    dry_run: bool = False
    wait_s: float = 120.0  # for the delivery stream to become ACTIVE and new roles to be usable


@dataclass(slots=True)
class ArchiveResult:
    region: str = ""
    account: str = ""
    bucket_arn: str = ""
    delivery_arn: str = ""
    firehose_role_arn: str = ""
    logs_role_arn: str = ""
    actions: list[str] = field(default_factory=list)  # one line per step: what was (or would be) done


def _dump(doc: object) -> str:
    return json.dumps(doc, indent=2)


def archive_reader_policy(bucket: str, prefix: str) -> str:
    """What archive replay calls: ListObjectsV2 on the bucket, GetObject under the prefix."""
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
            ],
        }
    )


def _firehose_trust(account: str) -> str:
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "firehose.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": account}},
                }
            ],
        }
    )


def _write_bucket_policy(bucket: str) -> str:
    actions = [
        "s3:AbortMultipartUpload",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:PutObject",
    ]
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
        }
    )


def _put_records_policy(delivery_arn: str) -> str:
    return _dump(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                    "Resource": delivery_arn,
                }
            ],
        }
    )


def setup_archive(
    o: ArchiveOptions,
    session_factory: Callable[..., Any] = boto3.Session,
    sleep: Callable[[float], None] = time.sleep,
) -> ArchiveResult:
    setup = open_setup_session(o.profile, o.region, o.endpoint_url, session_factory)
    client = setup.client
    r = ArchiveResult(region=setup.region)

    try:
        r.account = str(client("sts").get_caller_identity()["Account"])
        s3, iam, firehose, logs = client("s3"), client("iam"), client("firehose"), client("logs")
        for cluster in o.clusters:  # first: a missing log group stops before anything is created
            _check_group(r, logs, cluster)
        _bucket(o, r, s3)
        firehose_role = _Role(
            f"{o.delivery_stream}-firehose-to-s3",
            _firehose_trust(r.account),
            "write-archive",
            _write_bucket_policy(o.bucket),
            "Firehose writes EKS audit records to the archive",
        )
        r.firehose_role_arn = _role(o, r, iam, firehose_role)
        _delivery_stream(o, r, firehose, sleep)
        logs_role = _Role(
            f"{o.delivery_stream}-cwlogs-to-firehose",
            logs_trust_policy(r.region),
            "put-records",
            _put_records_policy(r.delivery_arn),
            "CloudWatch Logs puts EKS audit events into Firehose",
        )
        r.logs_role_arn = _role(o, r, iam, logs_role)
        for cluster in o.clusters:
            _subscription(o, r, logs, cluster, sleep)
    except botocore.exceptions.NoCredentialsError:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE, run `aws sso login` or `aws configure`"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SetupError(f"{exc} (later steps were not run; fix it and run the command again)") from None
    return r


def _check_group(r: ArchiveResult, logs: Any, cluster: str) -> None:
    group = f"/aws/eks/{cluster}/cluster"
    found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
    if not any(g.get("logGroupName") == group for g in found):
        raise SetupError(
            f"log group {group} not found in {r.region}: enable audit logging on cluster {cluster} first: "
            + enable_audit_command(cluster, r.region)
        )


def _bucket(o: ArchiveOptions, r: ArchiveResult, s3: Any) -> None:
    r.bucket_arn = f"arn:aws:s3:::{o.bucket}"
    try:
        s3.head_bucket(Bucket=o.bucket)
        r.actions.append(f"bucket {o.bucket}: exists (HeadBucket); left as it is")
        return
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("403", "AccessDenied"):
            raise SetupError(
                f"bucket {o.bucket} exists but is not yours (or HeadBucket is denied): "
                "choose another --bucket"
            ) from None
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    calls = (
        "CreateBucket, PutPublicAccessBlock, PutBucketEncryption (AES256), PutBucketLifecycleConfiguration"
    )
    if o.dry_run:
        r.actions.append(f"bucket {o.bucket}: would create ({calls}: expire after {o.retention_days} days)")
        return
    create: dict[str, Any] = {"Bucket": o.bucket}
    if r.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": r.region}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=o.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=o.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=o.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-audit-archive",
                    "Status": "Enabled",
                    "Filter": {"Prefix": o.prefix},
                    "Expiration": {"Days": o.retention_days},
                }
            ]
        },
    )
    r.actions.append(f"bucket {o.bucket}: created ({calls}: expire after {o.retention_days} days)")


@dataclass(frozen=True, slots=True)
class _Role:
    name: str
    trust: str
    policy_name: str
    policy: str
    why: str


def _role(o: ArchiveOptions, r: ArchiveResult, iam: Any, role: _Role) -> str:
    name, policy_name = role.name[:64], role.policy_name
    arn = f"arn:aws:iam::{r.account}:role/{name}"
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
        exists = True
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        exists = False
    calls = "UpdateAssumeRolePolicy, PutRolePolicy" if exists else "CreateRole, PutRolePolicy"
    if o.dry_run:
        verb = "exists; would set its policies" if exists else "would create"
        r.actions.append(f"IAM role {name}: {verb} ({calls} {policy_name}: {role.why})")
        return arn
    if exists:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=role.trust)
    else:
        arn = str(
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=role.trust, Description=role.why)["Role"][
                "Arn"
            ]
        )
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=role.policy)
    r.actions.append(f"IAM role {name}: {'updated' if exists else 'created'} ({calls} {policy_name})")
    return arn


def _delivery_stream(
    o: ArchiveOptions, r: ArchiveResult, firehose: Any, sleep: Callable[[float], None]
) -> None:
    name = o.delivery_stream
    r.delivery_arn = f"arn:aws:firehose:{r.region}:{r.account}:deliverystream/{name}"
    try:
        found = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        r.delivery_arn = found["DeliveryStreamARN"]
        r.actions.append(
            f"delivery stream {name}: exists ({found.get('DeliveryStreamStatus')}); left as it is"
        )
        return
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    where = f"s3://{o.bucket}/{o.prefix}YYYY/MM/DD/HH/"
    if o.dry_run:
        r.actions.append(f"delivery stream {name}: would create (CreateDeliveryStream, DirectPut → {where})")
        return
    deadline = time.monotonic() + o.wait_s
    while True:
        try:
            firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": r.firehose_role_arn,
                    "BucketARN": r.bucket_arn,
                    "Prefix": o.prefix,
                    "ErrorOutputPrefix": o.prefix.rstrip("/") + "-errors/",
                    # the records are gzip already: stored as they come (gzip members back to back)
                    "CompressionFormat": "UNCOMPRESSED",
                    "BufferingHints": {"IntervalInSeconds": 300, "SizeInMBs": 64},
                },
            )
            break
        except botocore.exceptions.ClientError as exc:
            # A new role takes a few seconds before Firehose can assume it.
            if error_code(exc) != "InvalidArgumentException" or time.monotonic() > deadline:
                raise
            sleep(3.0)
    while True:
        found = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if found.get("DeliveryStreamStatus") == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise SetupError(
                f"delivery stream {name} is still {found.get('DeliveryStreamStatus')}; run again later"
            )
        sleep(2.0)
    r.delivery_arn = found["DeliveryStreamARN"]
    r.actions.append(f"delivery stream {name}: created (CreateDeliveryStream, DirectPut → {where})")


def _subscription(
    o: ArchiveOptions, r: ArchiveResult, logs: Any, cluster: str, sleep: Callable[[float], None]
) -> None:
    group = f"/aws/eks/{cluster}/cluster"
    filters = logs.describe_subscription_filters(logGroupName=group).get("subscriptionFilters", [])
    done = put_subscription_filter(
        logs,
        filters,
        group=group,
        name=FILTER_NAME,
        pattern=o.filter_pattern,
        destination_arn=r.delivery_arn,
        role_arn=r.logs_role_arn,
        dry_run=o.dry_run,
        wait_s=o.wait_s,
        sleep=sleep,
    )
    call = "" if done == "exists" else f" (PutSubscriptionFilter {FILTER_NAME})"
    r.actions.append(f"subscription {group} → {o.delivery_stream}: {done}{call}")
