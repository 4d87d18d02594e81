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


def test_throttles_slow_an_operation_and_time_alone_restores_its_cap() -> None:
    now = [100.0]
    pacer = CallPacer(2.0, threading.Event(), clock=lambda: now[0])
    pacer.throttled("FilterLogEvents")
    assert pacer.rate_of("FilterLogEvents") == 1.0  # halved
    assert pacer.free_at("FilterLogEvents") == 101.0  # the next call one (longer) interval later
    assert pacer.rate_of("DescribeLogStreams") == 2.0  # another quota: untouched
    for _ in range(8):  # a burst: floored at a fifth of the cap, never silenced
        pacer.throttled("FilterLogEvents")
    assert pacer.rate_of("FilterLogEvents") == pytest.approx(2.0 * CallPacer.MIN_SHARE)
    # No call gets through meanwhile (nothing sent): the cap comes back with time alone, all of it
    # RECOVERY_S after the last throttle, so a storm's end is followed by full-rate reads within seconds.
    now[0] += CallPacer.RECOVERY_S / 2
    assert 2.0 * CallPacer.MIN_SHARE < pacer.rate_of("FilterLogEvents") < 2.0
    now[0] += CallPacer.RECOVERY_S / 2
    assert pacer.rate_of("FilterLogEvents") == 2.0
    pacer.before_send("before-send.cloudwatch-logs.FilterLogEvents")
    assert pacer.free_at("FilterLogEvents") == pytest.approx(now[0] + 0.5)
