"""A lenient JSON parser that keeps the raw text of every value, for the events orjson cannot serve.

The reference plugin parses with valyala/fastjson, which is lenient in ways orjson is not, and renders
non-string values from their original text. This parser reproduces what matters for field values:

* strings end at the first unescaped quote; escapes are decoded best effort (an invalid or lone
  ``\\uXXXX`` stays as written), invalid UTF-8 and control characters are accepted;
* a number is any run of ``0-9 . - + e E`` (or inf/nan), kept as text (:class:`RawNumber`);
* ``true``/``false``/``null`` are matched by prefix; the first of duplicate keys wins (fastjson's Get);
* nesting deeper than :data:`MAX_DEPTH` is an error, as in fastjson;
* objects and arrays are plain dicts and lists (so extractors need no special case); their compact
  rendering, with every leaf as originally written (strings keep their escapes, numbers their
  spelling), is kept in a side table keyed by ``id()`` of the object (the tree keeps them alive).

Strings are decoded with ``surrogateescape`` so that invalid UTF-8 survives as lone surrogates; the
caller turns such values back into bytes. Pure Python and slower than orjson: used only when needed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_DEPTH", "JSONParseError", "RawNumber", "parse"]

MAX_DEPTH: Final = 300  # fastjson.MaxDepth


class JSONParseError(ValueError):
    pass


class RawNumber:
    """A JSON number, kept as its original text (fastjson never converts it for rendering)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawNumber({self.text!r})"


_WS = re.compile(rb"[ \t\r\n]*")
_NUMBER = re.compile(rb"[0-9.eE+\-]*")
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.?)", re.DOTALL)
_SIMPLE_ESCAPES: Final = {
    b'"': b'"',
    b"\\": b"\\",
    b"/": b"/",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
}


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def unescape(raw: bytes) -> bytes:
    """fastjson's best-effort unescape: unknown escapes and lone surrogates stay as written."""
    if b"\\" not in raw:
        return raw
    out = bytearray()
    pos = 0
    n = len(raw)
    while pos < n:
        j = raw.find(b"\\", pos)
        if j < 0:
            out += raw[pos:]
            break
        out += raw[pos:j]
        c = raw[j + 1 : j + 2]
        if c == b"u":
            hexs = raw[j + 2 : j + 6]
            if len(hexs) < 4 or not _is_hex(hexs):
                out += b"\\u"
                pos = j + 2
                continue
            x = int(hexs, 16)
            pos = j + 6
            if 0xD800 <= x < 0xE000:
                # A surrogate: only a following \uXXXX completes it (any value; a bad pair gives U+FFFD).
                nxt = raw[pos : pos + 6]
                if len(nxt) == 6 and nxt[:2] == b"\\u" and _is_hex(nxt[2:]):
                    y = int(nxt[2:], 16)
                    if x < 0xDC00 and 0xDC00 <= y < 0xE000:
                        cp = 0x10000 + ((x - 0xD800) << 10) + (y - 0xDC00)
                    else:
                        cp = 0xFFFD
                    out += chr(cp).encode()
                    pos += 6
                else:
                    out += b"\\u" + hexs
                continue
            out += chr(x).encode("utf-8")
            continue
        simple = _SIMPLE_ESCAPES.get(c)
        if simple is not None:
            out += simple
        else:
            out += b"\\" + c  # unknown escape (or a trailing backslash) kept unchanged
        pos = j + 1 + len(c)
    return bytes(out)


def _is_hex(b: bytes) -> bool:
    return all(ch in b"0123456789abcdefABCDEF" for ch in b)


class _Parser:
    __slots__ = ("data", "invalid_utf8", "raw_texts")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.invalid_utf8 = False
        self.raw_texts: dict[int, str] = {}

    def ws(self, pos: int) -> int:
        m = _WS.match(self.data, pos)
        return m.end() if m else pos

    def string(self, pos: int) -> tuple[bytes, int]:
        """Raw bytes between the quotes starting at pos, and the position after the closing quote."""
        data = self.data
        start = pos + 1
        i = start
        while True:
            q = data.find(b'"', i)
            if q < 0:
                raise JSONParseError("missing closing quote")
            k = q
            while k > start and data[k - 1] == 0x5C:
                k -= 1
            if (q - k) % 2 == 0:
                return data[start:q], q + 1
            i = q + 1

    def text(self, raw: bytes) -> str:
        value = unescape(raw)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 = True
            return _decode(value)

    def value(self, pos: int, depth: int) -> tuple[object, str, int]:
        """(python value, raw rendering, next position) for the value at pos (whitespace skipped)."""
        data = self.data
        if pos >= len(data):
            raise JSONParseError("unexpected end")
        c = data[pos]
        if c == 0x7B:  # {
            return self.obj(pos, depth + 1)
        if c == 0x5B:  # [
            return self.arr(pos, depth + 1)
        if c == 0x22:  # "
            raw, end = self.string(pos)
            rawtext = _decode(raw)
            if b"\\" not in raw:
                try:
                    return raw.decode("utf-8"), f'"{rawtext}"', end
                except UnicodeDecodeError:
                    self.invalid_utf8 = True
                    return rawtext, f'"{rawtext}"', end
            return self.text(raw), f'"{rawtext}"', end
        if c == 0x74:  # t
            if data.startswith(b"true", pos):
                return True, "true", pos + 4
            raise JSONParseError("bad literal")
        if c == 0x66:  # f
            if data.startswith(b"false", pos):
                return False, "false", pos + 5
            raise JSONParseError("bad literal")
        if c == 0x6E:  # n
            if data.startswith(b"null", pos):
                return None, "null", pos + 4
            if data[pos : pos + 3].lower() == b"nan":
                return RawNumber(_decode(data[pos : pos + 3])), _decode(data[pos : pos + 3]), pos + 3
            raise JSONParseError("bad literal")
        return self.number(pos)

    def number(self, pos: int) -> tuple[object, str, int]:
        data = self.data
        m = _NUMBER.match(data, pos)
        end = m.end() if m else pos
        if end == pos or (end == pos + 1 and data[pos] in b"+-"):
            # Only inf/nan (optionally signed) may start with something else than a number character.
            sign = 1 if end == pos + 1 else 0
            word = data[pos + sign : pos + sign + 3].lower()
            if word in (b"inf", b"nan") and end == pos + sign:
                text = _decode(data[pos : pos + sign + 3])
                return RawNumber(text), text, pos + sign + 3
            if end == pos:
                raise JSONParseError("unexpected character")
        text = _decode(data[pos:end])
        return RawNumber(text), text, end

    def obj(self, pos: int, depth: int) -> tuple[dict[str, object], str, int]:
        if depth > MAX_DEPTH:
            raise JSONParseError("too deep")
        data = self.data
        result: dict[str, object] = {}
        pos = self.ws(pos + 1)
        if data[pos : pos + 1] == b"}":
            self.raw_texts[id(result)] = "{}"
            return result, "{}", pos + 1
        parts: list[str] = []
        while True:
            if data[pos : pos + 1] != b'"':
                raise JSONParseError("expected key")
            rawkey, pos = self.string(pos)
            pos = self.ws(pos)
            if data[pos : pos + 1] != b":":
                raise JSONParseError("expected colon")
            pos = self.ws(pos + 1)
            value, raw, pos = self.value(pos, depth)
            key = self.text(rawkey)
            if key not in result:  # fastjson's Get returns the first match
                result[key] = value
            parts.append(f'"{_decode(rawkey)}":{raw}')
            pos = self.ws(pos)
            c = data[pos : pos + 1]
            if c == b",":
                pos = self.ws(pos + 1)
                continue
            if c == b"}":
                text = "{" + ",".join(parts) + "}"
                self.raw_texts[id(result)] = text
                return result, text, pos + 1
            raise JSONParseError("expected , or }")

    def arr(self, pos: int, depth: int) -> tuple[list[object], str, int]:
        if depth > MAX_DEPTH:
            raise JSONParseError("too deep")
        data = self.data
        result: list[object] = []
        pos = self.ws(pos + 1)
        if data[pos : pos + 1] == b"]":
            self.raw_texts[id(result)] = "[]"
            return result, "[]", pos + 1
        parts: list[str] = []
        while True:
            value, raw, pos = self.value(pos, depth)
            result.append(value)
            parts.append(raw)
            pos = self.ws(pos)
            c = data[pos : pos + 1]
            if c == b",":
                pos = self.ws(pos + 1)
                continue
            if c == b"]":
                text = "[" + ",".join(parts) + "]"
                self.raw_texts[id(result)] = text
                return result, text, pos + 1
            raise JSONParseError("expected , or ]")


def parse(data: bytes) -> tuple[object, bool, dict[int, str]]:
    """Parse a whole document: (value, saw_invalid_utf8, raw text of each object/array by id).

    Raises JSONParseError."""
    parser = _Parser(data)
    value, _raw, pos = parser.value(parser.ws(0), 0)
    if parser.ws(pos) != len(data):
        raise JSONParseError("unexpected tail")
    return value, parser.invalid_utf8, parser.raw_texts
