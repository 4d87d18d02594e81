"""init_config → PluginConfig: defaults, environment fallbacks, JSON schema and messages naming the key."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields
from typing import Any, cast

import orjson

from k8saudit_eks_py import account_roles, log
from k8saudit_eks_py.errors import ConfigError

# (key, JSON type, default, description). The first seven keys are the official k8saudit-eks keys with
# the same types; every key is optional and unknown keys are accepted, as with the Go plugin.
_SPEC: tuple[tuple[str, str, Any, str], ...] = (
    ("profile", "string", "", "AWS shared-config profile. Default: $AWS_PROFILE, then $AWS_DEFAULT_PROFILE."),
    (
        "region",
        "string",
        "",
        "AWS region. Default: $AWS_REGION, then $AWS_DEFAULT_REGION, then the profile's.",
    ),
    ("buffer_size", "integer", 200, "Maximum number of events queued between CloudWatch and Falco."),
    ("shift", "integer", 1, "Seconds to look back on the first start when there is no checkpoint."),
    ("polling_interval", "integer", 5, "Seconds between two CloudWatch polls once caught up."),
    ("use_async", "boolean", True, "Accepted for compatibility; extraction here is always synchronous."),
    (
        "max_event_size",
        "integer",
        1048576,
        "Events larger than this many bytes are reduced to their metadata.",
    ),
    ("buffer_bytes", "integer", 33554432, "Maximum bytes of events queued between CloudWatch and Falco."),
    ("endpoint_url", "string", "", "CloudWatch Logs endpoint override (VPC endpoint, local test server)."),
    (
        "role_arn",
        "string",
        "",
        "IAM role to assume for reading the logs (cross-account); may contain {account} and {region}, "
        "filled in for each cluster named by ARN in open_params.",
    ),
    (
        "role_arns",
        "object",
        {},
        'Role to assume per account id for clusters named by ARN (e.g. {"111111111111": "arn:aws:iam::'
        '111111111111:role/falco-reader"}); overrides role_arn for those accounts.',
    ),
    (
        "cross_account",
        "string",
        "role",
        "How clusters named by ARN in another account are read: role (assume role_arns / role_arn in "
        "that account) or observability (this account's credentials, CloudWatch cross-account "
        "observability, logGroupIdentifier).",
    ),
    ("external_id", "string", "", "External ID passed when assuming role_arn or role_arns."),
    ("role_session_name", "string", "k8saudit-eks-py", "Session name used when assuming role_arn."),
    ("log_group", "string", "", "Log group name or ARN; default /aws/eks/<cluster>/cluster."),
    ("log_stream_prefix", "string", "kube-apiserver-audit", "Only streams with this prefix are read."),
    ("filter_pattern", "string", "", "CloudWatch filter pattern applied server-side."),
    (
        "lookback",
        "integer",
        600,
        "How old (seconds) the first events of a stream found late may be and still be delivered.",
    ),
    ("checkpoint_file", "string", "", "File where the read position is kept across restarts."),
    (
        "max_api_calls_per_second",
        "number",
        2.0,
        "Cap on the calls per second of each CloudWatch Logs operation (FilterLogEvents, "
        "DescribeLogStreams: 5/s quota each, per account and Region).",
    ),
    (
        "coordination_table",
        "string",
        "",
        "DynamoDB table (name or ARN) for leases and checkpoints shared by several replicas.",
    ),
    ("coordination_endpoint_url", "string", "", "DynamoDB endpoint override for coordination_table."),
    ("lease_duration", "integer", 20, "Seconds a replica's lease on a log group or shard lasts unrenewed."),
    ("replica_id", "string", "", "This replica's name in leases. Default: pod name / hostname plus pid."),
    ("kinesis_endpoint_url", "string", "", "Kinesis endpoint override for kinesis:// open_params."),
    (
        "stream_clusters",
        "string",
        "",
        "Stream mode: comma-separated clusters to accept from the stream. Default: all.",
    ),
    ("s3_endpoint_url", "string", "", "S3 endpoint override for s3:// open_params (archive replay)."),
)

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
}


@dataclass(frozen=True, slots=True)
class PluginConfig:
    profile: str = ""
    region: str = ""
    buffer_size: int = 200
    shift: int = 1
    polling_interval: int = 5
    use_async: bool = True
    max_event_size: int = 1048576
    buffer_bytes: int = 33554432
    endpoint_url: str = ""
    role_arn: str = ""
    role_arns: dict[str, str] = field(default_factory=dict)
    cross_account: str = "role"
    external_id: str = ""
    role_session_name: str = "k8saudit-eks-py"
    log_group: str = ""
    log_stream_prefix: str = "kube-apiserver-audit"
    filter_pattern: str = ""
    lookback: int = 600
    checkpoint_file: str = ""
    max_api_calls_per_second: float = 2.0
    coordination_table: str = ""
    coordination_endpoint_url: str = ""
    lease_duration: int = 20
    replica_id: str = ""
    kinesis_endpoint_url: str = ""
    stream_clusters: str = ""
    s3_endpoint_url: str = ""


assert [f.name for f in fields(PluginConfig)] == [s[0] for s in _SPEC], "spec and dataclass disagree"

_MINIMUMS = {
    "buffer_size": 1,
    "shift": 0,
    "polling_interval": 0,
    "max_event_size": 4096,
    "buffer_bytes": 65536,
    "lookback": 0,
    "lease_duration": 3,
}


def init_schema() -> dict[str, Any]:
    """JSON schema of init_config (what Falco validates before init)."""
    properties: dict[str, Any] = {}
    for key, json_type, default, description in _SPEC:
        prop: dict[str, Any] = {"type": json_type, "default": default, "description": description}
        if key in _MINIMUMS:
            prop["minimum"] = _MINIMUMS[key]
        if key == "max_api_calls_per_second":
            prop["exclusiveMinimum"] = 0
        properties[key] = prop
    # `init_config: {}` reaches the plugin as the JSON text null, `init_config: ""` as an empty string:
    # both mean "all defaults" (maxLength only constrains a string root, properties an object root).
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": ["object", "null", "string"],
        "maxLength": 0,
        "properties": properties,
        "additionalProperties": True,
    }


def init_schema_json() -> str:
    return orjson.dumps(init_schema()).decode()


def _check(key: str, json_type: str, value: Any) -> Any:
    allowed = _JSON_TYPES[json_type]
    # bool is an int subclass in Python; JSON true is never an integer.
    if isinstance(value, bool) != (json_type == "boolean") or not isinstance(value, allowed):
        raise ConfigError(
            f"init_config key '{key}' must be a JSON {json_type}, got {orjson.dumps(value).decode()}"
        )
    if json_type in ("integer", "number"):
        number = cast(float, value)
        minimum = _MINIMUMS.get(key)
        if minimum is not None and number < minimum:
            raise ConfigError(f"init_config key '{key}' must be at least {minimum}, got {value}")
        if key == "max_api_calls_per_second" and number <= 0:
            raise ConfigError(f"init_config key '{key}' must be greater than 0, got {value}")
        if json_type == "number":
            return float(number)
    return value


def _env_first(*names: str) -> str:
    for name in names:
        value = os.environ.get(name, "")
        if value:
            return value
    return ""


def _warn_unknown_keys(raw: dict[str, Any]) -> None:
    """Unknown keys stay accepted (as with the Go plugin), but a misspelt one must not go unnoticed."""
    known = [s[0] for s in _SPEC]
    for key in raw:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "see the configuration table in the README"
        log.warning(f"init_config key '{key}' is not a key of this plugin and is ignored; {hint}")


def parse_config(text: str) -> PluginConfig:
    """Parse the init_config string Falco passes: "", "null" (`init_config: {}`) and "{}" mean defaults."""
    text = text.strip()
    if text:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"init_config is not valid JSON ({exc}); write it as a YAML map") from None
    else:
        raw = {}
    if raw is None or raw == "":
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("init_config must be a JSON object (a YAML map in falco.yaml)")
    _warn_unknown_keys(raw)
    values: dict[str, Any] = {}
    for key, json_type, _default, _ in _SPEC:
        if key in raw and raw[key] is not None:
            values[key] = _check(key, json_type, raw[key])
    if not values.get("profile"):
        values["profile"] = _env_first("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    if not values.get("region"):
        values["region"] = _env_first("AWS_REGION", "AWS_DEFAULT_REGION")
    _check_accounts(values)
    return PluginConfig(**values)


def _check_accounts(values: dict[str, Any]) -> None:
    """role_arn (maybe a template), role_arns and cross_account: fail init with the fix."""
    problem = account_roles.template_problem(values.get("role_arn", "")) or account_roles.role_arns_problem(
        values.get("role_arns", {})
    )
    if problem:
        raise ConfigError(problem)
    mode = values.get("cross_account", "role")
    if mode not in account_roles.CROSS_ACCOUNT_MODES:
        raise ConfigError(f"init_config key 'cross_account' must be 'role' or 'observability', got {mode!r}")


def config_table_markdown() -> str:
    """The README's configuration table, generated from the same spec as the schema."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, json_type, default, description in _SPEC:
        shown = orjson.dumps(default).decode()
        rows.append(f"| `{key}` | {json_type} | `{shown}` | {description} |")
    return "\n".join(rows)
