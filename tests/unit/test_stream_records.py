"""Subscription record decoding and the shard plan: what stream mode delivers, skips, and reads next."""

from __future__ import annotations

import gzip

import orjson
import pytest

from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.kinesis.shard_reader import after_key
from k8saudit_eks_py.sources.kinesis.shards import Position, ShardInfo, eligible, iterator_args, start_since
from k8saudit_eks_py.sources.kinesis.stream_errors import parse_stream
from k8saudit_eks_py.sources.subscription import Bad, Control, Data, cluster_of, decode_record


def _gz(doc: object) -> bytes:
    return gzip.compress(orjson.dumps(doc), mtime=0)


def test_data_message_keeps_every_log_event_in_order_with_digit_string_ids() -> None:
    ids = ["37000000000000000000000000000000000000000000000000000001", "3700000000000000000000000000000002"]
    record = _gz(
        {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/aws/eks/prod/cluster",
            "logStream": "kube-apiserver-audit-abc",
            "subscriptionFilters": ["f"],
            "logEvents": [
                {"id": ids[0], "timestamp": 5, "message": "{}"},
                {"id": ids[1], "timestamp": 6, "message": "x"},
                {"id": 7, "timestamp": 7, "message": "int id (emulators)"},
                {"timestamp": 8, "message": "no id"},
                "not an object",
            ],
        }
    )
    decoded = decode_record(record)
    assert isinstance(decoded, Data)
    assert (decoded.log_group, decoded.log_stream) == ("/aws/eks/prod/cluster", "kube-apiserver-audit-abc")
    assert [e.event_id for e in decoded.events] == [*ids, "7", None, None]
    assert [e.timestamp_ms for e in decoded.events[:3]] == [5, 6, 7]
    assert decoded.events[4].message is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"messageType":"DATA_MESSAGE"}', "not gzip"),
        (gzip.compress(b"{not json", mtime=0), "not JSON"),
        (gzip.compress(b"[1,2]", mtime=0), "not a JSON object"),
        (gzip.compress(b'{"messageType":"DATA_MESSAGE","logGroup":"g"}', mtime=0), "without logGroup"),
        (_gz({"messageType": "SOMETHING"}), "is not DATA_MESSAGE"),
        (gzip.compress(b"{}", mtime=0)[:-6], "not gzip"),  # cut short
    ],
)
def test_records_that_are_not_subscription_messages_are_bad_with_the_reason(data: bytes, reason: str) -> None:
    decoded = decode_record(data)
    assert isinstance(decoded, Bad)
    assert reason in decoded.reason


def test_control_message_is_recognised() -> None:
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "message": "CWL CONTROL MESSAGE"}]}
    assert isinstance(decode_record(_gz(control)), Control)


def test_gzip_bomb_is_refused_not_expanded() -> None:
    bomb = gzip.compress(b" " * (80 * 1024 * 1024))
    decoded = decode_record(bomb)
    assert isinstance(decoded, Bad) and "decompressed" in decoded.reason


def test_cluster_comes_from_the_eks_log_group_only() -> None:
    assert cluster_of("/aws/eks/prod-a/cluster") == "prod-a"
    assert cluster_of("/aws/eks/prod-a/cluster/x") is None
    assert cluster_of("/custom/audit") is None


def test_children_wait_until_every_parent_is_finished() -> None:
    parent = ShardInfo("p", (), True)
    other = ShardInfo("q", (), True)
    split = [ShardInfo("c1", ("p",), False), ShardInfo("c2", ("p",), False)]
    merged = ShardInfo("m", ("c1", "c2"), False)
    shards = [parent, other, *split, merged]
    ids = lambda chosen: [s.shard_id for s in chosen]  # noqa: E731
    assert ids(eligible(shards, {})) == ["p", "q"]
    assert ids(eligible(shards, {"p": {"after": "9"}})) == ["p", "q"]
    assert ids(eligible(shards, {"p": {"finished": True}})) == ["q", "c1", "c2"]
    done = {"p": {"finished": True}, "c1": {"finished": True}}
    assert ids(eligible(shards, done)) == ["q", "c2"]
    done["c2"] = {"finished": True}
    assert ids(eligible(shards, done)) == ["q", "m"]
    # A parent past retention (no longer listed) does not hold its child back.
    assert ids(eligible([ShardInfo("orphan", ("gone",), False)], {})) == ["orphan"]


def test_a_child_starts_where_its_parents_lineage_started() -> None:
    child = ShardInfo("c", ("p1", "p2"), False)
    states = {"p1": {"finished": True, "since": 5000}, "p2": {"finished": True, "since": 4000}}
    assert start_since(child, states, 9000) == 4000
    assert start_since(ShardInfo("root", (), False), states, 9000) == 9000


def test_iterator_resumes_after_a_record_or_inside_it() -> None:
    assert iterator_args(None, 1500) == ({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1.5}, 0)
    assert iterator_args({"after": "42"}, 0) == (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "42"},
        0,
    )
    assert iterator_args({"at": "42", "skip": 3}, 0) == (
        {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "42"},
        3,
    )


def test_positions_order_inside_a_record_before_its_end_and_states_stay_small() -> None:
    inside, end, next_inside = Position("7", 2, 0), Position("7", 0, 0), Position("8", 1, 1)
    assert after_key(inside) < after_key(end) < after_key(next_inside)
    assert end.state() == {"after": "7"} and inside.state() == {"at": "7", "skip": 2}


def test_open_params_name_or_arn() -> None:
    by_arn = parse_stream("arn:aws:kinesis:eu-west-1:123456789012:stream/audit")
    assert (by_arn.name, by_arn.region, by_arn.request) == (
        "audit",
        "eu-west-1",
        {"StreamARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/audit"},
    )
    assert parse_stream("audit.v1").request == {"StreamName": "audit.v1"}
    with pytest.raises(OpenError, match="does not name a Kinesis stream"):
        parse_stream("bad name")
