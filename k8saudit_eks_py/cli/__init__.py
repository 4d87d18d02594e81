"""The `k8saudit-eks-py` command: demo, check, tail, fields, library-path, package, setup-coordination,
setup-stream, setup-archive."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from k8saudit_eks_py import PLUGIN_NAME, __version__, library_path

__all__ = ["build_parser", "main", "sub_names"]


def sub_names(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names, in help order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _library_path(args: argparse.Namespace) -> int:
    try:
        print(library_path())
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from k8saudit_eks_py.cli import (
        check,
        demo,
        fields,
        package,
        setup_archive,
        setup_coordination,
        setup_stream,
        tail,
    )

    parser = argparse.ArgumentParser(
        prog="k8saudit-eks-py",
        description=f"Falco {PLUGIN_NAME} plugin (Python): EKS audit events from CloudWatch Logs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Not required=True: argparse would then report a missing COMMAND before an unknown option.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    check.add_parser(sub)
    tail.add_parser(sub)
    fields.add_parser(sub)
    p = sub.add_parser(
        "library-path",
        help="print the path of the installed plugin .so (for falco.yaml)",
        description="Prints the absolute path of the libk8saudit-eks-py.so installed with this package, "
        "for library_path in falco.yaml: library_path: $(k8saudit-eks-py library-path).",
    )
    p.set_defaults(func=_library_path)
    package.add_parser(sub)
    setup_coordination.add_parser(sub)
    setup_stream.add_parser(sub)
    setup_archive.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("a COMMAND is required: " + ", ".join(sub_names(parser)))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
