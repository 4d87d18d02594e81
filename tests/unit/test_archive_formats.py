"""S3 object bytes → log events: the two layouts told apart, chunk boundaries anywhere, gzip members and
gzip inside gzip, a `}{` inside a message, and what a corrupt or foreign object gives."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import orjson
import pytest

from k8saudit_eks_py.sources.archive.formats import (
    MAX_LINE,
    Corrupt,
    ExportLine,
    detect,
    export_lines,
    firehose_documents,
)
from k8saudit_eks_py.sources.subscription import Bad, Control, Data


def _doc(n: int, message: str = "m", kind: str = "DATA_MESSAGE") -> bytes:
    return orjson.dumps(
        {
            "messageType": kind,
            "owner": "1",
            "logGroup": "/aws/eks/blue/cluster",
            "logStream": "kube-apiserver-audit-x",
            "logEvents": [{"id": str(n), "timestamp": n, "message": message}],
        }
    )


def _split(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
def test_export_lines_across_any_chunking(chunk: int) -> None:
    text = (
        b'2026-11-01T00:00:00.001Z {"a":1}\n2026-11-01T00:00:00.002Z {"b":2}\r\n'
        b"\nnot-a-time x\n2026-11-01T00:00:01Z last"
    )
    lines = list(export_lines(_split(text, chunk)))
    assert lines[0] == ExportLine(1_793_491_200_001, '{"a":1}')
    assert lines[1] == ExportLine(1_793_491_200_002, '{"b":2}')
    assert lines[2].ts_ms is None  # counted malformed by the source
    assert lines[3] == ExportLine(1_793_491_201_000, "last")
    assert len(lines) == 4


def test_export_timestamps_fast_and_slow_forms_agree() -> None:
    lines = list(
        export_lines(
            iter(
                [
                    b"2026-11-01T00:00:59.999Z a\n2026-11-01T00:00:59.999+00:00 b\n"
                    b"2026-13-01T00:00:00.000Z c\n2026-11-01T00:00:59.5Z d\n"
                ]
            )
        )
    )
    assert [line.ts_ms for line in lines] == [1_793_491_259_999, 1_793_491_259_999, None, 1_793_491_259_500]


def test_an_overlong_export_line_is_reported_once_and_reading_goes_on() -> None:
    data = b"2026-11-01T00:00:00Z " + b"x" * (MAX_LINE + 10) + b"\n2026-11-01T00:00:00Z ok\n"
    lines = list(export_lines(_split(data, 1 << 20)))
    assert [line.ts_ms is None for line in lines] == [True, False]
    assert lines[1].message == "ok"


@pytest.mark.parametrize("chunk", [3, 50, 1 << 16])
def test_firehose_documents_back_to_back_with_braces_inside_messages(chunk: int) -> None:
    tricky = 'x}{"messageType":"DATA_MESSAGE"}{ y'
    data = _doc(1) + _doc(2, tricky) + b"\n" + _doc(3, kind="CONTROL_MESSAGE") + _doc(4) + b"\n"
    docs = list(firehose_documents(_split(data, chunk)))
    assert [type(d) for d in docs] == [Data, Data, Control, Data]
    second = docs[1]
    assert isinstance(second, Data) and second.events[0].message == tricky


def test_a_foreign_document_is_bad_and_a_cut_last_one_is_corrupt() -> None:
    docs = list(firehose_documents(iter([b'{"hello":"world"}' + _doc(1)])))
    assert isinstance(docs[0], Bad) and isinstance(docs[1], Data)
    with pytest.raises(Corrupt):
        list(firehose_documents(iter([_doc(1) + _doc(2)[:-3]])))


def _layout(body: bytes) -> str:
    found = detect(io.BytesIO(body), 16)
    if isinstance(found, str):
        return found
    layout, chunks = found
    content = b"".join(chunks)
    return f"{layout}:{len(content)}"


def test_detect_tells_the_layouts_apart() -> None:
    export = b"2026-11-01T00:00:00Z {}\n"
    firehose = _doc(1) + _doc(2)
    assert _layout(gzip.compress(export)) == f"export:{len(export)}"
    assert _layout(gzip.compress(firehose)) == f"firehose:{len(firehose)}"
    members = gzip.compress(_doc(1)) + gzip.compress(_doc(2))  # records as sent, stored uncompressed
    assert _layout(members) == f"firehose:{len(firehose)}"
    nested = gzip.compress(members)  # and compressed once more by Firehose
    assert _layout(nested) == f"firehose:{len(firehose)}"
    decompressed = _doc(1) + b"\n" + _doc(2) + b"\n"  # Firehose decompressing the records itself
    assert _layout(decompressed) == f"firehose:{len(decompressed)}"
    assert _layout(b"Permission Check Successful").startswith("neither a CloudWatch export nor")
    assert _layout(b"2026-11-01T00:00:00Z plain").startswith("neither")  # exports are always gzip
    assert _layout(gzip.compress(b"<html>")).startswith("neither a CloudWatch export nor")
    assert _layout(gzip.compress(b"")) == "empty once decompressed"


def test_a_truncated_gzip_object_is_corrupt_after_what_came_before() -> None:
    body = gzip.compress(b"2026-11-01T00:00:00Z a\n" * 5000)[:-100]
    found = detect(io.BytesIO(body), 1024)
    assert not isinstance(found, str)
    got: list[ExportLine] = []
    with pytest.raises(Corrupt):
        for line in export_lines(found[1]):
            got.append(line)
    assert 0 < len(got) < 5000
