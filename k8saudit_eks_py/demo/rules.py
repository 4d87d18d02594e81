"""Four stock k8s_audit rules, as Python conditions over field values extracted by the plugin.

Each mirrors the condition of the rule of the same name in falcosecurity/plugins k8s_audit_rules.yaml
closely enough for the demo: it reads the same ka.* fields, through the real .so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from k8saudit_eks_py.host import Value

__all__ = ["FIELDS_USED", "RULES", "Rule", "matches"]

Get = Callable[[str], Value]


def _is(value: Value, *wanted: str) -> bool:
    return isinstance(value, str) and value in wanted


def _any(value: Value, wanted: str) -> bool:
    return isinstance(value, tuple) and wanted in value


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    condition: str  # the Falco condition it stands for, shown in the demo's legend
    match: Callable[[Get], bool]


RULES: tuple[Rule, ...] = (
    Rule(
        "Attach/Exec Pod",
        "ka.target.resource=pods and ka.target.subresource in (exec,attach) and ka.verb=create",
        lambda g: (
            _is(g("ka.target.resource"), "pods")
            and _is(g("ka.target.subresource"), "exec", "attach")
            and _is(g("ka.verb"), "create")
        ),
    ),
    Rule(
        "Create Privileged Pod",
        "ka.target.resource=pods and ka.verb=create and ka.req.pod.containers.privileged intersects (true)",
        lambda g: (
            _is(g("ka.target.resource"), "pods")
            and _is(g("ka.verb"), "create")
            and _any(g("ka.req.pod.containers.privileged"), "true")
        ),
    ),
    Rule(
        "Attach to cluster-admin Role",
        "ka.target.resource=clusterrolebindings and ka.verb=create and ka.req.binding.role=cluster-admin",
        lambda g: (
            _is(g("ka.target.resource"), "clusterrolebindings")
            and _is(g("ka.verb"), "create")
            and _is(g("ka.req.binding.role"), "cluster-admin")
        ),
    ),
    Rule(
        "Anonymous Request Allowed",
        "ka.user.name=system:anonymous and ka.auth.decision=allow "
        "and not ka.uri in (/healthz,/livez,/readyz)",
        lambda g: (
            _is(g("ka.user.name"), "system:anonymous")
            and _is(g("ka.auth.decision"), "allow")
            and not _is(g("ka.uri"), "/healthz", "/livez", "/readyz")
        ),
    ),
)

FIELDS_USED = (
    "ka.target.resource",
    "ka.target.subresource",
    "ka.verb",
    "ka.req.pod.containers.privileged",
    "ka.req.binding.role",
    "ka.user.name",
    "ka.auth.decision",
    "ka.uri",
)


def matches(get: Get) -> list[str]:
    """Names of the rules whose condition holds; `get` extracts a field (cached by the caller)."""
    return [rule.name for rule in RULES if rule.match(get)]
