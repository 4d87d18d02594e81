"""Which IAM role reads each account's logs: `role_arns` (one per account id) or `role_arn`, whose
`{account}` and `{region}` are filled in per cluster, so that one role name works in every member account.
Pure functions on the init_config values; the problems they find fail init with the fix."""

from __future__ import annotations

import re
import string

__all__ = [
    "ACCOUNT",
    "CROSS_ACCOUNT_MODES",
    "is_template",
    "role_arns_problem",
    "role_for",
    "template_problem",
]

ACCOUNT = re.compile(r"\d{12}")
CROSS_ACCOUNT_MODES = ("role", "observability")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}")
_PLACEHOLDERS = frozenset({"account", "region"})


def is_template(role_arn: str) -> bool:
    """True when role_arn names a role per account ({account} or {region} in it)."""
    return "{" in role_arn


def template_problem(role_arn: str) -> str | None:
    """Why role_arn is neither a role ARN nor a template of one, or None."""
    if not role_arn:
        return None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(role_arn) if name is not None}
    except ValueError as exc:
        return f"init_config key 'role_arn' {role_arn!r} is not a valid template ({exc})"
    unknown = names - _PLACEHOLDERS
    if unknown:
        return (
            f"init_config key 'role_arn' {role_arn!r} uses {{{sorted(unknown)[0]}}}: only {{account}} and "
            "{region} are filled in"
        )
    sample = role_arn.format(account="111111111111", region="us-east-1")
    if not _ROLE_ARN.fullmatch(sample):
        return (
            f"init_config key 'role_arn' {role_arn!r} is not an IAM role ARN "
            "(arn:aws:iam::ACCOUNT:role/NAME; ACCOUNT may be {account})"
        )
    return None


def role_arns_problem(role_arns: dict[str, object]) -> str | None:
    """Why the role_arns map is wrong (keys are 12-digit account ids, values role ARNs of that account)."""
    for account, role in role_arns.items():
        if not ACCOUNT.fullmatch(account):
            return f"init_config key 'role_arns': {account!r} is not a 12-digit AWS account id"
        if not isinstance(role, str):
            return f"init_config key 'role_arns': the role of account {account} must be a string (a role ARN)"
        m = _ROLE_ARN.fullmatch(role)
        if m is None:
            return f"init_config key 'role_arns': {role!r} (account {account}) is not an IAM role ARN"
        if m.group(1) != account:
            return (
                f"init_config key 'role_arns': the role {role} of account {account} is in account "
                f"{m.group(1)}; name a role of account {account}"
            )
    return None


def role_for(role_arn: str, role_arns: dict[str, str], account: str, region: str) -> str:
    """The role that reads `account`'s logs in `region`: its role_arns entry, else role_arn filled in;
    "" when neither names one (this plugin's own credentials then read that account)."""
    if account in role_arns:
        return role_arns[account]
    if is_template(role_arn):
        return role_arn.format(account=account, region=region)
    return ""
