"""Property tests: extraction never raises or hangs, types follow the catalog, and the two parsers agree."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8saudit_eks_py import fields
from k8saudit_eks_py.fields.catalog import ARG_INDEX, ARG_KEY, FIELDS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ARGS = {ARG_INDEX: ["0", "1", "3"], ARG_KEY: ["watch", "/var/run/docker.sock", "/*", "x"]}
REQUESTS = tuple((i, None) for i in range(len(FIELDS))) + tuple(
    (i, a) for i, f in enumerate(FIELDS) for a in _ARGS.get(f.arg, [])
)

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["User", "Group", "ServiceAccount", "nginx:1.25", "a@sha256:x", "/etc", "/var/run/docker.sock", ""]
)
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
_KEYS = [
    "name",
    "image",
    "command",
    "args",
    "securityContext",
    "privileged",
    "runAsUser",
    "ports",
    "hostPort",
]
_container = st.dictionaries(st.sampled_from(_KEYS), _json, max_size=6)
_spec = st.fixed_dictionaries(
    {},
    optional={
        "containers": st.lists(_container, max_size=3) | _json,
        "initContainers": st.lists(_container, max_size=2),
        "volumes": st.lists(
            st.dictionaries(st.sampled_from(["name", "hostPath", "flexVolume", "secret"]), _json)
        ),
        "securityContext": st.dictionaries(
            st.sampled_from(["runAsUser", "supplementalGroups", "fsGroup"]), _json
        ),
        "ports": _json,
        "hostNetwork": _json,
    },
)
_event = st.fixed_dictionaries(
    {"auditID": _text},
    optional={
        "verb": _json,
        "requestURI": st.sampled_from(["/api?watch=true", "/a?x=%zz", "/p%20?w=1&watch=%41"]) | _text,
        "user": st.fixed_dictionaries({}, optional={"username": _json, "groups": _json}),
        "sourceIPs": _json,
        "annotations": st.dictionaries(
            st.sampled_from(["cluster_name", "authorization.k8s.io/decision"]), _json
        ),
        "responseStatus": st.fixed_dictionaries({}, optional={"code": _json}),
        "requestObject": st.fixed_dictionaries(
            {},
            optional={
                "spec": _spec | _json,
                "rules": _json,
                "subjects": st.lists(st.dictionaries(st.sampled_from(["kind", "name", "namespace"]), _text)),
            },
        )
        | _json,
    },
)


def _check_types(values: list[fields.Value]) -> None:
    for (field_id, _arg), v in zip(REQUESTS, values, strict=True):
        if v is None:
            continue
        if FIELDS[field_id].is_list:
            assert isinstance(v, tuple) and all(isinstance(x, str | bytes) for x in v)
        else:
            assert isinstance(v, str | bytes)


def _encodings(event: dict) -> list[bytes]:
    # Compact raw UTF-8 (as the API server writes), and \uXXXX escapes with spaces (json's default).
    return [
        json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode(),
        json.dumps(event, separators=(",", ":")).encode(),
        json.dumps(event).encode(),
    ]


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(payload: bytes) -> None:
    _check_types(fields.extract_values(fields.parse_event(payload), REQUESTS))
    assert isinstance(fields.event_to_string(payload), str)


@SETTINGS
@given(_event, st.integers(min_value=0, max_value=400))
def test_events_and_truncations_never_raise(event: dict, cut: int) -> None:
    for payload in _encodings(event):
        _check_types(fields.extract_values(fields.parse_event(payload), REQUESTS))
        _check_types(fields.extract_values(fields.parse_event(payload[:cut]), REQUESTS))
        assert isinstance(fields.event_to_string(payload[:cut]), str)


@SETTINGS
@given(_event)
def test_fast_and_raw_paths_agree(event: dict) -> None:
    """The orjson tree (with its rendering shortcuts) and the raw-text tree give the same values."""
    for payload in _encodings(event):
        fast = fields.parse_event(payload)
        raw = fields.parse_event(payload)
        raw.switch_to_raw()
        assert raw.root is not None
        assert fields.extract_values(fast, REQUESTS) == fields.extract_values(raw, REQUESTS)
