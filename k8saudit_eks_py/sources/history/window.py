"""open_params' query (`?from=...&to=...&cluster=...`) → a time window [from, to) in ms, with messages
that say what to write when a value is wrong. Pure: `now_ms` is an argument."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.sources.truncation import parse_rfc3339_ns

__all__ = ["Window", "notes", "parse_query", "parse_time", "split_params"]

_RELATIVE = re.compile(r"-?(\d+(?:\.\d+)?)([smhdw])")  # -7d, or 7d: seven days ago
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_KEYS = ("from", "to", "cluster")
RECENT_MS = 300_000  # CloudWatch can make an event searchable minutes after its timestamp
TIME_FORMS = "an ISO-8601 time (2026-11-01T00:00:00Z, 2026-11-01), a time ago (-7d, -12h, -30m, or 7d) or now"


@dataclass(frozen=True, slots=True)
class Window:
    """[from_ms, to_ms) in CloudWatch timestamps; `text` names it as the user wrote it (checkpoint keys:
    a relative window resumes the range it resolved to when it was first opened)."""

    from_ms: int
    to_ms: int
    text: str

    def contains(self, ts_ms: int) -> bool:
        return self.from_ms <= ts_ms < self.to_ms

    def describe(self) -> str:
        return f"[{iso(self.from_ms)}, {iso(self.to_ms)})"


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def split_params(params: str) -> tuple[str, dict[str, str]]:
    """`base?k=v&k=v` → (base, {k: v}); OpenError naming an unknown or repeated key."""
    base, sep, query = params.partition("?")
    values: dict[str, str] = {}
    if not sep:
        return base, values
    for part in query.split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS:
            raise OpenError(
                f"open_params {params!r}: {part!r} is not one of from=TIME, to=TIME, cluster=NAME "
                f"(e.g. my-cluster?from=-7d&to=now); TIME is {TIME_FORMS}"
            )
        if key in values:
            raise OpenError(f"open_params {params!r} sets {key} twice")
        values[key] = value.strip()
    return base, values


def parse_time(text: str, now_ms: int, what: str) -> int:
    """One time of the window → ms since the epoch."""
    if text == "now":
        return now_ms
    m = _RELATIVE.fullmatch(text)
    if m:
        return now_ms - int(float(m.group(1)) * _UNIT_S[m.group(2)] * 1000)
    if _DATE.fullmatch(text):
        text += "T00:00:00Z"
    ns = parse_rfc3339_ns(text)
    if ns is None:
        raise OpenError(f"open_params {what}={text!r} is not a time: write {TIME_FORMS}")
    return ns // 1_000_000


def parse_query(values: dict[str, str], now_ms: int, *, need_from: bool) -> Window | None:
    """The window of `from`/`to` (to defaults to now); None when neither is given and none is needed."""
    if "from" not in values and "to" not in values and not need_from:
        return None
    if "from" not in values and need_from:
        raise OpenError(f"open_params sets to= without from=: add from=TIME, {TIME_FORMS}")
    from_ms = parse_time(values["from"], now_ms, "from") if "from" in values else 0
    to_ms = parse_time(values["to"], now_ms, "to") if "to" in values else now_ms
    if from_ms >= to_ms:
        raise OpenError(
            f"open_params from={values.get('from', '')} ({iso(from_ms)}) is not before "
            f"to={values.get('to', 'now')} ({iso(to_ms)}): the window is [from, to), from must come first"
        )
    if to_ms > now_ms + 60_000:
        raise OpenError(
            f"open_params to={values['to']} ({iso(to_ms)}) is in the future: a look back ends at now at the "
            "latest (leave to= out for now); for what comes next, open the cluster without from="
        )
    text = f"from={values.get('from', '')}&to={values.get('to', 'now')}"
    return Window(from_ms, to_ms, text)


def notes(window: Window | None, now_ms: int, coordination_table: str) -> list[str]:
    """What a user reading the past should know about this configuration (logged at open)."""
    out: list[str] = []
    if window is not None and window.to_ms > now_ms - RECENT_MS:
        out.append(
            f"the window ends less than {RECENT_MS // 60_000} minutes ago: CloudWatch may still make events "
            "of its last minutes visible after they are read (end it earlier, or let poll mode follow on)"
        )
    if coordination_table:
        out.append(
            "coordination_table is not used when reading the past: this process reads the whole window, "
            "its position goes to checkpoint_file"
        )
    return out
