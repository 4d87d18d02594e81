"""The pieces of a cross build that need no network: platform names, the unpacked Debian tree's links (never
followed out into this machine's files), picking and unpacking a target wheel."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from k8saudit_eks_py.packaging import debian, wheels
from k8saudit_eks_py.packaging.naming import parse_platform


def test_platforms_are_falcoctl_spellings() -> None:
    assert parse_platform("linux/arm64") == ["aarch64"]
    assert parse_platform("linux/amd64") == ["x86_64"]
    assert parse_platform("all") == ["x86_64", "aarch64"]
    with pytest.raises(ValueError, match="not one of linux/amd64, linux/arm64, all"):
        parse_platform("arm64")


def test_sysroot_links_resolve_inside_the_sysroot_or_are_dropped(tmp_path: Path) -> None:
    root = tmp_path / "sysroot"
    stdlib = root / "usr" / "lib" / "python3.11"
    stdlib.mkdir(parents=True)
    (root / "etc" / "python3.11").mkdir(parents=True)
    (root / "etc" / "python3.11" / "sitecustomize.py").write_text("# the target's\n")
    os.symlink(
        "/etc/python3.11/sitecustomize.py", stdlib / "sitecustomize.py"
    )  # absolute: the sysroot's /etc
    os.symlink("/etc/hostname", stdlib / "hostname")  # exists on this machine, not in the sysroot
    os.symlink("../../../../../../../../etc/passwd", stdlib / "escape")  # climbs out of the sysroot
    (stdlib / "real.py").write_text("x = 1\n")
    os.symlink("real.py", stdlib / "alias1.py")
    os.symlink("alias1.py", stdlib / "alias2.py")  # a chain
    doc = root / "usr" / "share" / "doc"
    (doc / "libpython3.11-minimal").mkdir(parents=True)
    (doc / "libpython3.11-minimal" / "copyright").write_text("PSF\n")
    os.symlink("libpython3.11-minimal", doc / "libpython3.11")  # a directory
    debian._materialize_links(root)
    assert not [p for p in root.rglob("*") if p.is_symlink()]
    assert (stdlib / "sitecustomize.py").read_text() == "# the target's\n"
    assert not (stdlib / "hostname").exists() and not (stdlib / "escape").exists()
    assert (stdlib / "alias2.py").read_text() == "x = 1\n"
    assert (doc / "libpython3.11" / "copyright").read_text() == "PSF\n"


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_the_target_wheel_is_picked_and_unpacked_without_pips_bookkeeping(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    cache.mkdir()
    files = {
        "demo_pkg/__init__.py": b"",
        "demo_pkg/_speed.cpython-311-aarch64-linux-gnu.so": b"\x7fELF",
        "demo_pkg/__pycache__/__init__.cpython-311.pyc": b"stale",
        "demo_pkg-1.2.dist-info/METADATA": b"Name: demo-pkg\nVersion: 1.2\n",
        "demo_pkg-1.2.dist-info/RECORD": b"",
        "demo_pkg-1.2.data/purelib/demo_extra.py": b"y = 2\n",
    }
    _wheel(cache / "demo_pkg-1.2-cp311-cp311-manylinux_2_17_x86_64.whl", files)
    _wheel(cache / "demo_pkg-1.1-cp311-cp311-manylinux_2_17_aarch64.whl", files)
    wanted = _wheel(
        cache / "demo_pkg-1.2-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", files
    )
    assert wheels.fetch("demo-pkg", "1.2", "aarch64", cache, (3, 11), offline=True) == wanted
    with pytest.raises(wheels.WheelError, match=r"no aarch64 wheel of demo-pkg==1\.2"):
        wheels.fetch("demo-pkg", "1.2", "aarch64", cache, (3, 12), offline=True)
    site = tmp_path / "site-packages"
    wheels.install(wanted, site)
    installed = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert installed == [
        "demo_extra.py",
        "demo_pkg-1.2.dist-info/METADATA",
        "demo_pkg/__init__.py",
        "demo_pkg/_speed.cpython-311-aarch64-linux-gnu.so",
    ]
    assert os.access(site / "demo_pkg" / "_speed.cpython-311-aarch64-linux-gnu.so", os.X_OK)


def test_a_wheels_record_gives_each_installed_path_its_sha256(tmp_path: Path) -> None:
    import base64
    import hashlib

    def entry(path: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(data)}"

    record = "\n".join(
        [
            entry("demo_pkg/__init__.py", b""),
            entry("demo_pkg-1.2.data/purelib/demo_extra.py", b"y = 2\n"),
            "demo_pkg-1.2.dist-info/RECORD,,",
        ]
    )
    wheel = _wheel(
        tmp_path / "demo_pkg-1.2-py3-none-any.whl",
        {"demo_pkg/__init__.py": b"", "demo_pkg-1.2.dist-info/RECORD": record.encode()},
    )
    assert wheels.record(wheel) == {
        "demo_pkg/__init__.py": hashlib.sha256(b"").hexdigest(),
        "demo_extra.py": hashlib.sha256(b"y = 2\n").hexdigest(),
    }
    assert wheels.wheel_identity(wheel) == ("demo-pkg", "1.2")
    # A pure wheel serves every target.
    assert wheels.fetch("demo-pkg", "1.2", "aarch64", tmp_path, (3, 11), offline=True) == wheel
