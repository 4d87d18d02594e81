"""The one list of the 100 ``ka.*`` fields: names, flags, descriptions, in get_fields order.

Names, order, list-ness and argument flags must equal the official k8saudit-eks 0.12.0 table so that
stock rules and field ids line up; descriptions and display names are our own wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

__all__ = ["ARG_INDEX", "ARG_KEY", "ARG_NONE", "FIELDS", "FIELDS_JSON", "FIELD_IDS", "Field"]

ARG_NONE: Final = 0
ARG_INDEX: Final = 1
ARG_KEY: Final = 2


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    is_list: bool
    arg: int  # ARG_NONE, ARG_INDEX or ARG_KEY
    required: bool
    display: str
    desc: str


def _f(
    name: str, display: str, desc: str, *, lst: bool = False, arg: int = ARG_NONE, req: bool = False
) -> Field:
    return Field(name, lst, arg, req, display, desc)


_POD = "For a pod in the request object"
_IDX = " An index argument keeps only the container with that position."


def _container_family(kind: str, who: str, *, host_port: bool) -> list[Field]:
    """The per-container fields of init and ephemeral containers (same shapes as containers)."""
    p = f"ka.req.pod.{kind}"
    i = _IDX
    fields = [
        _f(
            f"{p}.name",
            f"{who} Names",
            f"{_POD}: the name of each {who.lower()}.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.image",
            f"{who} Images",
            f"{_POD}: the image of each {who.lower()}.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.image.repository",
            f"{who} Repositories",
            f"Like {p}.image, cut before the first ':' and then the first '@' (e.g. falcosecurity/falco).{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.command",
            f"{who} Commands",
            f"{_POD}: the command of each {who.lower()}, its words joined by spaces.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.args",
            f"{who} Args",
            f"{_POD}: the args of each {who.lower()}, joined by spaces.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.privileged",
            f"{who} Privileged",
            f"{_POD}: securityContext.privileged of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.allow_privilege_escalation",
            f"{who} Allow Privilege Escalation",
            f"{_POD}: securityContext.allowPrivilegeEscalation of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.read_only_fs",
            f"{who} Read-only Root FS",
            f"{_POD}: securityContext.readOnlyRootFilesystem of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.run_as_user",
            f"{who} Run As User",
            f"{_POD}: securityContext.runAsUser of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.eff_run_as_user",
            f"{who} Effective Run As User",
            f"{_POD}: the uid each {who.lower()} starts with, combining container and pod settings, "
            f"0 when none is given (same lookup as the reference plugin).{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.run_as_group",
            f"{who} Run As Group",
            f"{_POD}: securityContext.runAsGroup of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.eff_run_as_group",
            f"{who} Effective Run As Group",
            f"{_POD}: the gid each {who.lower()} starts with, combining container and pod settings, "
            f"0 when none is given (same lookup as the reference plugin).{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.proc_mount",
            f"{who} Proc Mount",
            f"{_POD}: securityContext.procMount of each {who.lower()} that sets it.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.add_capabilities",
            f"{who} Added Capabilities",
            f"{_POD}: securityContext.capabilities.add of each {who.lower()}, as JSON text.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
        _f(
            f"{p}.host_port",
            f"{who} Host Ports",
            f"{_POD}: every port's hostPort (or containerPort when no hostPort) of each {who.lower()}.{i}",
            lst=True,
            arg=ARG_INDEX,
        ),
    ]
    # The reference table has host_port for init containers only.
    return fields if host_port else fields[:-1]


_INIT = _container_family("initContainers", "Init Container", host_port=True)
_EPHEMERAL = _container_family("ephemeralContainers", "Ephemeral Container", host_port=False)

FIELDS: Final[tuple[Field, ...]] = (
    _f("ka.auditid", "Audit Event ID", "The auditID of the audit event."),
    _f("ka.stage", "Audit Event Stage", "Stage of the request (RequestReceived, ResponseComplete, ...)."),
    _f(
        "ka.auth.decision", "Authorization Decision", "The authorization decision annotation (allow, forbid)."
    ),
    _f("ka.auth.reason", "Authorization Reason", "The authorization reason annotation."),
    _f(
        "ka.auth.openshift.decision",
        "OpenShift Authentication Decision",
        "The authentication.openshift.io/decision annotation.",
    ),
    _f(
        "ka.validations.admission.policy.failure",
        "Admission Policy Validation Failure",
        "The validation.policy.admission.k8s.io/validation_failure annotation.",
    ),
    _f(
        "ka.security.pod.violations",
        "Pod Security Violations",
        "The pod-security.kubernetes.io/audit-violations annotation.",
    ),
    _f(
        "ka.auth.openshift.username",
        "OpenShift Authentication Username",
        "The authentication.openshift.io/username annotation.",
    ),
    _f("ka.user.name", "User Name", "Name of the user who made the request."),
    _f("ka.user.groups", "User Groups", "Groups of the user who made the request.", lst=True),
    _f("ka.impuser.name", "Impersonated User Name", "Name of the user being impersonated."),
    _f("ka.verb", "Verb", "The action of the request (get, list, create, delete, ...)."),
    _f("ka.uri", "Request URI", "The request URI as sent by the client."),
    _f(
        "ka.uri.param",
        "Request URI Parameter",
        "The first value of a query parameter of the request URI, URL-decoded "
        "(ka.uri.param[watch] is true for /api?watch=true). No value when the URI or its query is malformed.",
        arg=ARG_KEY,
        req=True,
    ),
    _f("ka.target.name", "Target Name", "Name of the target object (objectRef)."),
    _f("ka.target.namespace", "Target Namespace", "Namespace of the target object (objectRef)."),
    _f("ka.target.resource", "Target Resource", "Resource of the target object (objectRef), e.g. pods."),
    _f(
        "ka.target.subresource",
        "Target Subresource",
        "Subresource of the target object (objectRef), e.g. exec.",
    ),
    _f(
        "ka.target.pod.name",
        "Target Pod Name",
        "Name of the pod a request on a pod itself creates, reads or changes (responseObject.metadata.name "
        "when the target resource is pods and there is no subresource).",
    ),
    _f(
        "ka.req.binding.subjects",
        "Binding Subjects",
        "For a (cluster) role binding in the request object: each subject, as JSON text.",
        lst=True,
    ),
    _f(
        "ka.req.binding.subjects.user_names",
        "Binding Subject User Names",
        "For a (cluster) role binding in the request object: the names of the User subjects.",
        lst=True,
    ),
    _f(
        "ka.req.binding.subjects.serviceaccount_names",
        "Binding Subject ServiceAccount Names",
        "For a (cluster) role binding in the request object: the names of the ServiceAccount subjects.",
        lst=True,
    ),
    _f(
        "ka.req.binding.subjects.serviceaccount_ns_names",
        "Binding Subject ServiceAccount Namespaced Names",
        "For a (cluster) role binding in the request object: namespace:name of each ServiceAccount "
        "subject that has a namespace.",
        lst=True,
    ),
    _f(
        "ka.req.binding.subjects.group_names",
        "Binding Subject Group Names",
        "For a (cluster) role binding in the request object: the names of the Group subjects.",
        lst=True,
    ),
    _f(
        "ka.req.binding.role",
        "Binding Role",
        "For a (cluster) role binding in the request object: the name of the referenced role.",
    ),
    _f(
        "ka.req.binding.subject.has_name",
        "Binding Subject Has Name",
        "Deprecated, kept for old rules: always true, whatever the name given.",
        arg=ARG_KEY,
        req=True,
    ),
    _f("ka.req.configmap.name", "ConfigMap Name", "For a configmap request: its name (objectRef)."),
    _f(
        "ka.req.configmap.obj",
        "ConfigMap Data",
        "For a configmap in the request object: its data, as JSON text.",
    ),
    _f(
        "ka.req.pod.containers.args",
        "Container Args",
        f"{_POD}: the args of each container, joined by spaces.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.command",
        "Container Commands",
        f"{_POD}: the command of each container, its words joined by spaces.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.name",
        "Container Names",
        f"{_POD}: the name of each container.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.image",
        "Container Images",
        f"{_POD}: the image of each container; no value if a container has no image.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.container.image",
        "Container Image",
        "Deprecated (use ka.req.pod.containers.image): the image of the first container.",
    ),
    _f(
        "ka.req.pod.containers.image.repository",
        "Container Repositories",
        f"Like ka.req.pod.containers.image, cut before the first ':' and then the first '@' "
        f"(e.g. falcosecurity/falco).{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.container.image.repository",
        "Container Repository",
        "Deprecated (use ka.req.pod.containers.image.repository): the repository of the first container.",
    ),
    _f("ka.req.pod.host_ipc", "Host IPC", f"{_POD}: spec.hostIPC."),
    _f("ka.req.pod.host_network", "Host Network", f"{_POD}: spec.hostNetwork."),
    _f(
        "ka.req.container.host_network",
        "Host Network (deprecated)",
        "Deprecated alias of ka.req.pod.host_network.",
    ),
    _f("ka.req.pod.host_pid", "Host PID", f"{_POD}: spec.hostPID."),
    _f(
        "ka.req.pod.containers.host_port",
        "Container Host Ports",
        f"{_POD}: every port's hostPort (or containerPort when no hostPort) of each container.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.privileged",
        "Container Privileged",
        f"{_POD}: securityContext.privileged of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.container.privileged",
        "Any Container Privileged",
        "Deprecated (use ka.req.pod.containers.privileged): true if any container sets privileged=true, "
        "else false.",
    ),
    _f(
        "ka.req.pod.containers.allow_privilege_escalation",
        "Container Allow Privilege Escalation",
        f"{_POD}: securityContext.allowPrivilegeEscalation of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.read_only_fs",
        "Container Read-only Root FS",
        f"{_POD}: securityContext.readOnlyRootFilesystem of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f("ka.req.pod.run_as_user", "Pod Run As User", f"{_POD}: the pod-level securityContext.runAsUser."),
    _f(
        "ka.req.pod.containers.run_as_user",
        "Container Run As User",
        f"{_POD}: securityContext.runAsUser of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.eff_run_as_user",
        "Container Effective Run As User",
        f"{_POD}: the uid each container starts with, combining container and pod settings, 0 when none "
        f"is given (same lookup as the reference plugin).{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f("ka.req.pod.run_as_group", "Pod Run As Group", f"{_POD}: the pod-level securityContext.runAsGroup."),
    _f(
        "ka.req.pod.containers.run_as_group",
        "Container Run As Group",
        f"{_POD}: securityContext.runAsGroup of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.eff_run_as_group",
        "Container Effective Run As Group",
        f"{_POD}: the gid each container starts with, combining container and pod settings, 0 when none "
        f"is given (same lookup as the reference plugin).{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.containers.proc_mount",
        "Container Proc Mount",
        f"{_POD}: securityContext.procMount of each container that sets it.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.role.rules",
        "Role Rules",
        "For a (cluster) role in the request object: each rule, as JSON text.",
        lst=True,
    ),
    _f(
        "ka.req.role.rules.apiGroups",
        "Role Rule API Groups",
        "For a (cluster) role in the request object: the apiGroups of its rules. An index argument keeps "
        "only the rule with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.role.rules.nonResourceURLs",
        "Role Rule Non-resource URLs",
        "For a (cluster) role in the request object: the nonResourceURLs of its rules. An index argument "
        "keeps only the rule with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.role.rules.verbs",
        "Role Rule Verbs",
        "For a (cluster) role in the request object: the verbs of its rules. An index argument keeps only "
        "the rule with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.role.rules.resources",
        "Role Rule Resources",
        "For a (cluster) role in the request object: the resources of its rules. An index argument keeps "
        "only the rule with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f("ka.req.pod.fs_group", "Pod FS Group", f"{_POD}: the pod-level securityContext.fsGroup."),
    _f(
        "ka.req.pod.supplemental_groups",
        "Pod Supplemental Groups",
        f"{_POD}: the pod-level securityContext.supplementalGroups.",
        lst=True,
    ),
    _f(
        "ka.req.pod.containers.add_capabilities",
        "Container Added Capabilities",
        f"{_POD}: securityContext.capabilities.add of each container, as JSON text.{_IDX}",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f("ka.req.service.type", "Service Type", "For a service in the request object: spec.type."),
    _f(
        "ka.req.service.ports",
        "Service Ports",
        "For a service in the request object: spec.ports as JSON text (one value for the whole list, "
        "like the reference plugin).",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.volumes.hostpath",
        "Volume Host Paths",
        f"{_POD}: the hostPath.path of each volume that has one. An index argument keeps only the volume "
        "with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.volume.hostpath",
        "Volume Uses Host Path",
        "Deprecated (use ka.req.pod.volumes.hostpath): true if any volume's hostPath.path equals the "
        "argument, or starts with it when the argument ends with '*'; else false.",
        arg=ARG_KEY,
        req=True,
    ),
    _f(
        "ka.req.pod.volumes.flexvolume_driver",
        "Volume FlexVolume Drivers",
        f"{_POD}: the flexVolume.driver of each volume that has one. An index argument keeps only the "
        "volume with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.req.pod.volumes.volume_type",
        "Volume Types",
        f"{_POD}: the type keys (every key but name, e.g. hostPath, secret) of each volume. An index "
        "argument keeps only the volume with that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f("ka.resp.name", "Response Object Name", "metadata.name of the response object."),
    _f("ka.response.code", "Response Code", "The HTTP status code of the response (responseStatus.code)."),
    _f("ka.response.reason", "Response Reason", "The reason of the response status, mostly set on failures."),
    _f("ka.useragent", "User Agent", "The user agent of the client that made the request."),
    _f(
        "ka.sourceips",
        "Source IPs",
        "The client IP addresses of the request (sourceIPs). An index argument keeps only that position.",
        lst=True,
        arg=ARG_INDEX,
    ),
    _f(
        "ka.cluster.name",
        "Cluster Name",
        "The cluster name: the event's cluster_name annotation, else the cluster the event was read from.",
    ),
    *_INIT,
    *_EPHEMERAL,
)

FIELD_IDS: Final[dict[str, int]] = {f.name: i for i, f in enumerate(FIELDS)}


def _field_json(f: Field) -> dict[str, object]:
    return {
        "name": f.name,
        "type": "string",
        "isList": f.is_list,
        "arg": {"isRequired": f.required, "isIndex": f.arg == ARG_INDEX, "isKey": f.arg == ARG_KEY},
        "display": f.display,
        "desc": f.desc,
    }


FIELDS_JSON: Final[str] = orjson.dumps([_field_json(f) for f in FIELDS]).decode()
