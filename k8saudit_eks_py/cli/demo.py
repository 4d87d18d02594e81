"""`demo`: the README's first command: a seeded local CloudWatch read by the real plugin."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from k8saudit_eks_py import install_hint
from k8saudit_eks_py.cli.options import positive_float
from k8saudit_eks_py.output_format import DEFAULT_FORMAT, FormatError

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the plugin against a local CloudWatch seeded with a cluster's audit events (no AWS needed)",
        description="Starts a local CloudWatch Logs (moto, 127.0.0.1), seeds /aws/eks/demo/cluster with "
        "normal traffic and four attacks, runs libk8saudit-eks-py.so as Falco would and prints each event; "
        "'!' marks events a stock k8s_audit rule alerts on. Needs the demo extra: "
        + install_hint("demo")
        + ".",
    )
    p.add_argument("--cluster", default="demo", help="cluster name to simulate (default %(default)s)")
    p.add_argument(
        "-o",
        "--output",
        default=DEFAULT_FORMAT,
        metavar="FORMAT",
        help="Falco output format with %%field and %%field[arg], as in tail; 'json' prints each event's "
        "audit JSON. Default: %(default)s",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="give up after this many seconds (default %(default)s)",
    )
    p.add_argument("--library", metavar="PATH", help="plugin .so to load (default: the installed one)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from k8saudit_eks_py.demo import DemoUnavailable, run_demo
    from k8saudit_eks_py.host import HostError

    try:
        result = run_demo(args.cluster, library=args.library, timeout=args.timeout, fmt=args.output)
    except DemoUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FormatError as exc:
        print(f"error: -o: {exc}", file=sys.stderr)
        return 2
    except (OSError, HostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.timed_out is not None:
        print(f"error: --timeout {result.timed_out:g}s ran out before every event arrived", file=sys.stderr)
    return 0 if result.ok else 1
