"""event_to_string: one short human line per event (verb, user, target, response code)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["event_to_string"]

_MAX = 200  # keep lines short: this text only labels an event in Falco's outputs and logs


def _text(v: Any) -> str:
    if v is None:
        return "-"
    s = v if isinstance(v, str) else orjson.dumps(v).decode() if not isinstance(v, bytes) else repr(v)
    return s if len(s) <= _MAX else s[: _MAX - 1] + "…"


def event_to_string(payload: bytes) -> str:
    """e.g. ``create pods/exec default/nginx by alice → 101``. Never raises."""
    try:
        ev = orjson.loads(payload)
    except Exception:
        return (
            f"<not a JSON audit event, {len(payload) if isinstance(payload, bytes | bytearray) else 0} bytes>"
        )
    if not isinstance(ev, dict):
        return "<not a JSON audit event>"
    try:
        ref = ev.get("objectRef")
        ref = ref if isinstance(ref, dict) else {}
        resource = _text(ref.get("resource"))
        if ref.get("subresource"):
            resource += "/" + _text(ref.get("subresource"))
        target = "/".join(_text(ref[k]) for k in ("namespace", "name") if ref.get(k) is not None) or "-"
        user = ev.get("user")
        username = _text(user.get("username") if isinstance(user, dict) else None)
        status = ev.get("responseStatus")
        code = _text(status.get("code") if isinstance(status, dict) else None)
        return f"{_text(ev.get('verb'))} {resource} {target} by {username} → {code}"
    except Exception:
        return "<unreadable audit event>"
