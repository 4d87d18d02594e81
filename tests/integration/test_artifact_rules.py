"""The tarball writer refuses what falcoctl refuses, and writes what falcoctl's extractor can replay."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from k8saudit_eks_py.packaging.oci import config_blob, image_index, image_manifest, layer_blob
from k8saudit_eks_py.packaging.reference import parse_reference
from k8saudit_eks_py.packaging.tarball import LayoutError, check_tarball, write_tarball
from tests.support.registry import falcoctl_extract


def _tree(root: Path) -> Path:
    (root / "k8saudit-eks-py-runtime" / "lib" / "python3.11").mkdir(parents=True)
    (root / "k8saudit-eks-py-runtime" / "lib" / "python3.11" / "os.py").write_text("# os\n")
    (root / "libk8saudit-eks-py.so").write_bytes(b"\x7fELF")
    return root


def test_written_tarball_extracts_like_falcoctl_and_is_reproducible(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    first = write_tarball(tree, tmp_path / "a.tar.gz")
    second = write_tarball(tree, tmp_path / "b.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    size = check_tarball(first, "libk8saudit-eks-py.so")
    assert size.files == 2
    with tarfile.open(first) as tar:
        assert {m.uid for m in tar} == {0} and {m.mtime for m in tar} == {0}
    dest = tmp_path / "plugins"
    dest.mkdir()
    falcoctl_extract(first, dest)
    assert (dest / "k8saudit-eks-py-runtime" / "lib" / "python3.11" / "os.py").read_text() == "# os\n"


def test_links_and_dotdot_names_are_refused(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "links")
    os.symlink("libk8saudit-eks-py.so", tree / "alias.so")
    with pytest.raises(LayoutError, match="symbolic link"):
        write_tarball(tree, tmp_path / "links.tar.gz")
    dotted = _tree(tmp_path / "dotted")
    (dotted / "weird..name").write_text("x")
    with pytest.raises(LayoutError, match=r"'\.\.'"):
        write_tarball(dotted, tmp_path / "dotted.tar.gz")


def test_check_refuses_a_library_below_the_root(tmp_path: Path) -> None:
    tree = tmp_path / "nested"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "libk8saudit-eks-py.so").write_bytes(b"x")
    with pytest.raises(LayoutError, match="not at the archive root"):
        check_tarball(write_tarball(tree, tmp_path / "n.tar.gz"), "libk8saudit-eks-py.so")


def test_documents_carry_falcoctl_media_types() -> None:
    config = config_blob("k8saudit-eks", "0.12.100", "3.0.0")
    layer = layer_blob("k8saudit-eks-py-0.12.100-linux-x86_64.tar.gz", b"data")
    manifest = image_manifest(config, layer)
    index = image_index([(manifest, "linux", "amd64")])
    assert config.data == (
        b'{"name":"k8saudit-eks","version":"0.12.100",'
        b'"requirements":[{"name":"plugin_api_version","version":"3.0.0"}]}'
    )
    assert index.descriptor()["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert b'"platform":{"architecture":"amd64","os":"linux"}' in index.data
    assert manifest.digest in index.data.decode()


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("ghcr.io/me/plugin/k8saudit-eks-py", "ghcr.io", "me/plugin/k8saudit-eks-py", None),
        ("127.0.0.1:5000/p/k8saudit-eks-py:0.12.100", "127.0.0.1:5000", "p/k8saudit-eks-py", "0.12.100"),
        ("localhost/x", "localhost", "x", None),
    ],
)
def test_reference_parsing(text: str, registry: str, repository: str, tag: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


@pytest.mark.parametrize("text", ["k8saudit-eks-py", "me/plugin", "ghcr.io/Me/x", "ghcr.io/x@sha256:ab"])
def test_reference_rejects_non_qualified_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_reference(text)
