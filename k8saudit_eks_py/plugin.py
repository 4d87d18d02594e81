"""Plugin and Instance: the only objects the C shim calls. This docstring is the whole C ↔ Python contract.

The shim imports this module once per process and calls, always holding the GIL:

  Module level (no plugin state; may run before any init, from any thread)
    fields_json() -> str            get_fields: the JSON array of the 100 ka.* fields
    init_schema_json() -> str       get_init_schema: JSON schema of init_config
    open_params_json() -> str       list_open_params: suggested open_params

  Plugin(config: str)               init; raises PluginError (text names the key) → init fails
    .open(params: str) -> Instance  open; raises PluginError (text says the fix) → open fails
    .extract(payload: bytes, requests: tuple[tuple[int, str | None], ...]) -> (event, list[Value])
        The one crossing per event: parse the payload once and return the values of every request
        (field_id, argument text or None) the shim has seen so far, in the same order. `event` is
        opaque to the shim, kept until the next event and passed back to:
    .extract_more(event, field_id: int, arg: str | None) -> Value
        A request not in the list yet (the shim adds it to the list for the following events).
    .event_to_string(payload: bytes) -> str
    .metrics() -> list[tuple[str, int, int | float]]   (name, 0 = counter | 1 = gauge, value);
        may run on another thread, concurrently with an instance's next_batch.
    .destroy()

  Instance
    .next_batch(max_events: int, timeout_s: float) -> (list[(ts_ns: int, payload: bytes)], eof: bool)
        Waits at most timeout_s with the GIL released; an empty list with eof False means "timeout".
    .progress() -> (int 0..10000, str)
    .close()

  Value = None (no value) | str | bytes (one value) | tuple of str/bytes (a list field's values).

Any exception is turned by the shim into SS_PLUGIN_FAILURE and its text into get_last_error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from k8saudit_eks_py import fields, log
from k8saudit_eks_py.config import PluginConfig, init_schema_json, parse_config
from k8saudit_eks_py.errors import OpenError
from k8saudit_eks_py.metrics import COUNTERS
from k8saudit_eks_py.sources import Event, Source, open_source

__all__ = ["Instance", "Plugin", "fields_json", "init_schema_json", "open_params_json"]

Value = None | str | bytes | tuple[str | bytes, ...]


def fields_json() -> str:
    return fields.FIELDS_JSON


def open_params_json() -> str:
    return orjson.dumps(
        [
            {"value": "my-cluster", "desc": "EKS cluster name: reads /aws/eks/<name>/cluster"},
            {"value": "cluster-a,cluster-b", "desc": "Several EKS clusters, comma-separated"},
            {
                "value": "arn:aws:eks:eu-west-1:111111111111:cluster/prod",
                "desc": "EKS cluster ARN: read in that account (role_arn / role_arns) and Region",
            },
            {
                "value": "kinesis://my-audit-stream",
                "desc": "Kinesis stream (name or ARN) fed by a CloudWatch Logs subscription (stream mode)",
            },
            {"value": "file:///path/to/audit.jsonl", "desc": "Replay audit events from a file"},
            {
                "value": "my-cluster?from=-7d&to=now",
                "desc": "Re-run the rules over a time range of CloudWatch Logs, then end the capture",
            },
            {
                "value": "s3://my-bucket/prefix",
                "desc": "Replay a CloudWatch export or a Firehose archive in S3 (optional ?from=&to=)",
            },
        ]
    ).decode()


class Instance:
    """One opened event stream (one plugin_open)."""

    def __init__(self, plugin: Plugin, source: Source) -> None:
        self._plugin = plugin
        self._source: Source | None = source

    @property
    def source(self) -> Source | None:
        return self._source

    def next_batch(self, max_events: int, timeout_s: float) -> tuple[list[Event], bool]:
        if self._source is None:
            return [], True
        return self._source.next_batch(max_events, timeout_s)

    def progress(self) -> tuple[int, str]:
        if self._source is None:
            return 10000, "closed"
        return self._source.progress()

    def metrics(self) -> dict[str, int | float]:
        return {} if self._source is None else self._source.metrics()

    def close(self) -> None:
        source, self._source = self._source, None
        final: dict[str, int | float] = {}
        if source is not None:
            source.close()
            final = source.metrics()  # after close: counts everything the source did
        self._plugin._forget(self, final)


class Plugin:
    """One plugin state (one plugin_init)."""

    def __init__(self, config: str) -> None:
        self.config: PluginConfig = parse_config(config)
        self._instances: list[Instance] = []
        self._closed_metrics: dict[str, int | float] = {}
        # ka.cluster.name for events without the EKS annotation: the opened cluster, or a lookup
        # by auditID when several clusters are read at once.
        self._default_cluster: str | None = None
        self._cluster_for: Callable[[str], str | None] | None = None

    def open(self, params: str) -> Instance:
        if not params.strip():
            raise OpenError(
                "open_params is empty: set it to your EKS cluster name (e.g. open_params: my-cluster), "
                "several names separated by commas, kinesis://STREAM (stream mode), "
                "file:///path/to/audit.jsonl, my-cluster?from=-7d (a time range) or s3://BUCKET/PREFIX (an "
                "archive)"
            )
        instance = Instance(self, open_source(params, self.config))
        self._instances.append(instance)
        self._refresh_cluster_hint()
        return instance

    def _refresh_cluster_hint(self) -> None:
        sources = [i.source for i in self._instances if i.source is not None]
        source = sources[0] if len(sources) == 1 else None
        self._default_cluster = getattr(source, "default_cluster", None)
        lookup = getattr(source, "cluster_for", None)
        self._cluster_for = lookup if self._default_cluster is None and callable(lookup) else None

    def _forget(self, instance: Instance, final_metrics: dict[str, int | float]) -> None:
        # Counters stay monotonic across close/open (Falco hot reload keeps the same state);
        # snapshot() only sums the counters of closed instances, never their gauges.
        for name, value in final_metrics.items():
            if name in COUNTERS:
                self._closed_metrics[name] = self._closed_metrics.get(name, 0) + value
        if instance in self._instances:
            self._instances.remove(instance)
        self._refresh_cluster_hint()

    def extract(
        self, payload: bytes, requests: Sequence[tuple[int, str | None]]
    ) -> tuple[fields.AuditEvent, list[Value]]:
        event = fields.parse_event(payload, default_cluster=self._default_cluster)
        if self._cluster_for is not None and isinstance(event.root, dict):
            audit_id = event.root.get("auditID")
            if isinstance(audit_id, str):
                event.default_cluster = self._cluster_for(audit_id)
        return event, fields.extract_values(event, requests)

    def extract_more(self, event: fields.AuditEvent, field_id: int, arg: str | None) -> Value:
        return fields.extract_value(event, field_id, arg)

    def event_to_string(self, payload: bytes) -> str:
        return fields.event_to_string(payload)

    def metrics(self) -> list[tuple[str, int, int | float]]:
        from k8saudit_eks_py.metrics import snapshot

        return snapshot(self._closed_metrics, [i.metrics() for i in list(self._instances)])

    def destroy(self) -> None:
        for instance in list(self._instances):
            try:
                instance.close()
            except Exception as exc:  # destroy must finish; report and go on
                log.error(f"error while closing on destroy: {exc}")
