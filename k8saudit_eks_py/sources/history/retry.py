"""The retry loop of a history source's AWS calls: throttling slows the operation's pace, network and
server faults and stale credentials back off with jitter, and nothing ends the capture but close()."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from k8saudit_eks_py import aws, log, metrics

__all__ = ["Retrier", "Tuning"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Tuning:
    """Internals that are not user configuration; tests shrink them."""

    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    page_limit: int | None = None  # FilterLogEvents events per page; None: the service maximum
    log_every_s: float = 30.0  # progress lines
    close_timeout_s: float = 10.0
    read_chunk: int = 1 << 16  # bytes read from an S3 object at a time


class _Incomplete(Exception):
    """A 200 answer without its list: not the end of the data."""


class Retrier:
    def __init__(
        self,
        tuning: Tuning,
        counters: dict[str, int],
        stop: threading.Event,
        pacer: aws.CallPacer | None,
        renew_client: Callable[[], str],
    ) -> None:
        self._tuning = tuning
        self._counters = counters
        self._stop = stop
        self._pacer = pacer
        self._renew = renew_client
        self._rng = random.Random()

    def call(
        self,
        operation: str,
        what: str,
        fn: Callable[[], T],
        give_up: tuple[aws.ErrorClass, ...] = (),
        complete: Callable[[T], bool] | None = None,
    ) -> T:
        """fn() until it answers; aws.Cancelled when the source closes meanwhile. An error of a class in
        `give_up` is raised to the caller (e.g. one object gone or denied: the rest goes on). An answer
        that `complete` rejects (a 200 cut short on the way reaches boto3 as an empty result, which would
        look like the end of the data) is retried like a server error."""
        attempt = 0
        while True:
            if self._stop.is_set():
                raise aws.Cancelled()
            try:
                result = fn()
                if complete is not None and not complete(result):
                    raise _Incomplete(f"{operation} answer without its list (cut short?)")
                return result
            except aws.Cancelled:
                raise
            except Exception as exc:
                if not (aws.is_aws_error(exc) or isinstance(exc, _Incomplete)):
                    raise
                kind = aws.classify(exc)
                if kind in give_up:
                    self._counters[metrics.ERRORS] += 1
                    raise
                self._counters[metrics.RETRIES] += 1
                if kind == "throttle":
                    self._counters[metrics.THROTTLES] += 1
                    if self._pacer is not None:
                        self._pacer.throttled(operation)  # the next slot comes later: no sleep of ours
                    log.warning(f"{what}: {operation} throttled; slowing down", key=f"throttle:{operation}")
                    continue
                self._counters[metrics.ERRORS] += 1
                hint = self._renew() if kind == "credentials" else ""
                delay = self._backoff(attempt)
                attempt += 1
                log.warning(
                    f"{what}: {operation} failed: {aws.describe(exc)}{hint}; retrying in {delay:.1f}s",
                    key=f"retry:{operation}",
                )
                if self._stop.wait(delay):
                    raise aws.Cancelled() from None

    def _backoff(self, attempt: int) -> float:
        top = min(self._tuning.backoff_max_s, self._tuning.backoff_min_s * 2**attempt)
        return self._rng.uniform(top / 2, top)
