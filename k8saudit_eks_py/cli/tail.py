"""`tail`: run the real plugin library through the in-process host and print events in a Falco format."""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from typing import Any

import orjson

from k8saudit_eks_py.output_format import DEFAULT_FORMAT, FormatError, Formatter
from k8saudit_eks_py.event_loop import Progress, run, stop_on_signals
from k8saudit_eks_py.host import Event, HostError, Library

__all__ = ["add_parser", "build_config", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90' / '90s' / '15m' / '2h' / '1d' → whole seconds."""
    m = _DURATION.fullmatch(text.strip().lower())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: $AWS_REGION, then the profile's)")
    parser.add_argument("--profile", help="AWS shared-config profile (default: $AWS_PROFILE)")
    parser.add_argument("--role-arn", help="IAM role to assume for reading the logs")
    parser.add_argument(
        "--endpoint-url", help="CloudWatch Logs endpoint override (VPC endpoint, local server)"
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tail",
        help="print the events Falco would receive, through the real plugin library",
        description="Loads libk8saudit-eks-py.so like Falco (init, open, next_batch, extract_fields) and "
        "prints one line per event. TARGET is an EKS cluster name (or several, comma-separated) or "
        "file:///path/to/audit.jsonl.",
    )
    p.add_argument("target", metavar="CLUSTER|file://PATH")
    p.add_argument(
        "-o",
        "--output",
        default=DEFAULT_FORMAT,
        metavar="FORMAT",
        help="Falco output format with %%field and %%field[arg] (also evt.time, evt.datetime, evt.num, "
        "evt.plugininfo); 'json' prints each event's audit JSON. Default: %(default)s",
    )
    p.add_argument(
        "--since", type=parse_duration, help="look back this far on start (sets init_config shift)"
    )
    p.add_argument("--config", default="{}", metavar="JSON", help="extra init_config as a JSON object")
    p.add_argument("--count", type=int, metavar="N", help="stop after N events")
    p.add_argument("--duration", type=parse_duration, metavar="TIME", help="stop after this long")
    p.add_argument(
        "--progress-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="status line (events, rate, lag) on stderr every SECONDS; 0 turns it off (default %(default)s)",
    )
    p.add_argument("--library", metavar="PATH", help="plugin .so to load (default: the installed one)")
    add_aws_options(p)
    p.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """init_config from --config plus the explicit options (which win)."""
    try:
        config = orjson.loads(args.config)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError('--config must be a JSON object, e.g. \'{"region": "eu-west-1"}\'')
    for key in ("region", "profile", "role_arn", "endpoint_url"):
        value = getattr(args, key, None)
        if value:
            config[key] = value
    if getattr(args, "since", None) is not None:
        config["shift"] = args.since
    return config


def _writer() -> Any:
    out = sys.stdout
    interactive = out.isatty()

    def write(line: str) -> None:
        out.write(line + "\n")
        if interactive:
            out.flush()

    return write


def main(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        library = Library(args.library)
    except (OSError, HostError) as exc:
        print(f"error: cannot load the plugin library: {exc}", file=sys.stderr)
        return 1
    formatter = None
    if args.output != "json":
        try:
            formatter = Formatter(args.output, library.fields_by_name, library.event_source)
        except FormatError as exc:
            print(f"error: -o: {exc}", file=sys.stderr)
            return 2
    write = _writer()
    try:
        state = library.init(orjson.dumps(config).decode())
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    try:
        instance = state.open(args.target)
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        state.destroy()
        return 1

    def on_event(event: Event) -> None:
        if formatter is None:
            write(event.payload.decode("utf-8", "replace"))
        else:
            write(formatter.render(state, event))

    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        with stop_on_signals(stop):
            run(
                state,
                instance,
                on_event,
                count=args.count,
                deadline=deadline,
                stop=stop,
                progress=Progress(args.progress_interval),
            )
        sys.stdout.flush()
        return 0
    except BrokenPipeError:  # `tail ... | head`: the reader is gone, which is not an error
        return 0
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        instance.close()
        state.destroy()
