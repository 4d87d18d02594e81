"""The checks every `check` starts with: a usable region, credentials (sts:GetCallerIdentity) and the
optional assumed role. Each returns False when the checks after it cannot run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from k8saudit_eks_py.aws_setup.aws_errors import BAD_CREDENTIALS, error_code, error_message
from k8saudit_eks_py.aws_setup.check_context import FAIL, PASS, WARN, CheckContext
from k8saudit_eks_py.eks_names import region_problem

__all__ = ["check_assume_role", "check_credentials", "check_region"]


def check_region(ctx: CheckContext, session_factory: Callable[..., Any]) -> bool:
    o = ctx.options
    try:
        ctx.session = session_factory(profile_name=o.profile or None, region_name=o.region or None)
    except botocore.exceptions.ProfileNotFound as exc:
        ctx.add(
            "AWS profile", FAIL, str(exc), "pass an existing --profile (see `aws configure list-profiles`)"
        )
        return False
    ctx.region = ctx.session.region_name or ""
    if not ctx.region:
        ctx.add("AWS region", FAIL, "no region configured", "pass --region REGION or set AWS_REGION")
        return False
    problem = region_problem(ctx.region)
    if problem is None:
        ctx.add("AWS region", PASS, ctx.region)
        return True
    fatal, why = problem
    if not fatal:
        ctx.add("AWS region", WARN, why)
        return True
    ctx.add("AWS region", FAIL, why, "pass --region with the cluster's region, e.g. --region eu-west-1")
    return False


def check_credentials(ctx: CheckContext) -> bool:
    try:
        identity = ctx.client("sts").get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        ctx.add(
            "AWS credentials",
            FAIL,
            "no credentials found",
            "on EKS: annotate the Falco service account with eks.amazonaws.com/role-arn (IRSA) or use "
            "EKS Pod Identity; elsewhere: set AWS_PROFILE, run `aws sso login` or `aws configure`",
        )
        return False
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fix = "refresh or replace the credentials (expired session? wrong keys?)"
        if error_code(exc) not in BAD_CREDENTIALS:
            fix = "check network access to STS and the credentials in use"
        ctx.add("AWS credentials", FAIL, error_message(exc), fix)
        return False
    ctx.account, ctx.principal = identity.get("Account", ""), identity.get("Arn", "")
    ctx.add("AWS credentials", PASS, f"{ctx.principal} (account {ctx.account})")
    return True


def check_assume_role(ctx: CheckContext, session_factory: Callable[..., Any]) -> bool:
    o = ctx.options
    try:
        extra = {"ExternalId": o.external_id} if o.external_id else {}
        creds = ctx.client("sts").assume_role(
            RoleArn=o.role_arn, RoleSessionName="k8saudit-eks-py-check", **extra
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ctx.principal or "<caller ARN>"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        ctx.add(
            f"assume role {o.role_arn}",
            FAIL,
            error_message(exc),
            f"allow sts:AssumeRole on {o.role_arn} for {ctx.principal}, and let the role trust it:\n"
            + json.dumps(trust, indent=2),
        )
        return False
    c = creds["Credentials"]
    ctx.session = session_factory(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=ctx.region,
    )
    ctx.principal = creds.get("AssumedRoleUser", {}).get("Arn", o.role_arn)
    ctx.add(f"assume role {o.role_arn}", PASS, ctx.principal)
    return True
