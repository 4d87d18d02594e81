"""Assign every file of the staged artifact to the component it came from, and put each component's licence
text in licenses/. A file no component claims fails the build: the SBOM accounts for everything shipped."""

from __future__ import annotations

import hashlib
import platform
import sysconfig
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from k8saudit_eks_py.packaging import components, licences, wheels
from k8saudit_eks_py.packaging.components import Component
from k8saudit_eks_py.packaging.debian import Sysroot
from k8saudit_eks_py.packaging.distributions import normalize
from k8saudit_eks_py.packaging.naming import DIST_NAME, RUNTIME_DIR, SO_NAME
from k8saudit_eks_py.packaging.runtime import PLUGIN_PACKAGE, Interpreter
from k8saudit_eks_py.packaging.source import BuildSource

SBOM_PATH = f"{RUNTIME_DIR}/sbom.cdx.json"
LICENSES = f"{RUNTIME_DIR}/licenses"


class InventoryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Inputs:
    version: str
    python: Interpreter
    sysroot: Sysroot | None  # a cross build's unpacked Debian packages; None: this machine's interpreter
    distributions: list[metadata.Distribution]
    wheels: dict[str, Path]  # normalized name → the wheel its files were unpacked from
    libraries: dict[str, Path]  # soname copied into lib/ → the file it was copied from
    source: BuildSource
    distro: str  # debian-12
    project_licence: Path
    # Wheels at hand (the cross builds' cache): one whose RECORD matches the installed files a distribution
    # was copied from is named as its source.
    cached_wheels: list[Path] = field(default_factory=list)


def _pyc_source(path: PurePosixPath) -> PurePosixPath:
    """`pkg/__pycache__/mod.cpython-311.pyc` → `pkg/mod.py`; other paths unchanged."""
    if path.suffix == ".pyc" and path.parent.name == "__pycache__":
        return path.parent.parent / (path.name.split(".", 1)[0] + ".py")
    return path


def _distribution_paths(dist: metadata.Distribution, wheel: Path | None) -> set[PurePosixPath]:
    """Paths (relative to site-packages) a distribution may have written: its RECORD, or its wheel's names."""
    if wheel is None:
        return {PurePosixPath(str(f)) for f in dist.files or []}
    out = set()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            path = PurePosixPath(name)
            if path.parts and path.parts[0].endswith(".data") and len(path.parts) > 2:
                path = PurePosixPath(*path.parts[2:])
            out.add(path)
    return out


class _Catalogue:
    """Components by ref, and which component each tarball path belongs to."""

    def __init__(self, staging: Path, inputs: Inputs) -> None:
        self.staging = staging
        self.inputs = inputs
        self.by_ref: dict[str, Component] = {}
        self.owner: dict[str, str] = {}

    def add(self, component: Component, path: str) -> None:
        known = self.by_ref.setdefault(component.ref, component)
        self.owner[path] = known.ref
        known.files.append(path)

    def debian_file(self, sysroot_file: Path, path: str) -> None:
        sysroot = self.inputs.sysroot
        assert sysroot is not None
        package = sysroot.owner(sysroot_file)
        if package is None:
            raise InventoryError(f"{path}: no unpacked Debian package brought {sysroot_file}")
        ref = f"deb:{package.name}"
        if ref not in self.by_ref:
            copyright_file = sysroot.root / "usr" / "share" / "doc" / package.name / "copyright"
            component = components.debian(package, copyright_file, self.inputs.distro)
            self.by_ref[ref] = component
            self.licence_text(component, copyright_file, f"{package.name}.copyright")
        self.add(self.by_ref[ref], path)

    def licence_text(self, component: Component, text: Path, name: str) -> None:
        """Ship `text` as licenses/<name>, unless licenses/ already has the same bytes (Debian's CPython
        packages share one copyright file, already there as CPython-LICENSE.txt)."""
        folder = self.staging / LICENSES
        data = text.read_bytes()
        for existing in sorted(folder.iterdir()):
            if existing.read_bytes() == data:
                component.licence_texts.append(f"{LICENSES}/{existing.name}")
                return
        (folder / name).write_bytes(data)
        component.licence_texts.append(f"{LICENSES}/{name}")


def collect(staging: Path, inputs: Inputs) -> list[Component]:
    """The components of the staged artifact in `staging`, the project first, each with its files (tarball
    paths, sorted) and licence texts (copied into licenses/ when missing). The SBOM file itself, written
    later, is the project's."""
    catalogue = _Catalogue(staging, inputs)
    source = inputs.source
    project = components.project(inputs.version, source.commit, source.modified)
    catalogue.by_ref[project.ref] = project
    catalogue.licence_text(project, inputs.project_licence, f"{DIST_NAME}-LICENSE.txt")
    python = inputs.python
    cpython: Component | None = None
    if inputs.sysroot is None:
        if python.license is None:
            raise InventoryError(
                "the packaging interpreter has no LICENSE.txt: cannot state CPython's licence"
            )
        build = f"{platform.python_implementation()} {platform.python_compiler()}, configured with " + str(
            sysconfig.get_config_var("CONFIG_ARGS") or "defaults"
        )
        cpython = components.cpython(platform.python_version(), python.license, build)
        catalogue.by_ref[cpython.ref] = cpython
        cpython.licence_texts.append(f"{LICENSES}/CPython-LICENSE.txt")

    pylib = f"{RUNTIME_DIR}/lib/python{python.version[0]}.{python.version[1]}"
    site = f"{pylib}/site-packages"
    dist_owner: dict[PurePosixPath, Component] = {}
    copied: dict[str, metadata.Distribution] = {}  # ref → the installed distribution its files came from
    for dist in inputs.distributions:
        wheel = inputs.wheels.get(normalize(dist.metadata["Name"]))
        paths = _distribution_paths(dist, wheel)
        infos = {p.parts[0] for p in paths if p.parts and p.parts[0].endswith(".dist-info")}
        if len(infos) != 1:
            raise InventoryError(f"{dist.metadata['Name']}: expected one .dist-info, found {sorted(infos)}")
        dist_info = staging / site / infos.pop()
        component = components.pypi(dist_info, wheel)
        texts = licences.licence_files(dist_info)
        if not texts:
            raise InventoryError(f"{component.name} ships no licence text in {dist_info.name}")
        component.licence_texts.extend(p.relative_to(staging).as_posix() for p in texts)
        component.boms = [p.relative_to(staging).as_posix() for p in components.own_sboms(dist_info)]
        catalogue.by_ref[component.ref] = component
        if wheel is None:
            copied[component.ref] = dist
        for written in paths:
            dist_owner[written] = component

    licence_owner = {text: c.ref for c in catalogue.by_ref.values() for text in c.licence_texts}
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    for name in files:
        _attribute(catalogue, name, pylib, site, dist_owner, licence_owner, cpython)
    # The Debian components found while attributing files brought their copyright files into licenses/.
    for text in sorted(p.relative_to(staging).as_posix() for p in (staging / LICENSES).iterdir()):
        if text not in catalogue.owner:
            refs = [c.ref for c in catalogue.by_ref.values() if text in c.licence_texts]
            if not refs:
                raise InventoryError(f"{text}: a licence text of no component")
            catalogue.add(catalogue.by_ref[refs[0]], text)
    catalogue.add(project, SBOM_PATH)
    for ref, dist in copied.items():
        _wheel_evidence(catalogue.by_ref[ref], dist, site, inputs.cached_wheels)
    out = [project, *sorted((c for c in catalogue.by_ref.values() if c is not project), key=lambda c: c.ref)]
    for component in out:
        if not component.files:
            raise InventoryError(f"{component.ref} is listed but ships no file")
        component.files.sort()
    licensed = [(c.name, c.version, c.licence) for c in out]
    licensed += [(e.name, e.version, e.licence) for c in out for e in c.embedded]
    refused = [f"{n} {v} ({licence})" for n, v, licence in licensed if not licences.compatible(licence)]
    if refused:
        named = ", ".join(refused)
        raise InventoryError(f"licences an Apache-2.0 distribution may not ship (licences.py): {named}")
    return out


def _attribute(
    catalogue: _Catalogue,
    path: str,
    pylib: str,
    site: str,
    dist_owner: dict[PurePosixPath, Component],
    licence_owner: dict[str, str],
    cpython: Component | None,
) -> None:
    inputs = catalogue.inputs
    project = catalogue.by_ref[components.PROJECT_REF]
    lib = f"{RUNTIME_DIR}/lib/"
    if path in licence_owner:
        catalogue.add(catalogue.by_ref[licence_owner[path]], path)
    elif path.startswith(f"{RUNTIME_DIR}/licenses/"):
        return  # a Debian package's copyright file: claimed once its package is known (see collect)
    elif path == SO_NAME:
        catalogue.add(project, path)
    elif path.startswith(site + "/"):
        relative = _pyc_source(PurePosixPath(path[len(site) + 1 :]))
        top = relative.parts[0]
        if top == PLUGIN_PACKAGE or top == f"{PLUGIN_PACKAGE}-{inputs.version}.dist-info":
            catalogue.add(project, path)
        elif relative in dist_owner:
            catalogue.add(dist_owner[relative], path)
        else:
            raise InventoryError(f"{path}: no distribution installed it")
    elif path.startswith(pylib + "/"):
        relative = _pyc_source(PurePosixPath(path[len(pylib) + 1 :]))
        if cpython is not None:
            if not (inputs.python.stdlib / relative).is_file():
                raise InventoryError(f"{path}: not in the standard library of {inputs.python.stdlib}")
            catalogue.add(cpython, path)
        else:
            catalogue.debian_file(inputs.python.stdlib / relative, path)
    elif path.startswith(lib) and "/" not in path[len(lib) :]:
        soname = path[len(lib) :]
        if soname == inputs.python.soname:
            if cpython is not None:
                catalogue.add(cpython, path)
            else:
                catalogue.debian_file(inputs.python.libpython, path)
        elif soname in inputs.libraries:
            _library(catalogue, inputs.libraries[soname], path)
        else:
            raise InventoryError(f"{path}: a library the build did not record copying")
    else:
        raise InventoryError(f"{path}: no component brought it")


def _library(catalogue: _Catalogue, source: Path, path: str) -> None:
    """A bundled shared library: from an unpacked Debian package (cross build) or an installed one."""
    if catalogue.inputs.sysroot is not None:
        catalogue.debian_file(source, path)
        return
    found = components.host_package(source)
    if found is None:
        raise InventoryError(f"{path}: copied from {source}, which no installed Debian package owns")
    package, copyright_file = found
    ref = f"deb:{package.name}"
    if ref not in catalogue.by_ref:
        component = components.debian(package, copyright_file, catalogue.inputs.distro)
        catalogue.by_ref[ref] = component
        catalogue.licence_text(component, copyright_file, f"{package.name}.copyright")
    catalogue.add(catalogue.by_ref[ref], path)


def _wheel_evidence(component: Component, dist: metadata.Distribution, site: str, cached: list[Path]) -> None:
    """Name the wheel a distribution copied from the environment was installed from: a cached wheel of the
    same name and version whose RECORD gives every installed file the artifact took (bytecode aside) the
    bytes it has in the environment. (The copies differ only where the packager set a RUNPATH.)"""
    taken = [path[len(site) + 1 :] for path in component.files if path.startswith(site + "/")]
    installed = {name: Path(str(dist.locate_file(name))) for name in taken if not name.endswith(".pyc")}
    for wheel in cached:
        if wheels.wheel_identity(wheel) != (normalize(component.name), component.version):
            continue
        hashes = wheels.record(wheel)
        if all(
            hashes.get(name) == hashlib.sha256(file.read_bytes()).hexdigest()
            for name, file in installed.items()
        ):
            component.sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
            component.properties = [
                (
                    key,
                    f"PyPI wheel {wheel.name}, installed in the packaging environment (its files match the "
                    "wheel's RECORD) and copied from there",
                )
                if key == "k8saudit-eks-py:source"
                else (key, value)
                for key, value in component.properties
            ]
            return
