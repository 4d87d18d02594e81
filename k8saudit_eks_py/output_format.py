"""Falco-style output formats (`user=%ka.user.name uri=%ka.uri.param[watch]`) rendered through a host."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from k8saudit_eks_py.host import Event, FieldInfo, HostError, State, Value

__all__ = ["DEFAULT_FORMAT", "JSON_OUTPUT", "NA", "FormatError", "Formatter", "event_line", "render_value"]

# The Dummy rule's output, which is also what `tail` and `demo` print by default.
DEFAULT_FORMAT = (
    "user=%ka.user.name verb=%ka.verb target=%ka.target.name "
    "target.namespace=%ka.target.namespace resource=%ka.target.resource"
)
NA = "<NA>"  # what Falco prints for a field without a value
JSON_OUTPUT = "json"  # the -o value that prints each event's audit JSON instead of a format

_TOKEN = re.compile(r"%([A-Za-z_][A-Za-z0-9_.]*)(\[([^\]]*)\])?")
# Host-side fields (libsinsp's evt.* for plugin events) the tail/demo formats may use.
_EVT_FIELDS = ("evt.time", "evt.datetime", "evt.num", "evt.source", "evt.plugininfo")


class FormatError(ValueError):
    """The format names a field the plugin does not export or misuses an argument."""


@dataclass(frozen=True, slots=True)
class _Ref:
    field: FieldInfo | None  # None for evt.* fields
    name: str
    arg: str | None


def render_value(value: Value) -> str:
    """Falco's text for one extracted value: lists as (a,b), bools true/false, no value as <NA>."""
    if value is None:
        return NA
    if isinstance(value, tuple):
        return "(" + ",".join(render_value(v) for v in value) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _evt_time(ts: int, full: bool) -> str:
    dt = datetime.fromtimestamp(ts // 1_000_000_000, tz=timezone.utc)
    ns = ts % 1_000_000_000
    return dt.strftime("%Y-%m-%dT%H:%M:%S" if full else "%H:%M:%S") + f".{ns:09d}" + ("Z" if full else "")


class Formatter:
    """Compiles a format once against the plugin's field table; render() extracts field by field."""

    def __init__(self, fmt: str, fields: dict[str, FieldInfo], source: str = "k8s_audit") -> None:
        self.format = fmt
        self.source = source
        self._fields = fields
        self.parts: list[str | _Ref] = []
        pos = 0
        for m in _TOKEN.finditer(fmt):
            name, arg = m.group(1), m.group(3)
            end = m.end()
            # Trailing dots belong to the text ("... by %ka.user.name."), as in Falco's parser.
            if arg is None:
                while name.endswith(".") and name not in fields:
                    name = name[:-1]
                end = m.start() + 1 + len(name)
            self.parts.append(fmt[pos : m.start()])
            self.parts.append(self._ref(name, arg))
            pos = end
        self.parts.append(fmt[pos:])
        self.refs = [p for p in self.parts if isinstance(p, _Ref)]

    @staticmethod
    def _check_arg(field: FieldInfo, arg: str | None) -> None:
        takes_arg = field.arg_index or field.arg_key
        if arg is None and field.arg_required:
            raise FormatError(f"field {field.name} requires an argument, e.g. %{field.name}[x]")
        if arg is not None and not takes_arg:
            raise FormatError(f"field {field.name} does not take an argument")
        if (
            arg is not None
            and field.arg_index
            and not field.arg_key
            and not re.fullmatch(r"0|[1-9][0-9]*", arg)
        ):
            raise FormatError(f"field {field.name} takes a numeric index, got [{arg}]")

    def _ref(self, name: str, arg: str | None) -> _Ref:
        if name in _EVT_FIELDS:
            if arg is not None:
                raise FormatError(f"field {name} does not take an argument")
            return _Ref(None, name, None)
        field = self._fields_lookup(name)
        self._check_arg(field, arg)
        return _Ref(field, name, arg)

    def _fields_lookup(self, name: str) -> FieldInfo:
        field = self._fields.get(name)
        if field is None:
            raise FormatError(f"unknown field %{name}: run `k8saudit-eks-py fields` for the list")
        return field

    def values(self, state: State, event: Event) -> dict[str, str]:
        """The rendered value of each field reference, keyed by its text (`ka.uri.param[watch]`)."""
        out: dict[str, str] = {}
        for ref in self.refs:
            key = ref.name if ref.arg is None else f"{ref.name}[{ref.arg}]"
            out[key] = self._one(state, event, ref)
        return out

    def _one(self, state: State, event: Event, ref: _Ref) -> str:
        if ref.field is not None:
            return render_value(state.extract(event, ref.field, ref.arg))
        if ref.name == "evt.time":
            return _evt_time(event.ts, full=False)
        if ref.name == "evt.datetime":
            return _evt_time(event.ts, full=True)
        if ref.name == "evt.num":
            return str(event.num)
        if ref.name == "evt.source":
            return self.source
        if ref.name == "evt.plugininfo":
            return state.event_to_string(event) or NA
        raise HostError(f"unhandled field {ref.name}")

    def render(self, state: State, event: Event) -> str:
        return "".join(p if isinstance(p, str) else self._one(state, event, p) for p in self.parts)


def event_line(formatter: Formatter | None, state: State, event: Event) -> str:
    """One output line: the event rendered in the format, or its audit JSON when formatter is None."""
    if formatter is None:
        return event.payload.decode("utf-8", "replace")
    return formatter.render(state, event)
