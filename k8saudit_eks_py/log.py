"""Plugin log lines on stderr, prefixed `[k8saudit-eks]`, with per-key rate limiting of repeated messages.

Usage from any module and any thread:
    log.info("opened cluster demo: log group /aws/eks/demo/cluster")
    log.warning(f"FilterLogEvents throttled; retrying in {delay:.1f}s", key="throttle:demo")
A message with a `key` is written at most once per INTERVAL seconds for that key; the next one written
after a quiet spell says how many were held back: "... (12 similar suppressed)".
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["INTERVAL", "PREFIX", "Logger", "debug", "error", "info", "logger", "warning"]

PREFIX = "[k8saudit-eks]"
INTERVAL = 30.0  # seconds between two lines with the same key


class Logger:
    """Writes one line per call (a single write, so lines from threads never interleave)."""

    def __init__(
        self,
        stream: Callable[[], TextIO] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
    ) -> None:
        # The stream is looked up at each call so that sys.stderr replacements (pytest, the CLI) apply.
        self._stream = stream or (lambda: sys.stderr)
        self._clock = clock
        self.interval = interval
        self.debug_enabled = os.environ.get("K8SAUDIT_EKS_DEBUG", "") not in ("", "0")
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # key → clock of the last line written
        self._suppressed: dict[str, int] = {}  # key → lines held back since then

    def _admit(self, key: str) -> int | None:
        """None when the line must be held back, else the number held back before it."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            if len(self._last) > 4096:  # keys are bounded in practice; never let a bug grow this forever
                cutoff = now - self.interval
                for k in [k for k, t in self._last.items() if t < cutoff and k != key]:
                    del self._last[k]
                    self._suppressed.pop(k, None)
            return self._suppressed.pop(key, 0)

    def write(self, level: str, message: str, key: str | None = None) -> bool:
        """Write one line; returns False when the rate limit held it back."""
        suppressed = 0
        if key is not None:
            held = self._admit(key)
            if held is None:
                return False
            suppressed = held
        suffix = f" ({suppressed} similar suppressed)" if suppressed else ""
        line = f"{PREFIX} {level}: {message}{suffix}\n"
        try:
            stream = self._stream()
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):  # closed or broken stderr: logging must never fail the caller
            pass
        return True

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._suppressed.clear()


logger = Logger()


def debug(message: str, key: str | None = None) -> None:
    """Written only when K8SAUDIT_EKS_DEBUG is set (non-empty and not 0)."""
    if logger.debug_enabled:
        logger.write("debug", message, key)


def info(message: str, key: str | None = None) -> None:
    logger.write("info", message, key)


def warning(message: str, key: str | None = None) -> None:
    logger.write("warning", message, key)


def error(message: str, key: str | None = None) -> None:
    logger.write("error", message, key)
