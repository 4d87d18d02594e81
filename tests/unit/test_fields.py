"""Field semantics that the golden corpus does not pin down, and hostile payloads."""

from __future__ import annotations

import time

import orjson
import pytest

from k8saudit_eks_py import fields
from k8saudit_eks_py.fields.catalog import FIELD_IDS, FIELDS

ALL_PLAIN = tuple((i, None) for i in range(len(FIELDS)))


def value(payload: bytes | dict, name: str, arg: str | None = None, **kw: str) -> fields.Value:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return fields.extract_value(fields.parse_event(raw, **kw), FIELD_IDS[name], arg)


def pod(spec: dict, **extra: object) -> dict:
    return {"auditID": "a", "requestObject": {"kind": "Pod", "spec": spec}, **extra}


# --- raw JSON text of non-string values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"1.0", "1.0"),
        (b"1e6", "1e6"),
        (b"-0", "-0"),
        (b"123456789012345678901234567890", "123456789012345678901234567890"),
        (b"true", "true"),
        (b"null", "null"),
        (b'{"b":1,"a":"\\u00fc","c":[1.50,"\\/"]}', '{"b":1,"a":"\\u00fc","c":[1.50,"\\/"]}'),
        (b'{ "b" : 1 ,\n "a" : [ 2 , 3 ] }', '{"b":1,"a":[2,3]}'),
        (b'{"a":"\xc3\xbc"}', '{"a":"\xfc"}'),
    ],
)
def test_non_string_values_render_as_original_text(text: bytes, expected: str) -> None:
    payload = b'{"auditID":"x","responseStatus":{"code":' + text + b"}}"
    assert value(payload, "ka.response.code") == expected


def test_null_inside_a_list_renders_null_and_missing_keys_are_skipped() -> None:
    assert value({"auditID": "a", "user": {"groups": ["g", None, 3]}}, "ka.user.groups") == ("g", "null", "3")
    spec = {
        "containers": [
            {"securityContext": {"privileged": True}},
            {},
            {"securityContext": {"privileged": None}},
        ]
    }
    assert value(pod(spec), "ka.req.pod.containers.privileged") == ("true", "null")


def test_no_values_without_audit_id_or_object() -> None:
    for payload in (b'{"verb":"get"}', b"[1,2]", b'"x"', b"42", b' {"auditID":"a"}', b""):
        event = fields.parse_event(payload)
        assert fields.extract_values(event, ALL_PLAIN) == [None] * len(FIELDS)
        assert fields.extract_value(event, FIELD_IDS["ka.req.binding.subject.has_name"], "x") is None


# --- arguments ----------------------------------------------------------------------------------


def test_index_arguments() -> None:
    spec = {"containers": [{"image": "a:1"}, {"image": "b@sha256:x"}]}
    assert value(pod(spec), "ka.req.pod.containers.image", "1") == ("b@sha256:x",)
    assert value(pod(spec), "ka.req.pod.containers.image.repository", "1") == ("b",)
    assert value(pod(spec), "ka.req.pod.containers.image", "2") is None
    assert value(pod(spec), "ka.req.pod.containers.image", "99999999999999999999999") is None
    for bad in ("-1", "x", "1.0", " 1", "", "١"):
        assert value(pod(spec), "ka.req.pod.containers.image", bad) is None


def test_required_key_arguments() -> None:
    event = {"auditID": "a", "requestURI": "/api?watch=true"}
    assert value(event, "ka.uri.param") is None
    assert value(event, "ka.req.binding.subject.has_name") is None
    assert value(event, "ka.req.binding.subject.has_name", "anything") == "true"
    assert value(event, "ka.req.volume.hostpath") is None
    for odd in ("", "]", "[", "\x00", "ü", "a b", "%", "*", "/*" * 1000):
        assert value(event, "ka.uri.param", odd) is None
        assert value(event, "ka.req.volume.hostpath", odd) in (None, "false")


def test_volume_hostpath_looks_at_every_volume() -> None:
    spec = {
        "volumes": [
            {"name": "a", "emptyDir": {}},
            {"name": "b", "hostPath": {"path": "/var/run/docker.sock"}},
        ]
    }
    assert value(pod(spec), "ka.req.volume.hostpath", "/var/run/docker.sock") == "true"
    assert value(pod(spec), "ka.req.volume.hostpath", "/var/*") == "true"
    assert value(pod(spec), "ka.req.volume.hostpath", "/etc") == "false"
    assert value(pod({"containers": []}), "ka.req.volume.hostpath", "/etc") is None


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/api?watch=true&watch=false", "true"),
        ("/api?watch=a%20b+c", "a b c"),
        ("/api?watch=%zz", None),
        ("/api?watch=1;x=2", None),
        ("/api?watch=1&x=%", None),  # any bad pair fails the whole query in Go
        ("/p%zz?watch=1", None),  # url.Parse fails on the path
        ("/api?x=1#watch=1", None),
        ("/a#b?watch=1", None),
        ("/api?watch=1#%zz", None),
        ("/api\x7f?watch=1", None),
        ("a:b?watch=1", "1"),
        (":x?watch=1", None),
        ("x:y/z?watch=1", "1"),
        ("x/y:z?watch=1", "1"),
        ("y:z/x?watch=1", "1"),
        ("//host:80/x?watch=1", "1"),
        ("//host:8x/x?watch=1", None),
        ("/api?watch=%FF", b"\xff"),
    ],
)
def test_uri_param_follows_go_net_url(uri: str, expected: str | bytes | None) -> None:
    assert value({"auditID": "a", "requestURI": uri}, "ka.uri.param", "watch") == expected


def test_cluster_name_fallback() -> None:
    assert (
        value({"auditID": "a", "annotations": {"cluster_name": "c1"}}, "ka.cluster.name", default_cluster="d")
        == "c1"
    )
    assert value({"auditID": "a"}, "ka.cluster.name", default_cluster="d") == "d"
    assert value({"auditID": "a"}, "ka.cluster.name") is None
    assert value(b"not json", "ka.cluster.name", default_cluster="d") is None


def test_sourceips_is_the_top_level_list() -> None:
    event = {"auditID": "a", "sourceIPs": ["10.0.0.1", "::1"]}
    assert value(event, "ka.sourceips") == ("10.0.0.1", "::1")
    assert value(event, "ka.sourceips", "1") == ("::1",)
    assert value(event, "ka.sourceips", "2") is None


def test_event_to_string() -> None:
    line = fields.event_to_string(
        orjson.dumps(
            {
                "auditID": "a",
                "verb": "create",
                "user": {"username": "alice"},
                "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "ns", "name": "p"},
                "responseStatus": {"code": 101},
            }
        )
    )
    assert line == "create pods/exec ns/p by alice → 101"
    for junk in (b"", b"\xff\xfe", b"[1]", b'{"verb": 7}', b"{" * 10000):
        assert isinstance(fields.event_to_string(junk), str)


# --- hostile payloads ------------------------------------------------------------------------------


def _all_values(payload: bytes) -> list[fields.Value]:
    requests = ALL_PLAIN + tuple((FIELD_IDS[n], a) for n, a in (("ka.uri.param", "w"), ("ka.sourceips", "0")))
    start = time.perf_counter()
    values = fields.extract_values(fields.parse_event(payload), requests)
    # A hang guard, not a speed target (speed lives in benchmarks/): generous even on a loaded CI box.
    assert time.perf_counter() - start < 60, "extraction hung"
    for f, v in zip(FIELDS, values, strict=False):
        assert v is None or isinstance(v, tuple if f.is_list else str | bytes)
    return values


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b'{"auditID":"a","verb":"get"',
        b'{"auditID":"a","verb":',
        b'{"auditID":"a"}}',
        b'{"auditID":"a"} x',
        b"[" * 100 + b"]" * 100,
        b'{"auditID":"a","x":' + b"[" * 100 + b"]" * 100 + b"}",
        b'{"auditID":"a","x":' + b"[" * 301 + b"]" * 301 + b"}",
        b'{"auditID":"a","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"auditID":"a","x":' + b"{" * 100000,
        b"\x00" * 100,
        b"{\xff\xfe}",
        b"\xef\xbb\xbf{}",
    ],
)
def test_hostile_payloads_never_raise(payload: bytes) -> None:
    _all_values(payload)


def test_too_deep_documents_have_no_values_like_fastjson() -> None:
    ok = b'{"auditID":"a","x":' + b"[" * 299 + b"]" * 299 + b"}"
    deep = b'{"auditID":"a","x":' + b"[" * 300 + b"]" * 300 + b"}"
    assert value(ok, "ka.auditid") == "a"
    assert value(deep, "ka.auditid") is None


def test_huge_strings_and_lists() -> None:
    big = "x" * (1 << 20)
    event = {
        "auditID": "a",
        "user": {"username": big, "groups": [str(i) for i in range(100_000)]},
        "requestURI": "/api?w=" + big,
        "requestObject": {
            # 1 MiB strings in several containers: big, but not a 1 GB payload.
            "spec": {"containers": [{"image": big, "securityContext": {"privileged": True}}] * 4}
        },
    }
    values = _all_values(orjson.dumps(event))
    assert values[FIELD_IDS["ka.user.name"]] == big
    assert len(values[FIELD_IDS["ka.user.groups"]]) == 100_000
    assert values[len(FIELDS)] == big


def test_invalid_utf8_is_returned_as_bytes() -> None:
    payload = b'{"auditID":"a","user":{"username":"x\xffy","groups":["\xc3\xbc","\xfe"]},"verb":"get"}'
    assert value(payload, "ka.user.name") == b"x\xffy"
    assert value(payload, "ka.user.groups") == ("ü", b"\xfe")
    assert value(payload, "ka.verb") == "get"
    event = fields.parse_event(payload)
    got = fields.extract_values(event, ((FIELD_IDS["ka.user.name"], None), (FIELD_IDS["ka.verb"], None)))
    assert got == [b"x\xffy", "get"]


def test_lenient_json_accepted_by_fastjson() -> None:
    # Raw control characters, unknown escapes and lone surrogates are fine for fastjson.
    payload = (
        b'{"auditID":"a","verb":"g\tet","user":{"username":"a\\qb\\ud800"},"responseStatus":{"code":+1}}'
    )
    assert value(payload, "ka.verb") == "g\tet"
    assert value(payload, "ka.user.name") == "a\\qb\\ud800"
    assert value(payload, "ka.response.code") == "+1"


def test_duplicate_keys_first_wins_on_the_raw_path() -> None:
    payload = b'{"auditID":"a","verb":"get","verb":"list","x":1e400}'  # 1e400: orjson refuses it
    assert value(payload, "ka.verb") == "get"
