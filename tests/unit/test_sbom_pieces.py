"""The SBOM's pieces that need no build: the time and commit it records, its bytes (same document, same
serial number), the copy that names the tarball's digest, and the inventory refusing a file no component
brought."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from k8saudit_eks_py.packaging import components, inventory, licences, sbom, source
from k8saudit_eks_py.packaging.components import Component
from k8saudit_eks_py.packaging.runtime import host_interpreter

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "k8saudit-eks-py-runtime"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_recorded_time_is_source_date_epoch_else_the_commit_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # the commit is the checkout's the code comes from, whatever the cwd
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    pinned = source.build_source()
    assert (pinned.timestamp, pinned.source_date_epoch) == (1700000000, 1700000000)
    assert pinned.commit == _git("rev-parse", "HEAD")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    unpinned = source.build_source()
    assert unpinned.timestamp == int(_git("log", "-1", "--format=%ct"))
    assert unpinned.source_date_epoch == 0  # what write_tarball stamps the entries with
    assert unpinned.modified == bool(_git("status", "--porcelain", "--untracked-files=no"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH='yesterday' is not a number"):
        source.build_source()


def _document(version: str = "1.0") -> dict[str, object]:
    project = Component(
        "k8saudit-eks-py", "project", "k8saudit-eks-py", version, "Apache-2.0", files=["a.so"]
    )
    part = Component("pypi:six", "pypi", "six", "1.17.0", "MIT", purl="pkg:pypi/six@1.17.0", files=["six.py"])
    built = source.BuildSource(commit="0" * 40, modified=False, source_date_epoch=0, timestamp=1700000000)
    return sbom.document([project, part], machine="aarch64", tarball_name="x.tar.gz", source=built)


def test_same_document_same_bytes_and_a_serial_number_from_the_content() -> None:
    first, again, other = sbom.dumps(_document()), sbom.dumps(_document()), sbom.dumps(_document("1.1"))
    assert first == again
    serial = json.loads(first)["serialNumber"]
    assert serial.startswith("urn:uuid:") and serial != json.loads(other)["serialNumber"]
    doc = json.loads(first)
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert doc["metadata"]["component"]["pedigree"] == {"commits": [{"uid": "0" * 40}]}
    assert [c["bom-ref"] for c in doc["components"]] == ["pypi:six"]


def test_the_copy_beside_the_tarball_adds_its_digest_and_nothing_else(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    (staging / RUNTIME).mkdir(parents=True)
    sbom.write(staging, _document())
    tarball = tmp_path / "k8saudit-eks-py-1.0-linux-aarch64.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(staging / RUNTIME, arcname=RUNTIME)
    carried = sbom.from_tarball(tarball)
    beside = json.loads(sbom.write_beside(tarball).read_bytes())
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert beside["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert beside["components"] == carried["components"]
    assert beside["serialNumber"] != carried["serialNumber"]
    assert tarball.with_name("k8saudit-eks-py-1.0-linux-aarch64.cdx.json").is_file()


def _staged(tmp_path: Path, extra: str) -> tuple[Path, inventory.Inputs]:
    python = host_interpreter()
    assert python.license is not None
    staging = tmp_path / "staging"
    pylib = staging / RUNTIME / "lib" / "python{}.{}".format(*python.version)
    (pylib / "site-packages").mkdir(parents=True)
    (staging / RUNTIME / "licenses").mkdir()
    shutil.copyfile(python.license, staging / RUNTIME / "licenses" / "CPython-LICENSE.txt")
    (pylib / "os.py").write_text("# the standard library\n")
    (staging / "libk8saudit-eks-py.so").write_bytes(b"\x7fELF")
    if extra:
        (staging / extra).parent.mkdir(parents=True, exist_ok=True)
        (staging / extra).write_text("?\n")
    built = source.BuildSource(commit=None, modified=False, source_date_epoch=0, timestamp=0)
    inputs = inventory.Inputs(
        version="1.0",
        python=python,
        sysroot=None,
        distributions=[],
        wheels={},
        libraries={},
        source=built,
        distro="debian-12",
        project_licence=ROOT / "LICENSE",
    )
    return staging, inputs


def test_inventory_assigns_every_file_and_ships_the_project_licence(tmp_path: Path) -> None:
    staging, inputs = _staged(tmp_path, "")
    project, cpython = inventory.collect(staging, inputs)
    assert project.ref == "k8saudit-eks-py" and cpython.ref == "cpython"
    assert f"{RUNTIME}/licenses/k8saudit-eks-py-LICENSE.txt" in project.files
    assert (staging / RUNTIME / "licenses" / "k8saudit-eks-py-LICENSE.txt").read_bytes() == (
        ROOT / "LICENSE"
    ).read_bytes()
    assert "libk8saudit-eks-py.so" in project.files and f"{RUNTIME}/sbom.cdx.json" in project.files
    assert f"{RUNTIME}/lib/python3.11/os.py" in cpython.files
    assert ("k8saudit-eks-py:commit", "unknown: not built from a git checkout") in project.properties


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (f"{RUNTIME}/lib/python3.11/site-packages/mystery/__init__.py", "no distribution installed it"),
        (f"{RUNTIME}/stray.bin", "no component brought it"),
        (f"{RUNTIME}/lib/python3.11/mystery.py", "not in the standard library of"),
        (f"{RUNTIME}/lib/libmystery.so.1", "a library the build did not record copying"),
        (f"{RUNTIME}/licenses/unknown.copyright", "a licence text of no component"),
    ],
)
def test_inventory_refuses_a_file_no_component_brought(tmp_path: Path, extra: str, message: str) -> None:
    staging, inputs = _staged(tmp_path, extra)
    with pytest.raises(inventory.InventoryError, match=message):
        inventory.collect(staging, inputs)


def test_inventory_refuses_a_licence_an_apache_distribution_may_not_ship(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging, inputs = _staged(tmp_path, "")
    monkeypatch.setattr(licences, "COMPATIBLE", licences.COMPATIBLE - {"PSF-2.0"})
    with pytest.raises(inventory.InventoryError, match=r"may not ship .*: cpython 3\.11\.\d+ \(PSF-2\.0\)"):
        inventory.collect(staging, inputs)


def test_a_distributions_own_sbom_gives_what_it_compiled_in(tmp_path: Path) -> None:
    info = tmp_path / "demo-1.0.dist-info"
    (info / "sboms").mkdir(parents=True)
    crate = {"type": "library", "name": "ryu", "version": "1.0", "purl": "pkg:cargo/ryu@1.0"}
    doc = {
        "bomFormat": "CycloneDX",
        "components": [
            {**crate, "scope": "required", "licenses": [{"expression": "Apache-2.0 OR BSL-1.0"}]},
            {**crate, "name": "cc", "purl": "pkg:cargo/cc@1", "scope": "excluded", "licenses": []},
            {**crate, "name": "x", "purl": "pkg:cargo/x@1", "licenses": [{"license": {"id": "MIT"}}]},
        ],
    }
    (info / "sboms" / "demo.cyclonedx.json").write_text(json.dumps(doc))
    [bom] = components.own_sboms(info)
    assert components.embedded(bom) == [
        components.Embedded("ryu", "1.0", "pkg:cargo/ryu@1.0", "Apache-2.0 OR BSL-1.0"),
        components.Embedded("x", "1.0", "pkg:cargo/x@1", "MIT"),
    ]
    doc["components"].append({**crate, "name": "y", "purl": "pkg:cargo/y@1", "licenses": []})
    (info / "sboms" / "demo.cyclonedx.json").write_text(json.dumps(doc))
    with pytest.raises(licences.LicenceError, match="y has no SPDX licence"):
        components.embedded(bom)
