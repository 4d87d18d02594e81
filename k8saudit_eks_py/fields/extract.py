"""One value function per field, reproducing the reference plugin's extraction rules.

Every function has the signature ``fn(event, arg) -> Value`` where ``event.root`` is the audit event
object (never None here) and ``arg`` is already parsed by :mod:`k8saudit_eks_py.fields` (an int for
index fields, -1 meaning "no index"; the raw text or None for key fields).

Rules of the reference plugin worth knowing (all reproduced here):

* a value that is not a JSON string is rendered as its JSON text; JSON null inside a list is "null";
* a walk down ``requestObject.spec.<list>...`` fans out over every array met on the way; with an index
  argument it takes that element of every array met instead; a missing key there is a hole that most
  list fields skip, but ``containers.image`` fails as a whole (no value) when any container lacks one;
* the ``eff_run_as_*`` fields look for ``runAsUser``/``runAsGroup`` directly under the pod spec and
  under each container (not under ``securityContext``), so they nearly always give "0" per container;
* ``ka.req.service.ports`` gives one value: the whole ports array as JSON text (indexing never applies
  because the array is the last key of the walk);
* ``ka.target.pod.name`` is ``responseObject.metadata.name``, but only for a request on a pod itself
  (``objectRef.resource`` is "pods" and ``objectRef.subresource`` absent or empty).

Each field has a group (:data:`GROUPS`: :data:`ROOT`, :data:`REQUEST`, :data:`SPEC`): a REQUEST field
has no value unless the event has a usable ``requestObject``, a SPEC one unless ``requestObject.spec``
is usable too (see ``AuditEvent.shape``), and a field of :data:`REQUEST_KEYS` / :data:`SPEC_KEYS`
none unless requestObject / spec has that key; this lets ``extract_values`` skip them wholesale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from k8saudit_eks_py.audit import SHAPE_GENERIC
from k8saudit_eks_py.fields import uri

if TYPE_CHECKING:
    from k8saudit_eks_py.audit import AuditEvent

__all__ = [
    "EXTRACTORS",
    "GROUPS",
    "MISSING",
    "NO_INDEX",
    "REQUEST",
    "REQUEST_KEYS",
    "ROOT",
    "SPEC",
    "SPEC_KEYS",
]

Value = None | str | bytes | tuple[str | bytes, ...]
Extractor = Callable[["AuditEvent", Any], Value]

MISSING: Final = object()  # a key that is not there (JSON null is None)
NO_INDEX: Final = -1
ROOT: Final = 0
REQUEST: Final = 1
SPEC: Final = 2
_SPEC_PATH: Final = ("requestObject", "spec")
_SPEC_LISTS: Final = ("containers", "initContainers", "ephemeralContainers")


def _get(v: object, key: str) -> object:
    return v.get(key, MISSING) if type(v) is dict else MISSING


def _path(v: object, keys: tuple[str, ...]) -> object:
    for k in keys:
        if type(v) is not dict:
            return MISSING
        v = v.get(k, MISSING)
    return v


def _s(ev: AuditEvent, v: object) -> str:
    return v if type(v) is str else ev.render(v)


def _walk(v: object, idx: int, keys: tuple[str, ...], start: int = 0) -> list[object] | None:
    """The reference walk over keys; None = not available, MISSING entries = holes under a fan-out."""
    for i in range(start, len(keys)):
        if type(v) is list:
            if idx == NO_INDEX:
                out: list[object] = []
                for item in v:
                    sub = _walk(item, idx, keys, i)
                    if sub is None:
                        out.append(MISSING)
                    else:
                        out.extend(sub)
                return out
            if idx >= len(v):
                return None
            v = v[idx]
        k = keys[i]
        if k:
            v = v.get(k, MISSING) if type(v) is dict else MISSING
            if v is MISSING:
                return None
    return [v]


def _spec_walk_from(ev: AuditEvent, idx: int, rest: tuple[str, ...]) -> list[object] | None:
    """The reference walk of requestObject.spec.<rest>, starting from the cached spec when possible."""
    spec = ev.spec
    if spec is not None:
        return _walk(spec, idx, rest)
    if ev.shape == SHAPE_GENERIC:
        return _walk(ev.root, idx, _SPEC_PATH + rest)
    return None


def _strings_skip_holes(ev: AuditEvent, values: list[object]) -> Value:
    out = tuple(_s(ev, v) for v in values if v is not MISSING)
    return out or None


# --- plain key paths -------------------------------------------------------------------------------


def _scalar(*keys: str) -> Extractor:
    if len(keys) == 1:
        (key,) = keys

        def one(ev: AuditEvent, arg: Any) -> Value:
            v = ev.root.get(key, MISSING)  # type: ignore[union-attr]
            return None if v is MISSING else v if type(v) is str else ev.render(v)

        return one
    if len(keys) == 2:
        k1, k2 = keys

        def two(ev: AuditEvent, arg: Any) -> Value:
            v = ev.root.get(k1)  # type: ignore[union-attr]
            if type(v) is not dict:
                return None
            v = v.get(k2, MISSING)
            return None if v is MISSING else v if type(v) is str else ev.render(v)

        return two

    def fn(ev: AuditEvent, arg: Any) -> Value:
        v = _path(ev.root, keys)
        return None if v is MISSING else _s(ev, v)

    return fn


def _spec_scalar(*keys: str) -> Extractor:
    """A plain key path under requestObject.spec (no fan-out: Get on an array finds nothing)."""

    def fn(ev: AuditEvent, arg: Any) -> Value:
        v = _path(ev.spec, keys)
        return None if v is MISSING else _s(ev, v)

    return fn


def _spec_listed(*keys: str) -> Extractor:
    def fn(ev: AuditEvent, arg: Any) -> Value:
        v = _path(ev.spec, keys)
        if type(v) is not list:
            return None
        return tuple(_s(ev, x) for x in v) or None

    return fn


def _listed(*keys: str) -> Extractor:
    def fn(ev: AuditEvent, arg: Any) -> Value:
        v = _path(ev.root, keys)
        if type(v) is not list:
            return None
        return tuple(_s(ev, x) for x in v) or None

    return fn


def _cluster_name(ev: AuditEvent, arg: Any) -> Value:
    v = _path(ev.root, ("annotations", "cluster_name"))
    if v is MISSING:
        return ev.default_cluster or None
    return _s(ev, v)


_response_name = _scalar("responseObject", "metadata", "name")


def _target_pod_name(ev: AuditEvent, arg: Any) -> Value:
    ref = _get(ev.root, "objectRef")
    if _get(ref, "resource") != "pods" or _get(ref, "subresource") not in (MISSING, None, ""):
        return None
    return _response_name(ev, arg)


def _uri_param(ev: AuditEvent, arg: Any) -> Value:
    if arg is None:
        return None
    params = ev.cache.get("uri", MISSING)
    if params is MISSING:
        v = _get(ev.root, "requestURI")
        params = None if v is MISSING else uri.first_query_values(_s(ev, v))
        ev.cache["uri"] = params
    if params is None:
        return None
    return params.get(arg)  # type: ignore[no-any-return]


def _has_name(ev: AuditEvent, arg: Any) -> Value:
    return None if arg is None else "true"


def _sourceips(ev: AuditEvent, arg: int) -> Value:
    # Fixed on purpose (see README): the top-level sourceIPs, not requestObject.rules[].sourceIPs.
    v = _get(ev.root, "sourceIPs")
    if type(v) is not list:
        return None
    if arg != NO_INDEX:
        return (_s(ev, v[arg]),) if arg < len(v) else None
    return tuple(_s(ev, x) for x in v) or None


# --- role bindings -----------------------------------------------------------------------------------


def _subjects(kind: str, fmt: Callable[[AuditEvent, dict[str, Any]], str | None]) -> Extractor:
    def fn(ev: AuditEvent, arg: Any) -> Value:
        subjects = _path(ev.root, ("requestObject", "subjects"))
        if type(subjects) is not list:
            return None
        out = []
        for sub in subjects:
            if type(sub) is dict and sub.get("kind") == kind:
                text = fmt(ev, sub)
                if text is not None:
                    out.append(text)
        return tuple(out) or None

    return fn


def _subject_name(ev: AuditEvent, sub: dict[str, Any]) -> str | None:
    name = sub.get("name", MISSING)
    return None if name is MISSING else _s(ev, name)


def _subject_ns_name(ev: AuditEvent, sub: dict[str, Any]) -> str | None:
    name = sub.get("name", MISSING)
    ns = sub.get("namespace", MISSING)
    if name is MISSING or ns is MISSING:
        return None
    return f"{_s(ev, ns)}:{_s(ev, name)}"


# --- role rules --------------------------------------------------------------------------------------


def _rules(key: str) -> Extractor:
    keys = ("requestObject", "rules", key)

    def fn(ev: AuditEvent, arg: int) -> Value:
        found = _walk(ev.root, arg, keys)
        if found is None:
            return None
        out: list[str] = []
        for v in found:
            if type(v) is list:
                out.extend(_s(ev, x) for x in v)
        return tuple(out) or None

    return fn


# --- pod spec ---------------------------------------------------------------------------------------


def _spec_walk(*keys: str) -> Extractor:
    """Walk requestObject.spec.<keys> and return every value found, skipping holes."""

    def fn(ev: AuditEvent, arg: int) -> Value:
        found = _spec_walk_from(ev, arg, keys)
        return None if found is None else _strings_skip_holes(ev, found)

    return fn


def _images(ev: AuditEvent, idx: int, ckey: str) -> tuple[str, ...] | None:
    found = _spec_walk_from(ev, idx, (ckey, "image"))
    if found is None or MISSING in found:
        return None  # a container without image fails the whole field in the reference plugin
    return tuple(_s(ev, v) for v in found)


def _repository(image: str) -> str:
    return image.split(":", 1)[0].split("@", 1)[0]


def _pod_images(ckey: str) -> Extractor:
    def fn(ev: AuditEvent, arg: int) -> Value:
        return _images(ev, arg, ckey) or None

    return fn


def _pod_repositories(ckey: str) -> Extractor:
    def fn(ev: AuditEvent, arg: int) -> Value:
        images = _images(ev, arg, ckey)
        return tuple(_repository(i) for i in images) or None if images else None

    return fn


def _first_image(ev: AuditEvent, arg: Any) -> Value:
    images = _images(ev, 0, "containers")
    return images[0] if images else None


def _first_repository(ev: AuditEvent, arg: Any) -> Value:
    images = _images(ev, 0, "containers")
    return _repository(images[0]) if images else None


def _host_ports(ckey: str) -> Extractor:
    keys = (ckey, "ports")

    def fn(ev: AuditEvent, arg: int) -> Value:
        found = _spec_walk_from(ev, arg, keys)
        if found is None:
            return None
        out: list[str] = []
        for ports in found:
            if ports is MISSING:
                continue
            if type(ports) is not list:
                return None
            for port in ports:
                p = _get(port, "hostPort")
                if p is MISSING:
                    p = _get(port, "containerPort")
                    if p is MISSING:
                        continue
                out.append(_s(ev, p))
        return tuple(out) or None

    return fn


def _any_privileged(ev: AuditEvent, arg: Any) -> Value:
    found = _spec_walk_from(ev, NO_INDEX, ("containers", "securityContext", "privileged"))
    if found is None:
        return None
    return "true" if any(v is True for v in found) else "false"


def _effective(ckey: str, key: str) -> Extractor:
    pod_keys = ("requestObject", "spec", key)
    keys = (ckey, key)

    def fn(ev: AuditEvent, arg: int) -> Value:
        found = _spec_walk_from(ev, arg, keys)
        if found is None:
            return None
        pod = _path(ev.root, pod_keys)
        default = "0" if pod is MISSING else _s(ev, pod)
        return tuple(default if v is MISSING else _s(ev, v) for v in found) or None

    return fn


def _joined(ckey: str, key: str) -> Extractor:
    keys = (ckey, key)

    def fn(ev: AuditEvent, arg: int) -> Value:
        found = _spec_walk_from(ev, arg, keys)
        if found is None:
            return None
        out: list[str] = []
        for v in found:
            if v is MISSING:
                continue
            if type(v) is list:
                out.append(" ".join(_s(ev, x) for x in v))
            else:
                out.append(_s(ev, v))
        return tuple(out) or None

    return fn


def _volume_hostpath(ev: AuditEvent, arg: Any) -> Value:
    if not arg:
        return None  # no argument; the reference plugin crashes on an empty one
    found = _spec_walk_from(ev, NO_INDEX, ("volumes", "hostPath", "path"))
    if found is None:
        return None
    prefix = arg[:-1] if arg.endswith("*") else None
    for v in found:
        if v is MISSING:
            continue
        path = _s(ev, v)
        if path == arg or (prefix is not None and path.startswith(prefix)):
            return "true"
    return "false"


def _volume_types(ev: AuditEvent, arg: int) -> Value:
    found = _spec_walk_from(ev, arg, ("volumes", ""))
    if found is None:
        return None
    out: list[str] = []
    for v in found:
        if type(v) is dict:
            out.extend(k for k in v if k != "name")
    return tuple(out) or None


def _container_family(ckey: str) -> dict[str, Extractor]:
    """Extractors of the ka.req.pod.<ckey>.* fields, keyed by the name suffix."""
    sc = "securityContext"
    return {
        "name": _spec_walk(ckey, "name"),
        "image": _pod_images(ckey),
        "image.repository": _pod_repositories(ckey),
        "command": _joined(ckey, "command"),
        "args": _joined(ckey, "args"),
        "privileged": _spec_walk(ckey, sc, "privileged"),
        "allow_privilege_escalation": _spec_walk(ckey, sc, "allowPrivilegeEscalation"),
        "read_only_fs": _spec_walk(ckey, sc, "readOnlyRootFilesystem"),
        "run_as_user": _spec_walk(ckey, sc, "runAsUser"),
        "eff_run_as_user": _effective(ckey, "runAsUser"),
        "run_as_group": _spec_walk(ckey, sc, "runAsGroup"),
        "eff_run_as_group": _effective(ckey, "runAsGroup"),
        "proc_mount": _spec_walk(ckey, sc, "procMount"),
        "add_capabilities": _spec_walk(ckey, sc, "capabilities", "add"),
        "host_port": _host_ports(ckey),
    }


def _build() -> tuple[dict[str, Extractor], dict[str, int], dict[str, str], dict[str, str]]:
    ann = "annotations"
    ro = "requestObject"
    root: dict[str, Extractor] = {
        "ka.auditid": _scalar("auditID"),
        "ka.stage": _scalar("stage"),
        "ka.auth.decision": _scalar(ann, "authorization.k8s.io/decision"),
        "ka.auth.reason": _scalar(ann, "authorization.k8s.io/reason"),
        "ka.auth.openshift.decision": _scalar(ann, "authentication.openshift.io/decision"),
        "ka.validations.admission.policy.failure": _scalar(
            ann, "validation.policy.admission.k8s.io/validation_failure"
        ),
        "ka.security.pod.violations": _scalar(ann, "pod-security.kubernetes.io/audit-violations"),
        "ka.auth.openshift.username": _scalar(ann, "authentication.openshift.io/username"),
        "ka.user.name": _scalar("user", "username"),
        "ka.user.groups": _listed("user", "groups"),
        "ka.impuser.name": _scalar("impersonatedUser", "username"),
        "ka.verb": _scalar("verb"),
        "ka.uri": _scalar("requestURI"),
        "ka.uri.param": _uri_param,
        "ka.target.name": _scalar("objectRef", "name"),
        "ka.target.namespace": _scalar("objectRef", "namespace"),
        "ka.target.resource": _scalar("objectRef", "resource"),
        "ka.target.subresource": _scalar("objectRef", "subresource"),
        "ka.target.pod.name": _target_pod_name,
        "ka.req.binding.subject.has_name": _has_name,
        "ka.req.configmap.name": _scalar("objectRef", "name"),
        "ka.resp.name": _scalar("responseObject", "metadata", "name"),
        "ka.response.code": _scalar("responseStatus", "code"),
        "ka.response.reason": _scalar("responseStatus", "reason"),
        "ka.useragent": _scalar("userAgent"),
        "ka.sourceips": _sourceips,
        "ka.cluster.name": _cluster_name,
    }
    request: dict[str, Extractor] = {
        "ka.req.binding.subjects": _listed(ro, "subjects"),
        "ka.req.binding.subjects.user_names": _subjects("User", _subject_name),
        "ka.req.binding.subjects.serviceaccount_names": _subjects("ServiceAccount", _subject_name),
        "ka.req.binding.subjects.serviceaccount_ns_names": _subjects("ServiceAccount", _subject_ns_name),
        "ka.req.binding.subjects.group_names": _subjects("Group", _subject_name),
        "ka.req.binding.role": _scalar(ro, "roleRef", "name"),
        "ka.req.configmap.obj": _scalar(ro, "data"),
        "ka.req.role.rules": _listed(ro, "rules"),
        "ka.req.role.rules.apiGroups": _rules("apiGroups"),
        "ka.req.role.rules.nonResourceURLs": _rules("nonResourceURLs"),
        "ka.req.role.rules.verbs": _rules("verbs"),
        "ka.req.role.rules.resources": _rules("resources"),
    }
    spec: dict[str, Extractor] = {
        "ka.req.container.image": _first_image,
        "ka.req.container.image.repository": _first_repository,
        "ka.req.pod.host_ipc": _spec_scalar("hostIPC"),
        "ka.req.pod.host_network": _spec_scalar("hostNetwork"),
        "ka.req.container.host_network": _spec_scalar("hostNetwork"),
        "ka.req.pod.host_pid": _spec_scalar("hostPID"),
        "ka.req.container.privileged": _any_privileged,
        "ka.req.pod.run_as_user": _spec_scalar("securityContext", "runAsUser"),
        "ka.req.pod.run_as_group": _spec_scalar("securityContext", "runAsGroup"),
        "ka.req.pod.fs_group": _spec_scalar("securityContext", "fsGroup"),
        "ka.req.pod.supplemental_groups": _spec_listed("securityContext", "supplementalGroups"),
        "ka.req.service.type": _spec_scalar("type"),
        "ka.req.service.ports": _spec_walk("ports"),
        "ka.req.pod.volumes.hostpath": _spec_walk("volumes", "hostPath", "path"),
        "ka.req.volume.hostpath": _volume_hostpath,
        "ka.req.pod.volumes.flexvolume_driver": _spec_walk("volumes", "flexVolume", "driver"),
        "ka.req.pod.volumes.volume_type": _volume_types,
    }
    for ckey in _SPEC_LISTS:
        for suffix, fn in _container_family(ckey).items():
            spec[f"ka.req.pod.{ckey}.{suffix}"] = fn
    table = {**root, **request, **spec}
    groups = {
        name: group for group, part in ((ROOT, root), (REQUEST, request), (SPEC, spec)) for name in part
    }
    # Fields whose every walk goes through requestObject[<key>] (resp. spec[<key>]): no value at all
    # when that object lacks the key.
    needs = {name: key for name in request for key in ("subjects", "rules") if f".{key}" in name}
    needs.update({"ka.req.binding.role": "roleRef", "ka.req.configmap.obj": "data"})
    spec_keys = {name: key for name in spec for key in _SPEC_LISTS if name.startswith(f"ka.req.pod.{key}.")}
    spec_keys.update(
        {
            "ka.req.container.image": "containers",
            "ka.req.container.image.repository": "containers",
            "ka.req.container.privileged": "containers",
            "ka.req.pod.volumes.hostpath": "volumes",
            "ka.req.volume.hostpath": "volumes",
            "ka.req.pod.volumes.flexvolume_driver": "volumes",
            "ka.req.pod.volumes.volume_type": "volumes",
        }
    )
    return table, groups, needs, spec_keys


EXTRACTORS, GROUPS, REQUEST_KEYS, SPEC_KEYS = _build()
