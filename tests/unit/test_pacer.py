"""CallPacer: each CloudWatch Logs operation paced against its own account quota."""

from __future__ import annotations

import threading

import pytest

from k8saudit_eks_py.aws import CallPacer, Cancelled


def test_each_operation_has_its_own_cap_as_a_share_of_its_quota() -> None:
    now = [100.0]
    stop = threading.Event()
    pacer = CallPacer(2.0, stop, clock=lambda: now[0])
    # max_api_calls_per_second 2 = 40% of a 5/s quota; GetLogEvents (25/s) gets the same share.
    assert pacer.rate_of("FilterLogEvents") == pacer.rate_of("DescribeLogStreams") == 2.0
    assert pacer.rate_of("GetLogEvents") == 10.0
    pacer.before_send("before-send.cloudwatch-logs.FilterLogEvents")
    assert pacer.free_at("FilterLogEvents") == 100.5
    # A listing is not held back by the read just sent, nor does it push the next read further.
    assert pacer.free_at("DescribeLogStreams") == 0.0
    pacer.before_send("before-send.cloudwatch-logs.DescribeLogStreams")
    assert pacer.free_at("DescribeLogStreams") == 100.5 and pacer.free_at("FilterLogEvents") == 100.5
    now[0] = 100.5
    pacer.before_send("before-send.cloudwatch-logs.FilterLogEvents")  # its slot: sent at once
    assert pacer.free_at("FilterLogEvents") == 101.0
    assert pacer.calls == 3
    assert pacer.calls_by_operation == {"FilterLogEvents": 2, "DescribeLogStreams": 1}
    stop.set()  # a call that would have to wait for its slot is cancelled by close, not sent
    with pytest.raises(Cancelled):
        pacer.acquire("FilterLogEvents")
    assert pacer.calls == 3
