"""log.py: prefix, one line per call, per-key rate limiting with a suppressed count, thread safety."""

from __future__ import annotations

import io
import threading

from k8saudit_eks_py.log import Logger


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Logger, io.StringIO, FakeClock]:
    out = io.StringIO()
    clock = FakeClock()
    return Logger(stream=lambda: out, clock=clock, interval=30.0), out, clock


def test_lines_are_prefixed_and_keep_levels() -> None:
    log, out, _ = make()
    log.write("info", "opened cluster demo")
    log.write("error", "FilterLogEvents failed: AccessDenied; retrying in 2.0s")
    assert out.getvalue().splitlines() == [
        "[k8saudit-eks] info: opened cluster demo",
        "[k8saudit-eks] error: FilterLogEvents failed: AccessDenied; retrying in 2.0s",
    ]


def test_same_key_is_rate_limited_and_reports_the_suppressed_count() -> None:
    log, out, clock = make()
    assert log.write("warning", "throttled 1", key="throttle")
    for i in range(5):
        clock.now += 1
        assert not log.write("warning", f"throttled {i + 2}", key="throttle")
    assert log.write("warning", "other key is independent", key="other")
    clock.now += 30
    assert log.write("warning", "throttled 7", key="throttle")
    clock.now += 31
    assert log.write("warning", "throttled 8", key="throttle")
    assert out.getvalue().splitlines() == [
        "[k8saudit-eks] warning: throttled 1",
        "[k8saudit-eks] warning: other key is independent",
        "[k8saudit-eks] warning: throttled 7 (5 similar suppressed)",
        "[k8saudit-eks] warning: throttled 8",
    ]


def test_messages_without_key_are_never_limited() -> None:
    log, out, _ = make()
    for _ in range(3):
        log.write("info", "same")
    assert out.getvalue().count("same") == 3


def test_broken_stream_does_not_raise() -> None:
    closed = io.StringIO()
    closed.close()
    log = Logger(stream=lambda: closed)
    assert log.write("error", "nowhere to go")


def test_concurrent_writers_produce_whole_lines_and_exact_counts() -> None:
    log, out, clock = make()
    n_threads, per_thread = 8, 500

    def work(t: int) -> None:
        for i in range(per_thread):
            log.write("info", f"thread {t} line {i} " + "x" * 50)
            log.write("warning", "limited", key="k")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    plain = [ln for ln in lines if "thread" in ln]
    assert len(plain) == n_threads * per_thread
    assert all(ln.startswith("[k8saudit-eks] info: thread ") and ln.endswith("x" * 50) for ln in plain)
    assert [ln for ln in lines if "limited" in ln] == ["[k8saudit-eks] warning: limited"]
    clock.now += 31
    log.write("warning", "limited", key="k")
    assert out.getvalue().splitlines()[-1] == (
        f"[k8saudit-eks] warning: limited ({n_threads * per_thread - 1} similar suppressed)"
    )
