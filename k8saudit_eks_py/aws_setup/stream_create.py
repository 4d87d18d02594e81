"""`setup-stream` logic: the AWS side of stream mode, created idempotently (or only planned, --dry-run).

1. the Kinesis stream (on-demand, or N provisioned shards), waited for until ACTIVE;
2. the IAM role CloudWatch Logs assumes to put records (trusts logs.<region>.amazonaws.com only, may put
   records into that stream only);
3. one subscription filter per cluster log group, named `k8saudit-eks-py`, into the stream;
4. for clusters of other accounts (or Regions), named by ARN: destinations in front of the stream and the
   member accounts' subscription filters (destination_create.py).

Each step first reads what exists and changes only what differs, so running it again is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions

from k8saudit_eks_py.aws_setup.destination_create import (
    CrossAccount,
    cross_account_trust_policy,
    setup_destinations,
    subscribe_members,
)
from k8saudit_eks_py.aws_setup.iam_policies import logs_trust_policy, put_records_policy, reader_policy
from k8saudit_eks_py.aws_setup.logs_check import enable_audit_command
from k8saudit_eks_py.aws_setup.setup_session import CLIENT_CONFIG, SetupError, open_setup_session
from k8saudit_eks_py.aws_setup.subscription_filter import put_subscription_filter

__all__ = [
    "FILTER_NAME",
    "SetupError",
    "SetupOptions",
    "SetupResult",
    "falco_yaml",
    "reader_policy_for",
    "role_name",
    "setup_stream",
]

FILTER_NAME = "k8saudit-eks-py"


@dataclass(frozen=True, slots=True)
class SetupOptions:
    clusters: tuple[str, ...]
    stream: str
    region: str = ""
    profile: str = ""
    shards: int | None = None  # None: on-demand
    filter_pattern: str = ""
    endpoint_url: str = ""
    dry_run: bool = False
    cross: CrossAccount | None = None  # clusters of member accounts (or other Regions), by ARN
    wait_s: float = 120.0  # for the stream to become ACTIVE and the role to be usable by CloudWatch Logs


@dataclass(slots=True)
class SetupResult:
    region: str = ""
    account: str = ""
    stream_arn: str = ""
    role_arn: str = ""
    actions: list[str] = field(default_factory=list)  # one line per step: what was (or would be) done
    failures: list[str] = field(default_factory=list)  # member accounts' steps that failed (others went on)


def role_name(stream: str) -> str:
    return f"{stream}-cwlogs-to-kinesis"[:64]


def _code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def setup_stream(
    o: SetupOptions,
    session_factory: Callable[..., Any] = boto3.Session,
    sleep: Callable[[float], None] = time.sleep,
) -> SetupResult:
    setup = open_setup_session(o.profile, o.region, o.endpoint_url, session_factory)
    session, client = setup.session, setup.client
    r = SetupResult(region=setup.region)

    try:
        r.account = str(client("sts").get_caller_identity()["Account"])
        kinesis, iam, logs = client("kinesis"), client("iam"), client("logs")
        _stream(o, r, kinesis, sleep)
        _role(o, r, iam)
        for cluster in o.clusters:
            _subscription(o, r, logs, cluster, sleep)
        if o.cross is not None and o.cross.members:
            _cross_account(o, o.cross, r, session, client)
    except botocore.exceptions.NoCredentialsError:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE, run `aws sso login` or `aws configure`"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SetupError(f"{exc} (later steps were not run; fix it and run the command again)") from None
    return r


def _cross_account(
    o: SetupOptions, x: CrossAccount, r: SetupResult, session: Any, client: Callable[[str], Any]
) -> None:
    """Destinations in this (security) account, then each member account's subscription filters."""
    regions = sorted({*x.regions(), r.region})
    accounts = sorted({*x.accounts(), r.account})
    if o.dry_run:
        r.actions.append(
            f"IAM role {role_name(o.stream)}: would trust CloudWatch Logs of {', '.join(accounts)}"
        )
    else:
        iam = client("iam")
        iam.update_assume_role_policy(
            RoleName=role_name(o.stream), PolicyDocument=cross_account_trust_policy(regions, accounts)
        )
        r.actions.append(f"IAM role {role_name(o.stream)}: trusts CloudWatch Logs of {', '.join(accounts)}")

    def logs_in(region: str) -> Any:
        return session.client(
            "logs", region_name=region, endpoint_url=o.endpoint_url or None, config=CLIENT_CONFIG
        )

    def member_logs(role: str, account: str, region: str) -> Any:
        extra = {"ExternalId": x.external_id} if x.external_id else {}
        creds = client("sts").assume_role(RoleArn=role, RoleSessionName="k8saudit-eks-py-setup", **extra)
        c = creds["Credentials"]
        return boto3.client(
            "logs",
            region_name=region,
            endpoint_url=o.endpoint_url or None,
            config=CLIENT_CONFIG,
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )

    destinations, actions = setup_destinations(
        x,
        stream=o.stream,
        stream_arn=r.stream_arn,
        role_arn=r.role_arn,
        account=r.account,
        logs_in=logs_in,
        dry_run=o.dry_run,
    )
    r.actions.extend(actions)
    done, failed = subscribe_members(
        x,
        destinations=destinations,
        filter_pattern=o.filter_pattern,
        member_logs=member_logs,
        dry_run=o.dry_run,
    )
    r.actions.extend(done)
    r.failures.extend(failed)


def _stream(o: SetupOptions, r: SetupResult, kinesis: Any, sleep: Callable[[float], None]) -> None:
    try:
        summary = kinesis.describe_stream_summary(StreamName=o.stream)["StreamDescriptionSummary"]
        r.stream_arn = summary["StreamARN"]
        r.actions.append(f"stream {o.stream}: exists ({summary.get('StreamStatus')})")
        return
    except botocore.exceptions.ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    r.stream_arn = f"arn:aws:kinesis:{r.region}:{r.account}:stream/{o.stream}"
    mode = "on-demand" if o.shards is None else f"{o.shards} shard(s)"
    if o.dry_run:
        r.actions.append(f"stream {o.stream}: would create ({mode})")
        return
    if o.shards is None:
        kinesis.create_stream(StreamName=o.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    else:
        kinesis.create_stream(
            StreamName=o.stream, ShardCount=o.shards, StreamModeDetails={"StreamMode": "PROVISIONED"}
        )
    deadline = time.monotonic() + o.wait_s
    while True:
        summary = kinesis.describe_stream_summary(StreamName=o.stream)["StreamDescriptionSummary"]
        if summary.get("StreamStatus") == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise SetupError(f"stream {o.stream} is still {summary.get('StreamStatus')}; run again later")
        sleep(2.0)
    r.stream_arn = summary["StreamARN"]
    r.actions.append(f"stream {o.stream}: created ({mode})")


def _role(o: SetupOptions, r: SetupResult, iam: Any) -> None:
    name = role_name(o.stream)
    r.role_arn = f"arn:aws:iam::{r.account}:role/{name}"
    try:
        r.role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        exists = True
    except botocore.exceptions.ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        exists = False
    if o.dry_run:
        verb = "exists; would set its policies" if exists else "would create"
        r.actions.append(
            f"IAM role {name}: {verb} (trust logs.{r.region}.amazonaws.com; put records into {o.stream})"
        )
        return
    trust = logs_trust_policy(r.region)
    if exists:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    else:
        r.role_arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Description="CloudWatch Logs puts EKS audit events into the Kinesis stream read by Falco",
        )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="put-records",
        PolicyDocument=put_records_policy(r.region, o.stream, r.account),
    )
    r.actions.append(f"IAM role {name}: {'updated' if exists else 'created'}")


def _subscription(
    o: SetupOptions, r: SetupResult, logs: Any, cluster: str, sleep: Callable[[float], None]
) -> None:
    group = f"/aws/eks/{cluster}/cluster"
    try:
        filters = logs.describe_subscription_filters(logGroupName=group).get("subscriptionFilters", [])
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise SetupError(
                f"log group {group} not found in {r.region}: enable audit logging on cluster {cluster} "
                "first: " + enable_audit_command(cluster, r.region)
            ) from None
        raise
    done = put_subscription_filter(
        logs,
        filters,
        group=group,
        name=FILTER_NAME,
        pattern=o.filter_pattern,
        destination_arn=r.stream_arn,
        role_arn=r.role_arn,
        dry_run=o.dry_run,
        wait_s=o.wait_s,
        sleep=sleep,
    )
    r.actions.append(f"subscription {group} → {o.stream}: {done}")


def falco_yaml(stream_arn: str, region: str, clusters: tuple[str, ...]) -> str:
    """The plugin entry; `clusters` as stream_clusters names them (ACCOUNT/NAME for another account)."""
    return "\n".join(
        [
            "plugins:",
            "  - name: k8saudit-eks",
            "    library_path: /usr/share/falco/plugins/libk8saudit-eks-py.so",
            "    init_config:",
            f"      region: {region}",
            f"      stream_clusters: {','.join(clusters)}",
            "      checkpoint_file: /var/lib/falco/k8saudit-eks-stream.json",
            f"    open_params: kinesis://{stream_arn}",
        ]
    )


def reader_policy_for(r: SetupResult, stream: str) -> str:
    return reader_policy(r.region, stream, r.account)
