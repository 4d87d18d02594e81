"""Query parameters of a request URI, with Go's net/url rules (url.Parse, then url.ParseQuery).

The reference plugin fails the extraction when either step returns an error, and an error means "no
value" for us. So the whole query is rejected when the URI does not parse (control characters, bad
``%`` escapes in path or fragment, bad authority, colon in a relative first segment, ...) or when any
pair of the query is bad (a ``;``, a bad ``%`` escape). Decoded values may be invalid UTF-8: they are
then returned as bytes, as Go returns them byte for byte.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["first_query_values"]

Decoded = str | bytes

_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_BAD_PCT = re.compile(rb"%(?![0-9a-fA-F]{2})")
_CTL = re.compile(rb"[\x00-\x1f\x7f]")


def _unescape_ok(s: bytes) -> bool:
    return _BAD_PCT.search(s) is None


def _query_unescape(s: bytes) -> bytes:
    """Go's QueryUnescape once validity is known: '+' is a space, %XX a byte."""
    s = s.replace(b"+", b" ")
    if b"%" not in s:
        return s
    parts = s.split(b"%")
    out = bytearray(parts[0])
    for part in parts[1:]:
        out.append(int(part[:2], 16))
        out += part[2:]
    return bytes(out)


def _as_text(b: bytes) -> Decoded:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def _get_scheme(raw: bytes) -> tuple[bytes, bytes] | None:
    """Go's getScheme: (scheme, rest), or None on "missing protocol scheme"."""
    for i, c in enumerate(raw):
        if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
            continue
        if 0x30 <= c <= 0x39 or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # ':'
            if i == 0:
                return None
            return raw[:i], raw[i + 1 :]
        return b"", raw
    return b"", raw


_HOST_OK: Final = frozenset(b"!$&'()*+,;=:[]<>\"")  # sub-delims and the extras Go lets through in hosts


def _valid_optional_port(port: bytes) -> bool:
    return not port or (port[:1] == b":" and (len(port) == 1 or port[1:].isdigit()))


def _host_ok(host: bytes) -> bool:
    """Go's parseHost + unescape(host, encodeHost), reduced to its accept/reject decision."""
    if host.startswith(b"["):
        end = host.rfind(b"]")
        if end < 0 or not _valid_optional_port(host[end + 1 :]):
            return False
        zone = host.find(b"%25", 0, end)
        if zone >= 0:
            # The zone part has its own, laxer escaping rules: only well-formed %XX matters there.
            return _host_chars_ok(host[:zone]) and _unescape_ok(host[zone:end]) and _host_chars_ok(host[end:])
        return _host_chars_ok(host)
    colon = host.rfind(b":")
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        return False
    return _host_chars_ok(host)


def _host_chars_ok(host: bytes) -> bool:
    i = 0
    n = len(host)
    while i < n:
        c = host[i]
        if c == 0x25:  # '%': must be %XX, and in a host only for non-ASCII bytes or an escaped '%'
            pair = host[i + 1 : i + 3]
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                return False
            if int(pair[:1], 16) < 8 and pair != b"25":
                return False
            i += 3
            continue
        if c < 0x80 and not (
            0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 or c in b"-._~" or c in _HOST_OK
        ):
            return False
        i += 1
    return True


def _authority_ok(authority: bytes) -> bool:
    at = authority.rfind(b"@")
    if at >= 0:
        userinfo = authority[:at]
        if not _unescape_ok(userinfo):
            return False
        for c in userinfo:
            if c < 0x80 and not (
                0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 or c in b"-._:~!$&'()*+,;=%@"
            ):
                return False
        authority = authority[at + 1 :]
    return _host_ok(authority)


def _url_query(raw: bytes) -> bytes | None:
    """RawQuery of url.Parse(raw), or None when url.Parse fails."""
    if _CTL.search(raw):
        return None
    raw, _, frag = raw.partition(b"#")
    if frag and not _unescape_ok(frag):
        return None
    if raw == b"*":
        return b""
    scheme_rest = _get_scheme(raw)
    if scheme_rest is None:
        return None
    scheme, rest = scheme_rest
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        rest, query = rest[:-1], b""
    else:
        rest, _, query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:
            return query  # opaque URL
        if b":" in rest.partition(b"/")[0]:
            return None
    if (scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
        authority = rest[2:]
        slash = authority.find(b"/")
        if slash >= 0:
            authority, rest = authority[:slash], authority[slash:]
        else:
            rest = b""
        if not _authority_ok(authority):
            return None
    if not _unescape_ok(rest):
        return None
    return query


# An absolute path without authority, escapes, fragment or control characters, and a query without
# escapes, '+' or ';': url.Parse cannot fail and no value needs decoding (most API server URIs).
_PLAIN = re.compile(r"/(?!/)[^\x00-\x1f\x7f#%?]*\?[^\x00-\x1f\x7f#%;+]*\Z")


def first_query_values(uri: str | bytes) -> dict[Decoded, Decoded] | None:
    """First value of every query key, or None when Go's url.Parse or url.ParseQuery fails."""
    if type(uri) is str:
        if "?" not in uri:
            return {}  # no query at all: no value, whether or not the rest would parse
        if _PLAIN.match(uri):
            values: dict[Decoded, Decoded] = {}
            for item in uri.partition("?")[2].split("&"):
                if item:
                    name, _, text = item.partition("=")
                    values.setdefault(name, text)
            return values
    raw = uri if isinstance(uri, bytes) else uri.encode("utf-8", "surrogateescape")
    query = _url_query(raw)
    if query is None:
        return None
    values = {}
    if not query:
        return values
    ok = True
    for pair in query.split(b"&"):
        if b";" in pair:
            ok = False
            continue
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        if not _unescape_ok(key) or not _unescape_ok(value):
            ok = False
            continue
        k = _as_text(_query_unescape(key))
        if k not in values:
            values[k] = _as_text(_query_unescape(value))
    return values if ok else None
