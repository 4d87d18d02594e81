"""Realistic EKS audit events for the demo: a quiet cluster's normal traffic plus four attack-like requests.

Pure: build(now_ns, seed) returns audit.k8s.io/v1 Event dicts with stageTimestamp-ordered times in the
two minutes before `now_ns`; the same seed gives the same events.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["ACCOUNT", "ATTACKER", "DemoEvent", "build"]

ACCOUNT = "111122223333"
ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/mallory"
_K8S = "v1.30.4-eks-a737599"
_NODES = ("ip-10-0-12-34.eu-west-1.compute.internal", "ip-10-0-47-201.eu-west-1.compute.internal")
_CM = "system:kube-controller-manager"
_RBAC = 'RBAC: allowed by ClusterRoleBinding "{b}" of ClusterRole "{r}" to {k} "{s}"'


@dataclass(frozen=True, slots=True)
class DemoEvent:
    event: dict[str, Any]
    attack: str  # "" for normal traffic, else the stock rule it is meant to trigger


def _ts(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}Z"


def _user(name: str, groups: list[str], arn: str = "") -> dict[str, Any]:
    user: dict[str, Any] = {"username": name, "groups": groups}
    if arn:
        user["uid"] = (
            f"aws-iam-authenticator:{ACCOUNT}:AROA{uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper()}"
        )
        user["extra"] = {
            "arn": [arn],
            "canonicalArn": [
                arn.rsplit("/", 1)[0].replace(":sts::", ":iam::").replace("assumed-role", "role")
            ],
            "sessionName": [arn.rsplit("/", 1)[-1]],
            "accessKeyId": ["ASIAEXAMPLEEXAMPLE01"],
        }
    return user


def _sa(namespace: str, name: str) -> dict[str, Any]:
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    }


def _event(
    rng: random.Random,
    ns: int,
    *,
    verb: str,
    uri: str,
    user: dict[str, Any],
    agent: str,
    ip: str,
    ref: dict[str, Any],
    code: int = 200,
    reason: str = "",
    level: str = "Metadata",
    request: dict[str, Any] | None = None,
    decision: str = "allow",
) -> dict[str, Any]:
    received = ns - rng.randint(1_000_000, 40_000_000)
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
    }
    if request is not None:
        event["requestObject"] = request
    event["requestReceivedTimestamp"] = _ts(received)
    event["stageTimestamp"] = _ts(ns)
    event["annotations"] = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
    return event


def _workload(rng: random.Random, times: list[int]) -> list[dict[str, Any]]:
    """Controllers, kubelets, coredns and a person running kubectl: what a quiet cluster logs."""
    out: list[dict[str, Any]] = []
    t = iter(times)
    for _ in range(4):  # leader-election lease renewals
        for who, agent in (
            (_CM, f"kube-controller-manager/{_K8S} (linux/amd64) kubernetes/a737599/leader-election"),
            (
                "system:kube-scheduler",
                f"kube-scheduler/{_K8S} (linux/amd64) kubernetes/a737599/leader-election",
            ),
        ):
            name = who.split(":")[-1]
            for verb in ("get", "update"):
                out.append(
                    _event(
                        rng,
                        next(t),
                        verb=verb,
                        uri=f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}?timeout=5s",
                        user=_user(who, ["system:authenticated"]),
                        agent=agent,
                        ip="10.0.118.20",
                        ref={
                            "resource": "leases",
                            "namespace": "kube-system",
                            "name": name,
                            "apiGroup": "coordination.k8s.io",
                            "apiVersion": "v1",
                        },
                        reason=_RBAC.format(b=who, r=who, k="User", s=who),
                    )
                )
    for node in _NODES:  # kubelets: node lease, node status, the root CA configmap watch
        user = _user(f"system:node:{node}", ["system:nodes", "system:authenticated"])
        agent = f"kubelet/{_K8S} (linux/amd64) kubernetes/a737599"
        ip = "10.0.12.34" if node == _NODES[0] else "10.0.47.201"
        out.append(
            _event(
                rng,
                next(t),
                verb="update",
                uri=f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s",
                user=user,
                agent=agent,
                ip=ip,
                ref={"resource": "leases", "namespace": "kube-node-lease", "name": node, "apiVersion": "v1"},
            )
        )
        out.append(
            _event(
                rng,
                next(t),
                verb="patch",
                uri=f"/api/v1/nodes/{node}/status?timeout=10s",
                user=user,
                agent=agent,
                ip=ip,
                ref={"resource": "nodes", "name": node, "apiVersion": "v1", "subresource": "status"},
            )
        )
        out.append(
            _event(
                rng,
                next(t),
                verb="watch",
                uri="/api/v1/namespaces/default/configmaps?allowWatchBookmarks=true"
                "&fieldSelector=metadata.name%3Dkube-root-ca.crt&resourceVersion=48213&timeout=7m12s"
                "&timeoutSeconds=432&watch=true",
                user=user,
                agent=agent,
                ip=ip,
                ref={
                    "resource": "configmaps",
                    "namespace": "default",
                    "name": "kube-root-ca.crt",
                    "apiVersion": "v1",
                },
            )
        )
    coredns = _sa("kube-system", "coredns")
    for verb, query in (
        ("list", "limit=500&resourceVersion=0"),
        ("watch", "allowWatchBookmarks=true&watch=true"),
    ):
        out.append(
            _event(
                rng,
                next(t),
                verb=verb,
                uri=f"/apis/discovery.k8s.io/v1/endpointslices?{query}",
                user=coredns,
                agent="coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
                ip="10.0.47.88",
                ref={"resource": "endpointslices", "apiGroup": "discovery.k8s.io", "apiVersion": "v1"},
                reason='RBAC: allowed by ClusterRoleBinding "system:coredns" of ClusterRole "system:coredns" '
                'to ServiceAccount "coredns/kube-system"',
            )
        )
    out.append(
        _event(
            rng,
            next(t),
            verb="list",
            uri="/api/v1/pods?fieldSelector=spec.nodeName%3Dip-10-0-12-34.eu-west-1.compute.internal&limit=500",
            user=_sa("kube-system", "aws-node"),
            agent="aws-vpc-cni/v1.18.3 (linux/amd64)",
            ip="10.0.12.34",
            ref={"resource": "pods", "apiVersion": "v1"},
        )
    )
    rs = _sa("kube-system", "replicaset-controller")
    out.append(
        _event(
            rng,
            next(t),
            verb="create",
            uri="/api/v1/namespaces/shop/pods",
            user=rs,
            agent=f"kube-controller-manager/{_K8S} (linux/amd64) kubernetes/a737599/system:serviceaccount:"
            "kube-system:replicaset-controller",
            ip="10.0.118.20",
            ref={"resource": "pods", "namespace": "shop", "name": "web-6d9f7c8b4-x2k8q", "apiVersion": "v1"},
            code=201,
            level="Request",
            request={
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {"name": "web-6d9f7c8b4-x2k8q", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "public.ecr.aws/nginx/nginx:1.27",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "securityContext": {"privileged": False, "runAsNonRoot": True},
                        }
                    ],
                    "serviceAccountName": "web",
                },
            },
        )
    )
    alice = f"arn:aws:sts::{ACCOUNT}:assumed-role/developers/alice"
    for verb, uri, ref in (
        ("list", "/api/v1/namespaces/shop/pods?limit=500", {"resource": "pods", "namespace": "shop"}),
        (
            "get",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            {"resource": "deployments", "namespace": "shop", "name": "web", "apiGroup": "apps"},
        ),
    ):
        out.append(
            _event(
                rng,
                next(t),
                verb=verb,
                uri=uri,
                user=_user(alice, ["developers", "system:authenticated"], arn=alice),
                agent="kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350",
                ip="203.0.113.10",
                ref={**ref, "apiVersion": "v1"},
                reason="EKS Access Policy: allowed by ClusterRoleBinding "
                f'"arn:aws:iam::{ACCOUNT}:role/developers+arn:aws:eks::aws:cluster-access-policy/'
                'AmazonEKSViewPolicy" of ClusterRole '
                '"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy" to User "alice"',
            )
        )
    return out


def _attacks(rng: random.Random, times: list[int]) -> list[DemoEvent]:
    t = iter(times)
    mallory = _user(ATTACKER, ["system:authenticated"], arn=ATTACKER)
    kubectl = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
    ip = "198.51.100.23"
    admin_reason = 'EKS Access Policy: allowed by ClusterRoleBinding "..." of ClusterRole "cluster-admin"'
    exec_event = _event(
        rng,
        next(t),
        verb="create",
        uri="/api/v1/namespaces/shop/pods/web-6d9f7c8b4-x2k8q/exec?command=sh&container=web&stdin=true"
        "&stdout=true&tty=true",
        user=mallory,
        agent=kubectl,
        ip=ip,
        ref={
            "resource": "pods",
            "namespace": "shop",
            "name": "web-6d9f7c8b4-x2k8q",
            "apiVersion": "v1",
            "subresource": "exec",
        },
        code=101,
        reason=admin_reason,
    )
    privileged = _event(
        rng,
        next(t),
        verb="create",
        uri="/api/v1/namespaces/default/pods?fieldManager=kubectl-run",
        user=mallory,
        agent=kubectl,
        ip=ip,
        ref={"resource": "pods", "namespace": "default", "name": "debug-tools", "apiVersion": "v1"},
        code=201,
        level="Request",
        reason=admin_reason,
        request={
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "debug-tools", "namespace": "default"},
            "spec": {
                "hostPID": True,
                "hostNetwork": True,
                "containers": [
                    {
                        "name": "debug-tools",
                        "image": "docker.io/library/alpine:3.20",
                        "command": ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh"],
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                    }
                ],
                "volumes": [{"name": "host", "hostPath": {"path": "/", "type": ""}}],
            },
        },
    )
    binding = _event(
        rng,
        next(t),
        verb="create",
        uri="/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?fieldManager=kubectl-create",
        user=mallory,
        agent=kubectl,
        ip=ip,
        ref={
            "resource": "clusterrolebindings",
            "name": "backup-operator",
            "apiGroup": "rbac.authorization.k8s.io",
            "apiVersion": "v1",
        },
        code=201,
        level="Request",
        reason=admin_reason,
        request={
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "backup-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        },
    )
    anonymous = _event(
        rng,
        next(t),
        verb="get",
        uri="/api/v1/namespaces/kube-system/secrets/aws-credentials",
        user={"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        agent="curl/8.5.0",
        ip="198.51.100.77",
        ref={
            "resource": "secrets",
            "namespace": "kube-system",
            "name": "aws-credentials",
            "apiVersion": "v1",
        },
        reason='RBAC: allowed by ClusterRoleBinding "anonymous-read" of ClusterRole "secret-reader" to User '
        '"system:anonymous"',
    )
    return [
        DemoEvent(exec_event, "Attach/Exec Pod"),
        DemoEvent(privileged, "Create Privileged Pod"),
        DemoEvent(binding, "Attach to cluster-admin Role"),
        DemoEvent(anonymous, "Anonymous Request Allowed"),
    ]


def build(now_ns: int, seed: int = 7) -> list[DemoEvent]:
    """Normal traffic with the attacks mixed in, sorted by stageTimestamp, all before now_ns."""
    rng = random.Random(seed)
    span = 120 * 1_000_000_000
    times = sorted(now_ns - span + rng.randrange(span - 2_000_000_000) for _ in range(32))
    picked = set(rng.sample(range(len(times) // 3, len(times)), 4))  # attacks after some normal traffic
    attack_times = [ts for i, ts in enumerate(times) if i in picked]
    workload_times = [ts for i, ts in enumerate(times) if i not in picked]
    events = [DemoEvent(e, "") for e in _workload(rng, workload_times)]
    events.extend(_attacks(rng, attack_times))
    events.sort(key=lambda d: d.event["stageTimestamp"])
    return events
