"""Licences of what the artifact ships, as SPDX expressions: read from Debian copyright files and wheel
METADATA, and checked against what an Apache-2.0 project may redistribute.

Debian's copyright files use their own short names (DEP-5: `Expat`, `BSD-3-clause`, `GPL-2+`) and describe
the whole source package; the licence of a shipped library is the one of the `Files:` paragraph that holds
its source (`libuuid/*` in util-linux, `*` elsewhere). Older, free-form files (CPython's) are recognised by
their licence's title.
"""

from __future__ import annotations

import email
import re
from pathlib import Path

# Licences whose code an Apache-2.0 project may redistribute, unmodified, as libraries and modules loaded by
# its own: permissive ones, public domain, and MPL-2.0 (file-level copyleft: its files keep their licence).
COMPATIBLE = frozenset(
    {
        "0BSD",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSL-1.0",
        "bzip2-1.0.6",
        "ISC",
        "LicenseRef-public-domain",
        "MIT",
        "MIT-0",
        "MPL-2.0",
        "PSF-2.0",
        "Unicode-3.0",
        "Unlicense",
        "Zlib",
    }
)

# Debian short names (DEP-5 and the names Debian's packages use) → SPDX.
_DEBIAN = {
    "apache-2.0": "Apache-2.0",
    "expat": "MIT",
    "mit": "MIT",
    "zlib": "Zlib",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "isc": "ISC",
    "pd": "LicenseRef-public-domain",
    "public-domain": "LicenseRef-public-domain",
    "psf-2": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
}
# Short names that mean different licences in different packages: (package, short name) → SPDX.
_DEBIAN_BY_PACKAGE = {("libbz2-1.0", "bsd-variant"): "bzip2-1.0.6"}
# The source paragraph (DEP-5 `Files:` pattern) of the library a package ships, when it is not `*`.
LIBRARY_FILES = {"libuuid1": "libuuid/*"}
# Free-form copyright files: a licence's own title, as it appears in its text → SPDX.
_TITLES = (("PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2", "PSF-2.0"),)

# Wheel METADATA `License:` free text and trove classifiers → SPDX.
_WHEEL_TEXT = {
    "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "mit": "MIT",
    "mit license": "MIT",
    "bsd": "BSD-3-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "psf-2.0": "PSF-2.0",
}
_CLASSIFIERS = {
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: BSD License": "BSD-3-Clause",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
}


class LicenceError(ValueError):
    pass


def _paragraphs(text: str) -> list[dict[str, str]]:
    """DEP-5 paragraphs: field → first line of its value."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if match:
                fields[match.group(1).lower()] = match.group(2).strip()
        if fields:
            out.append(fields)
    return out


def _debian_id(package: str, short: str) -> str:
    key = short.strip().lower()
    found = _DEBIAN_BY_PACKAGE.get((package, key)) or _DEBIAN.get(key)
    if found is None:
        raise LicenceError(f"{package}: Debian licence {short!r} has no SPDX name here (licences.py)")
    return found


def _debian_expression(package: str, short: str) -> str:
    """`MPL-1.1 or GPL-2+` → `MPL-1.1 OR GPL-2.0-or-later` style: each name mapped, the operators kept."""
    parts = re.split(r"\s+(and|or)\s+", short.strip(), flags=re.IGNORECASE)
    names = [_debian_id(package, p) for p in parts[::2]]
    operators = [p.upper() for p in parts[1::2]]
    out = names[0]
    for op, name in zip(operators, names[1:], strict=True):
        out += f" {op} {name}"
    return out


def from_debian_copyright(package: str, text: str) -> str:
    """SPDX expression of the code `package` ships, from its /usr/share/doc/<package>/copyright."""
    if text.startswith("Format:"):
        wanted = LIBRARY_FILES.get(package, "*")
        for paragraph in _paragraphs(text):
            if wanted in paragraph.get("files", "").split() and paragraph.get("license"):
                return _debian_expression(package, paragraph["license"])
        raise LicenceError(f"{package}: its copyright file has no `Files: {wanted}` paragraph with a licence")
    for title, spdx in _TITLES:
        if title in text:
            return spdx
    raise LicenceError(f"{package}: its copyright file is neither DEP-5 nor a licence known here")


def from_wheel_metadata(metadata_text: str) -> str:
    """SPDX expression of a distribution from its METADATA: License-Expression, else License (when it is a
    known name), else its licence classifiers (several: the user may choose, joined with OR)."""
    message = email.message_from_string(metadata_text)  # the core metadata format is RFC 822 headers
    expression = message.get("License-Expression")
    if expression:
        return str(expression)
    text = str(message.get("License") or "").strip().lower()
    if text in _WHEEL_TEXT:
        return _WHEEL_TEXT[text]
    classified = sorted({_CLASSIFIERS[c] for c in message.get_all("Classifier") or [] if c in _CLASSIFIERS})
    if classified:
        return " OR ".join(classified)
    name = message.get("Name") or "a distribution"
    raise LicenceError(f"{name}: METADATA names no licence known here (License: {text!r})")


def identifiers(expression: str) -> set[str]:
    """The licence identifiers in an SPDX expression."""
    return {t for t in re.findall(r"[A-Za-z0-9.+-]+", expression) if t not in ("AND", "OR", "WITH")}


def compatible(expression: str) -> bool:
    """True when the code under `expression` may be redistributed by an Apache-2.0 project: every AND term,
    and at least one choice of each OR, is in COMPATIBLE. Parentheses are honoured; WITH is not accepted."""
    tokens = re.findall(r"\(|\)|[A-Za-z0-9.+-]+", expression)
    position = 0

    def parse_or() -> bool:
        nonlocal position
        result = parse_and()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            right = parse_and()
            result = result or right
        return result

    def parse_and() -> bool:
        nonlocal position
        result = parse_atom()
        while position < len(tokens) and tokens[position] == "AND":
            position += 1
            right = parse_atom()
            result = result and right
        return result

    def parse_atom() -> bool:
        nonlocal position
        if position >= len(tokens):
            raise LicenceError(f"incomplete licence expression {expression!r}")
        token = tokens[position]
        position += 1
        if token == "(":
            inner = parse_or()
            if position >= len(tokens) or tokens[position] != ")":
                raise LicenceError(f"unbalanced licence expression {expression!r}")
            position += 1
            return inner
        if token in ("AND", "OR", "WITH", ")"):
            raise LicenceError(f"unexpected {token!r} in licence expression {expression!r}")
        return token in COMPATIBLE

    result = parse_or()
    if position != len(tokens):
        raise LicenceError(f"cannot read licence expression {expression!r}")
    return result


def licence_files(dist_info: Path) -> list[Path]:
    """The licence texts a distribution ships in its .dist-info: its License-File entries (PEP 639 puts them
    under licenses/), else files named LICENSE*, LICENCE*, COPYING*, NOTICE*."""
    metadata_file = dist_info / "METADATA"
    named = []
    if metadata_file.is_file():
        for line in metadata_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("License-File:"):
                named.append(line.split(":", 1)[1].strip())
    found = []
    for name in named:
        for candidate in (dist_info / "licenses" / name, dist_info / name):
            if candidate.is_file():
                found.append(candidate)
                break
    if found:
        return sorted(set(found))
    pattern = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)", re.IGNORECASE)
    return sorted(p for p in dist_info.rglob("*") if p.is_file() and pattern.match(p.name))
