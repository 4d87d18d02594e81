"""`k8saudit-eks-py demo`: a local CloudWatch seeded with an EKS cluster's audit log, read by the real plugin.

Starts moto on 127.0.0.1, seeds /aws/eks/<cluster>/cluster with normal traffic and four attack-like
requests, loads the plugin .so through the in-process host exactly as Falco would (init_config with the
local endpoint, open_params = the cluster name) and prints what Falco receives, one line per event in the
default tail format, marking the events a stock k8s_audit rule would alert on.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from k8saudit_eks_py.demo import events as demo_events
from k8saudit_eks_py.demo.local import REGION, DemoUnavailable, dummy_credentials, local_cloudwatch, seed
from k8saudit_eks_py.demo.rules import RULES, matches
from k8saudit_eks_py.event_loop import run, stop_on_signals
from k8saudit_eks_py.host import Event, Instance, Library, State, Value
from k8saudit_eks_py.output_format import DEFAULT_FORMAT, JSON_OUTPUT, Formatter, event_line

__all__ = ["DemoResult", "DemoUnavailable", "run_demo"]

Say = Callable[[str], None]


@dataclass
class DemoResult:
    seeded: int = 0
    delivered: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    expected_alerts: Counter[str] = field(default_factory=Counter)
    metrics: dict[str, int | float] = field(default_factory=dict)
    timed_out: float | None = None  # the --timeout that ran out, if it did

    @property
    def ok(self) -> bool:
        return (
            self.timed_out is None and self.delivered == self.seeded and self.alerts == self.expected_alerts
        )


def run_demo(
    cluster: str = "demo",
    out: TextIO | None = None,
    library: str | Path | None = None,
    timeout: float = 60.0,
    fmt: str = DEFAULT_FORMAT,
) -> DemoResult:
    out = out or sys.stdout
    result = DemoResult()

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    lib = Library(library)  # fail early (no .so / wrong API) before starting anything
    formatter = None if fmt == JSON_OUTPUT else Formatter(fmt, lib.fields_by_name, lib.event_source)
    seeded = demo_events.build(time.time_ns())
    result.seeded = len(seeded)
    result.expected_alerts = Counter(d.attack for d in seeded if d.attack)
    with dummy_credentials(), local_cloudwatch() as endpoint:
        info = seed(endpoint, cluster, [d.event for d in seeded])
        say(f"# local CloudWatch Logs at {endpoint} (moto), region {REGION}, dummy credentials")
        say(
            f"# seeded {info.audit_events} audit events into {info.log_group} "
            f"({', '.join(info.audit_streams)}) and {info.other_events} non-audit line(s)"
        )
        config = {
            "endpoint_url": endpoint,
            "region": REGION,
            "shift": 600,  # the seeded events are from the last two minutes
            "polling_interval": 1,
        }
        say(f"# {lib.path.name}: {lib.name} {lib.version} (id {lib.id}, source {lib.event_source})")
        say(f"# init_config {orjson.dumps(config).decode()}")
        say(f"# open_params {cluster!r}; one line per event Falco receives, '!' = a stock rule would alert")
        state = lib.init(orjson.dumps(config).decode())
        try:
            instance = state.open(cluster)
            try:
                _read(state, instance, formatter, result, say, timeout)
                result.metrics = {name: value for name, _, value in state.metrics()}
            finally:
                instance.close()
        finally:
            state.destroy()
    _summary(result, say)
    return result


def _read(
    state: State,
    instance: Instance,
    formatter: Formatter | None,
    result: DemoResult,
    say: Say,
    timeout: float,
) -> None:
    by_name = state.library.fields_by_name

    def on_event(event: Event) -> None:
        cache: dict[str, Value] = {}

        def get(name: str) -> Value:
            if name not in cache:
                cache[name] = state.extract(event, by_name[name])
            return cache[name]

        hits = matches(get)
        line = event_line(formatter, state, event)
        result.delivered += 1
        result.alerts.update(hits)
        say(f"! {line}    <- {', '.join(hits)}" if hits else f"  {line}")

    stop = threading.Event()
    with stop_on_signals(stop):
        outcome = run(
            state,
            instance,
            on_event,
            count=result.seeded,
            deadline=time.monotonic() + timeout,
            stop=stop,
        )
    if outcome.timed_out:
        result.timed_out = timeout


def _summary(result: DemoResult, say: Say) -> None:
    m = result.metrics
    say(
        f"# {result.delivered}/{result.seeded} events delivered; plugin metrics: "
        + ", ".join(f"{k.rsplit('.', 1)[-1]}={v:g}" for k, v in m.items() if v)
    )
    for rule in RULES:
        n = result.alerts.get(rule.name, 0)
        say(f"# {n} x {rule.name}: {rule.condition}")
    if result.timed_out is not None:
        say(
            f"# TIMEOUT: --timeout {result.timed_out:g}s ran out after {result.delivered}/{result.seeded} "
            "events; run again with a larger --timeout (the first poll can take a few seconds)"
        )
    elif result.ok:
        say("# every seeded event arrived once and each attack raised its alert: the plugin works end to end")
    else:
        say(
            "# MISMATCH: expected alerts "
            + str(dict(result.expected_alerts))
            + ", got "
            + str(dict(result.alerts))
        )
