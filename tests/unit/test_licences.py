"""Licences read from Debian copyright files and wheel METADATA, and the compatibility rule for an
Apache-2.0 distribution (k8saudit_eks_py/packaging/licences.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8saudit_eks_py.packaging import licences

COPYRIGHT = Path(__file__).resolve().parents[1] / "data" / "debian-copyright"


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ("libuuid1", "BSD-3-Clause"),  # the libuuid/* paragraph, not util-linux's GPL-2+ `Files: *`
        ("libbz2-1.0", "bzip2-1.0.6"),
        ("liblzma5", "LicenseRef-public-domain"),
        ("libssl3", "Apache-2.0"),
        ("libffi8", "MIT"),
        ("libpython3.11-minimal", "PSF-2.0"),
    ],
)
def test_debian_copyright_gives_the_shipped_library_licence(package: str, expected: str) -> None:
    text = (COPYRIGHT / package).read_text()
    assert licences.from_debian_copyright(package, text) == expected
    assert licences.compatible(expected)


def test_debian_copyright_with_an_unknown_licence_is_refused() -> None:
    text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    text += "Files: *\nLicense: GPL-2+\n"
    with pytest.raises(licences.LicenceError, match="'GPL-2\\+' has no SPDX name"):
        licences.from_debian_copyright("libexample1", text)
    with pytest.raises(licences.LicenceError, match="neither DEP-5 nor a licence known"):
        licences.from_debian_copyright("libexample1", "All rights reserved.\n")


def test_debian_operators_are_kept() -> None:
    text = "Format: x\n\nFiles: *\nLicense: Expat or Apache-2.0\n"
    assert licences.from_debian_copyright("libx", text) == "MIT OR Apache-2.0"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            "Name: a\nLicense-Expression: MPL-2.0 AND (Apache-2.0 OR MIT)\nLicense: MIT\n",
            "MPL-2.0 AND (Apache-2.0 OR MIT)",
        ),
        (
            "Name: a\nLicense: Apache License 2.0\nClassifier: License :: OSI Approved :: MIT License\n",
            "Apache-2.0",
        ),
        (
            "Name: a\nLicense: Dual License\nClassifier: License :: OSI Approved :: BSD License\n"
            "Classifier: License :: OSI Approved :: Apache Software License\n",
            "Apache-2.0 OR BSD-3-Clause",
        ),
    ],
)
def test_wheel_metadata_licence(metadata: str, expected: str) -> None:
    assert licences.from_wheel_metadata(metadata + "\nlong description: License: GPL\n") == expected


def test_wheel_metadata_without_a_known_licence_is_refused() -> None:
    with pytest.raises(licences.LicenceError, match="mystery: METADATA names no licence"):
        licences.from_wheel_metadata("Name: mystery\nLicense: see the website\n")


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("MIT", True),
        ("MPL-2.0 AND (Apache-2.0 OR MIT)", True),
        ("GPL-2.0-or-later OR MIT", True),
        ("GPL-2.0-or-later AND MIT", False),
        ("GPL-3.0-only", False),
        ("(MIT AND GPL-2.0-only) OR BSD-3-Clause", True),
        ("(MIT AND GPL-2.0-only) OR SSPL-1.0", False),
    ],
)
def test_compatibility_with_an_apache_distribution(expression: str, ok: bool) -> None:
    assert licences.compatible(expression) is ok


@pytest.mark.parametrize("expression", ["MIT AND", "(MIT", "MIT)", "MIT WITH x"])
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(licences.LicenceError):
        licences.compatible(expression)


def test_licence_files_of_a_dist_info(tmp_path: Path) -> None:
    info = tmp_path / "x-1.dist-info"
    (info / "licenses").mkdir(parents=True)
    (info / "licenses" / "COPYING.txt").write_text("text")
    (info / "NOTICE").write_text("notice")
    (info / "METADATA").write_text("Name: x\nLicense-File: COPYING.txt\n")
    assert licences.licence_files(info) == [info / "licenses" / "COPYING.txt"]
    (info / "METADATA").write_text("Name: x\n")
    assert licences.licence_files(info) == [info / "NOTICE", info / "licenses" / "COPYING.txt"]
