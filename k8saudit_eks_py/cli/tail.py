"""`tail`: run the real plugin library through the in-process host and print events in a Falco format."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

import orjson

from k8saudit_eks_py import metrics
from k8saudit_eks_py.cli.options import (
    DURATION_FORMAT,
    add_aws_options,
    non_negative_float,
    parse_duration,
    positive_duration,
    positive_int,
)
from k8saudit_eks_py.event_loop import Progress, RunResult, run, stop_on_signals
from k8saudit_eks_py.host import Event, HostError, Library
from k8saudit_eks_py.output_format import DEFAULT_FORMAT, JSON_OUTPUT, FormatError, Formatter, event_line

__all__ = ["add_parser", "bare_path_hint", "build_config", "parse_duration"]

# The shim prints a failed call's error on stderr for Falco's log; tail prints it itself, once.
QUIET_ERRORS_ENV = "K8SAUDIT_EKS_PY_QUIET_ERRORS"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tail",
        help="print the events Falco would receive, through the real plugin library",
        description="Loads libk8saudit-eks-py.so like Falco (init, open, next_batch, extract_fields) and "
        "prints one line per event. CLUSTER is an EKS cluster name (or several, comma-separated); "
        "kinesis://STREAM reads stream mode; file://PATH replays audit events from a file (JSON lines, "
        "an EventList or `aws logs filter-log-events` output, plain or .gz); s3://BUCKET/PREFIX replays "
        "a CloudWatch export or a Firehose archive. --from/--to read a time range of the past (of "
        "CLUSTER or of s3://) and stop at its end. Exit status 1 when a replay delivers no event.",
    )
    p.add_argument(
        "target",
        metavar="CLUSTER|kinesis://STREAM|file://PATH|s3://BUCKET/PREFIX",
        help="cluster name(s), comma-separated, kinesis://STREAM, file:///path/to/audit.jsonl[.gz], or "
        "s3://BUCKET/PREFIX (an archive)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=DEFAULT_FORMAT,
        metavar="FORMAT",
        help="Falco output format with %%field and %%field[arg] (also evt.time, evt.datetime, evt.num, "
        "evt.plugininfo); 'json' prints each event's audit JSON. Default: %(default)s",
    )
    p.add_argument(
        "--since",
        type=parse_duration,
        metavar="TIME",
        help=f"look back this far on start (sets init_config shift); TIME like {DURATION_FORMAT}",
    )
    p.add_argument(
        "--from",
        dest="range_from",
        metavar="TIME",
        help="read the past from TIME and stop at --to (default now): an ISO-8601 time "
        "(2026-11-01T00:00:00Z, 2026-11-01) or a time ago (7d, 12h, 30m; or --from=-7d)",
    )
    p.add_argument("--to", dest="range_to", metavar="TIME", help="end of the --from range (excluded)")
    p.add_argument("--config", default="{}", metavar="JSON", help="extra init_config as a JSON object")
    p.add_argument("--count", type=positive_int, metavar="N", help="stop after N events (N ≥ 1)")
    p.add_argument(
        "--duration",
        type=positive_duration,
        metavar="TIME",
        help=f"stop after this long; TIME like {DURATION_FORMAT}",
    )
    p.add_argument(
        "--progress-interval",
        type=non_negative_float,
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
    target = str(getattr(args, "target", ""))
    if target.startswith("kinesis://") and config.get("endpoint_url"):
        config.setdefault("kinesis_endpoint_url", config["endpoint_url"])  # --endpoint-url names the stream's
    if target.startswith("s3://") and config.get("endpoint_url"):
        config.setdefault("s3_endpoint_url", config["endpoint_url"])  # and the bucket's
    return config


def range_target(args: argparse.Namespace) -> str:
    """The open_params: the target with --from/--to as its query; ValueError (one line) when they do not
    apply to it."""
    target = str(args.target)
    start, end = getattr(args, "range_from", None), getattr(args, "range_to", None)
    if start is None and end is None:
        return target
    if target.startswith(("kinesis://", "file://")):
        raise ValueError("--from/--to read the past of a cluster or of an s3:// archive, not of " + target)
    if start is None and not target.startswith("s3://"):
        raise ValueError("--to needs --from (e.g. --from -7d --to -1d)")
    if getattr(args, "since", None) is not None:
        raise ValueError("--since follows new events; use --from for a range of the past, not both")
    query = "&".join(f"{k}={v}" for k, v in (("from", start), ("to", end)) if v is not None)
    return f"{target}{'&' if '?' in target else '?'}{query}"


def bare_path_hint(target: str) -> str | None:
    """The fix for a file path given without file:// (it would be taken for a cluster name)."""
    if "://" in target or "arn:" in target or not ("/" in target or os.path.exists(target)):
        return None  # (an EKS cluster ARN holds a "/" too)
    return f"{target!r} is not a cluster name; to replay a file write file://{os.path.abspath(target)}"


def _writer() -> Any:
    out = sys.stdout
    interactive = out.isatty()

    def write(line: str) -> None:
        out.write(line + "\n")
        if interactive:
            out.flush()

    return write


def _nothing_usable(target: str, result: RunResult, state: Any) -> str | None:
    """Why a replay that ended without delivering anything is a failure (None when it is not one)."""
    if not target.startswith("file://") or not result.eof or result.events:
        return None
    values = {name.rsplit(".", 1)[-1]: value for name, _, value in state.metrics()}
    skipped = int(values.get(metrics.MALFORMED, 0))
    path = target[len("file://") :]
    if skipped:
        return f"{path}: no audit event delivered, {skipped} line(s) skipped (see the warnings above)"
    return f"{path}: no audit event delivered: the file holds none (empty?)"


def main(args: argparse.Namespace) -> int:
    previous = os.environ.get(QUIET_ERRORS_ENV)
    os.environ[QUIET_ERRORS_ENV] = "1"  # our error lines carry the plugin's message
    try:
        return _tail(args)
    finally:
        if previous is None:
            os.environ.pop(QUIET_ERRORS_ENV, None)
        else:
            os.environ[QUIET_ERRORS_ENV] = previous


def _tail(args: argparse.Namespace) -> int:
    hint = bare_path_hint(args.target)
    if hint:
        print(f"error: {hint}", file=sys.stderr)
        return 2
    try:
        config = build_config(args)
        target = range_target(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        library = Library(args.library)
    except (OSError, HostError) as exc:
        print(f"error: cannot load the plugin library: {exc}", file=sys.stderr)
        return 1
    formatter = None
    if args.output != JSON_OUTPUT:
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
        instance = state.open(target)
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        state.destroy()
        return 1

    def on_event(event: Event) -> None:
        write(event_line(formatter, state, event))

    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        with stop_on_signals(stop):
            result = run(
                state,
                instance,
                on_event,
                count=args.count,
                deadline=deadline,
                stop=stop,
                progress=Progress(args.progress_interval),
                # A pipe (`tail ... | grep`) is block-buffered: show each batch before waiting for more.
                after_batch=sys.stdout.flush,
            )
        sys.stdout.flush()
        failure = _nothing_usable(args.target, result, state)
        if failure:
            print(f"error: {failure}", file=sys.stderr)
            return 1
        return 0
    except BrokenPipeError:  # `tail ... | head`: the reader is gone, which is not an error
        return 0
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        instance.close()
        state.destroy()
