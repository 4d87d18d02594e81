"""An in-process Falco-like host: loads the plugin .so with cffi and drives it through the plugin ABI.

It makes the calls Falco makes, in Falco's order, with Falco's structs (3.0 layouts, LP64):
required-API-version check, get_name/id/source/fields, init(config), open(params), a next_batch loop
(TIMEOUT → call again, EOF → end), one extract_fields call per field with num_fields = 1 on the event
pointer next_batch returned (while its batch is current), get_metrics, close, destroy.
cffi ABI-mode calls release the GIL, so the .so (which embeds CPython and reuses this interpreter) can
take it. Nothing here imports the plugin's Python code.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cffi
import orjson

from k8saudit_eks_py import REQUIRED_API_VERSION, library_path

__all__ = [
    "EVENT_HEADER_SIZE",
    "PLUGIN_EVENT_TYPE",
    "Event",
    "FieldInfo",
    "HostError",
    "Instance",
    "Library",
    "State",
    "Value",
]

_CDEF = """
typedef struct ss_plugin_event ss_plugin_event;

typedef struct {
    const char* config;
    void* owner;
    const char* (*get_owner_last_error)(void*);
    void* tables;
} ss_plugin_init_input;

typedef struct {
    const ss_plugin_event* evt;
    uint64_t evtnum;
    const char* evtsrc;
} ss_plugin_event_input;

typedef struct {
    uint32_t len;
    const void* ptr;
} ss_plugin_byte_buffer;

typedef struct {
    void* res;
    uint64_t res_len;
    uint32_t field_id;
    const char* field;
    const char* arg_key;
    uint64_t arg_index;
    uint32_t arg_present;
    uint32_t ftype;
    uint32_t flist;
} ss_plugin_extract_field;

typedef struct {
    void* owner;
    const char* (*get_owner_last_error)(void*);
    uint32_t num_fields;
    ss_plugin_extract_field* fields;
    void* table_reader[4];
} ss_plugin_field_extract_input;

typedef union {
    uint32_t u32; int32_t s32; uint64_t u64; int64_t s64; double d; float f; int i;
} ss_plugin_metric_value;

typedef struct {
    const char* name;
    int type;
    ss_plugin_metric_value value;
    int value_type;
} ss_plugin_metric;

const char* plugin_get_required_api_version(void);
const char* plugin_get_version(void);
const char* plugin_get_name(void);
const char* plugin_get_description(void);
const char* plugin_get_contact(void);
uint32_t plugin_get_id(void);
const char* plugin_get_event_source(void);
const char* plugin_get_fields(void);
const char* plugin_get_init_schema(int* schema_type);
void* plugin_init(const ss_plugin_init_input* in, int* rc);
void plugin_destroy(void* s);
const char* plugin_get_last_error(void* s);
const char* plugin_list_open_params(void* s, int* rc);
void* plugin_open(void* s, const char* params, int* rc);
void plugin_close(void* s, void* h);
int plugin_next_batch(void* s, void* h, uint32_t* nevts, ss_plugin_event*** evts);
const char* plugin_get_progress(void* s, void* h, uint32_t* progress_pct);
const char* plugin_event_to_string(void* s, const ss_plugin_event_input* evt);
int plugin_extract_fields(void* s, const ss_plugin_event_input* evt, const ss_plugin_field_extract_input* in);
ss_plugin_metric* plugin_get_metrics(void* s, uint32_t* num_metrics);
"""

_ffi = cffi.FFI()
_ffi.cdef(_CDEF)

SUCCESS, FAILURE, TIMEOUT, EOF, NOT_SUPPORTED = 0, 1, -1, 2, 3
PLUGIN_EVENT_TYPE = 322
EVENT_HEADER_SIZE = 26
_PAYLOAD_OFFSET = 38
_HEADER = struct.Struct("<QQIHI")  # ts, tid, len, type, nparams (packed, 26 bytes)
_PARAMS = struct.Struct("<III")  # len(plugin_id) = 4, len(payload), plugin_id

# ss_plugin_field_type codes by get_fields "type" name.
FIELD_TYPES = {"uint64": 8, "string": 9, "reltime": 20, "abstime": 21, "bool": 25, "ipaddr": 40, "ipnet": 41}
_METRIC_VALUE_TYPES = {0: "u32", 1: "s32", 2: "u64", 3: "s64", 4: "d", 5: "f", 6: "i"}

# One extracted value: None = no value; otherwise str / int / bool / tuple of those (list fields).
Scalar = str | int | bool
Value = None | Scalar | tuple[Scalar, ...]


class HostError(Exception):
    """A plugin call failed; the text carries the plugin's get_last_error."""


@dataclass(frozen=True, slots=True)
class FieldInfo:
    id: int
    name: str
    type: str
    is_list: bool
    arg_required: bool
    arg_index: bool
    arg_key: bool
    desc: str

    @property
    def ftype(self) -> int:
        return FIELD_TYPES[self.type]


@dataclass(slots=True)
class Event:
    """One event from next_batch; `ptr` is valid only while its batch is current (until the next read)."""

    num: int
    ts: int
    payload: bytes
    ptr: Any


def _str(ptr: Any) -> str:
    return "" if ptr == _ffi.NULL else _ffi.string(ptr).decode("utf-8", "replace")


def _parse_fields(text: str) -> list[FieldInfo]:
    out = []
    for i, f in enumerate(orjson.loads(text)):
        arg = f.get("arg") or {}
        out.append(
            FieldInfo(
                id=i,
                name=f["name"],
                type=f["type"],
                is_list=bool(f.get("isList", False)),
                arg_required=bool(arg.get("isRequired", False)),
                arg_index=bool(arg.get("isIndex", False)),
                arg_key=bool(arg.get("isKey", False)),
                desc=f.get("desc", ""),
            )
        )
    return out


class Library:
    """The loaded .so (dlopen RTLD_LOCAL | RTLD_NOW, like Falco) and its static information."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else library_path()
        self.lib: Any = _ffi.dlopen(str(self.path), _ffi.RTLD_LOCAL | _ffi.RTLD_NOW)
        self.required_api_version = _str(self.lib.plugin_get_required_api_version())
        if not _api_compatible(self.required_api_version, REQUIRED_API_VERSION):
            raise HostError(
                f"{self.path} requires plugin API {self.required_api_version!r}; this host implements "
                f"{REQUIRED_API_VERSION} (Falco 0.35+)"
            )
        self.name = _str(self.lib.plugin_get_name())
        self.version = _str(self.lib.plugin_get_version())
        self.description = _str(self.lib.plugin_get_description())
        self.contact = _str(self.lib.plugin_get_contact())
        self.id = int(self.lib.plugin_get_id())
        self.event_source = _str(self.lib.plugin_get_event_source())
        self.fields = _parse_fields(_str(self.lib.plugin_get_fields()) or "[]")
        if not self.fields:  # Falco >= 0.42 refuses such a plugin too
            raise HostError(
                f"{self.path} exports no fields: the plugin's Python side did not load "
                "(see the [k8saudit-eks] lines above)"
            )
        self.fields_by_name = {f.name: f for f in self.fields}

    def init_schema(self) -> str:
        kind = _ffi.new("int*")
        return _str(self.lib.plugin_get_init_schema(kind))

    def init(self, config: str = "") -> State:
        return State(self, config)


def _api_compatible(required: str, framework: str) -> bool:
    """Falco's rule: same major; plugin minor <= framework minor; equal minors → plugin patch <= ours."""
    try:
        r = [int(x) for x in required.split(".")]
        f = [int(x) for x in framework.split(".")]
    except ValueError:
        return False
    if len(r) != 3:
        return False
    if r[0] != f[0] or r[1] > f[1]:
        return False
    return not (r[1] == f[1] and r[2] > f[2])


class State:
    """One plugin_init'ed state (ss_plugin_t*)."""

    def __init__(self, library: Library, config: str) -> None:
        self.library = library
        self._lib = library.lib
        self._config = _ffi.new("char[]", config.encode())
        self._init_input = _ffi.new("ss_plugin_init_input*", {"config": self._config})
        rc = _ffi.new("int*", FAILURE)
        handle = self._lib.plugin_init(self._init_input, rc)
        if rc[0] != SUCCESS:
            message = _str(self._lib.plugin_get_last_error(handle)) if handle != _ffi.NULL else ""
            if handle != _ffi.NULL:
                self._lib.plugin_destroy(handle)
            raise HostError(f"plugin init failed: {message or 'no error text'}")
        self.handle: Any = handle
        self._evtsrc = _ffi.new("char[]", library.event_source.encode())
        # Reused per call, like a framework's filtercheck: one field, num_fields = 1.
        self._field = _ffi.new("ss_plugin_extract_field*")
        self._extract_input = _ffi.new(
            "ss_plugin_field_extract_input*", {"num_fields": 1, "fields": self._field}
        )
        self._event_input = _ffi.new("ss_plugin_event_input*", {"evtsrc": self._evtsrc})
        self._names: dict[str, Any] = {}  # keeps field-name and argument strings alive

    def last_error(self) -> str:
        return _str(self._lib.plugin_get_last_error(self.handle))

    def open(self, params: str) -> Instance:
        return Instance(self, params)

    def list_open_params(self) -> str:
        rc = _ffi.new("int*", FAILURE)
        text = _str(self._lib.plugin_list_open_params(self.handle, rc))
        if rc[0] != SUCCESS:
            raise HostError(f"list_open_params failed: {self.last_error()}")
        return text

    def _cstr(self, text: str) -> Any:
        ptr = self._names.get(text)
        if ptr is None:
            ptr = self._names[text] = _ffi.new("char[]", text.encode())
        return ptr

    def extract(self, event: Event, field: FieldInfo, arg: str | None = None) -> Value:
        """One extract_fields call for one field of one event, as libsinsp makes it."""
        f = self._field
        f.res = _ffi.NULL
        f.res_len = 0
        f.field_id = field.id
        f.field = self._cstr(field.name)
        f.arg_present = 1 if arg is not None else 0
        f.arg_key = self._cstr(arg) if arg is not None and field.arg_key else _ffi.NULL
        # Falco >= 0.43 passes UINT64_MAX for "no index"; the plugin must only trust arg_present.
        f.arg_index = int(arg) if arg is not None and field.arg_index and arg.isdigit() else 2**64 - 1
        f.ftype = field.ftype
        f.flist = 1 if field.is_list else 0
        self._event_input.evt = event.ptr
        self._event_input.evtnum = event.num
        rc = self._lib.plugin_extract_fields(self.handle, self._event_input, self._extract_input)
        if rc != SUCCESS:
            raise HostError(f"extract_fields({field.name}) failed (rc {rc}): {self.last_error()}")
        count = int(f.res_len)
        if count == 0:
            return None
        if not field.is_list and count != 1:
            raise HostError(f"extract_fields({field.name}) returned {count} values for a non-list field")
        values = tuple(_read_value(f.res, field.type, i) for i in range(count))
        return values if field.is_list else values[0]

    def event_to_string(self, event: Event) -> str:
        self._event_input.evt = event.ptr
        self._event_input.evtnum = event.num
        return _str(self._lib.plugin_event_to_string(self.handle, self._event_input))

    def metrics(self) -> list[tuple[str, int, int | float]]:
        """(name, 0 monotonic | 1 non-monotonic, value) as plugin_get_metrics returns them."""
        count = _ffi.new("uint32_t*", 0)
        array = self._lib.plugin_get_metrics(self.handle, count)
        rows: list[tuple[str, int, int | float]] = []
        for i in range(count[0]):
            m = array[i]
            member = _METRIC_VALUE_TYPES.get(int(m.value_type))
            if member is None:
                raise HostError(f"metric {_str(m.name)} has unknown value_type {m.value_type}")
            rows.append((_str(m.name), int(m.type), getattr(m.value, member)))
        return rows

    def destroy(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            self._lib.plugin_destroy(handle)


def _read_value(res: Any, type_name: str, i: int) -> Scalar:
    if type_name == "string":
        return _str(_ffi.cast("const char**", res)[i])
    if type_name in ("uint64", "reltime", "abstime"):
        return int(_ffi.cast("uint64_t*", res)[i])
    if type_name == "bool":
        return bool(_ffi.cast("uint32_t*", res)[i])
    if type_name in ("ipaddr", "ipnet"):
        buf = _ffi.cast("ss_plugin_byte_buffer*", res)[i]
        raw = bytes(_ffi.buffer(buf.ptr, buf.len))
        return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else raw.hex()
    raise HostError(f"unknown field type {type_name}")


class Instance:
    """One opened stream (ss_instance_t*)."""

    def __init__(self, state: State, params: str) -> None:
        self.state = state
        self._lib = state._lib
        rc = _ffi.new("int*", FAILURE)
        handle = self._lib.plugin_open(state.handle, params.encode(), rc)
        if rc[0] != SUCCESS:
            message = state.last_error()
            if handle != _ffi.NULL:
                self._lib.plugin_close(state.handle, handle)
            raise HostError(f"plugin open failed: {message or 'no error text'}")
        self.handle: Any = handle
        self._nevts = _ffi.new("uint32_t*")
        self._evts = _ffi.new("ss_plugin_event***")
        self._evtnum = 0
        self.plugin_id = state.library.id

    def next_batch(self) -> tuple[int, list[Event]]:
        """(rc, events); the events' pointers stay valid until the next call or close."""
        self._nevts[0] = 0
        rc = int(self._lib.plugin_next_batch(self.state.handle, self.handle, self._nevts, self._evts))
        if rc == FAILURE:
            raise HostError(f"next_batch failed: {self.state.last_error()}")
        n = int(self._nevts[0])
        if rc == SUCCESS and n == 0:
            raise HostError("unexpected 0 size event returned by plugin")  # Falco's own error text
        events = []
        for i in range(n):
            ptr = self._evts[0][i]
            events.append(self._check_event(ptr))
        return rc, events

    def _check_event(self, ptr: Any) -> Event:
        header = bytes(_ffi.buffer(_ffi.cast("char*", ptr), _PAYLOAD_OFFSET))
        ts, _tid, length, etype, nparams = _HEADER.unpack_from(header)
        len_id, len_payload, plugin_id = _PARAMS.unpack_from(header, EVENT_HEADER_SIZE)
        if etype != PLUGIN_EVENT_TYPE or nparams != 2:
            raise HostError(f"malformed plugin event: type {etype}, nparams {nparams}")
        if len_id != 4 or length != _PAYLOAD_OFFSET + len_payload:
            raise HostError(f"malformed plugin event: len {length}, param lengths {len_id}/{len_payload}")
        if plugin_id not in (0, self.plugin_id):
            raise HostError(f"unexpected plugin ID {plugin_id}")
        raw = _ffi.cast("uint8_t*", ptr)
        # Like libscap: write the plugin ID, tid = -1, and "now" for ts = UINT64_MAX into plugin memory.
        struct.pack_into("<I", _ffi.buffer(raw + 34, 4), 0, self.plugin_id)
        struct.pack_into("<Q", _ffi.buffer(raw + 8, 8), 0, 2**64 - 1)
        self._evtnum += 1
        payload = bytes(_ffi.buffer(raw + _PAYLOAD_OFFSET, len_payload))
        return Event(num=self._evtnum, ts=ts, payload=payload, ptr=_ffi.cast("ss_plugin_event*", ptr))

    def events(self) -> Iterator[Event]:
        """Every event until EOF; the caller uses each event before asking for the next one.

        A TIMEOUT is retried at once (as Falco does), so this never ends on an idle live source:
        callers that must stop on a signal or a deadline use next_batch() (see event_loop.run).
        """
        while True:
            rc, batch = self.next_batch()
            yield from batch
            if rc == EOF:
                return

    def progress(self) -> tuple[int, str]:
        pct = _ffi.new("uint32_t*", 0)
        text = _str(self._lib.plugin_get_progress(self.state.handle, self.handle, pct))
        return int(pct[0]), text

    def close(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            self._lib.plugin_close(self.state.handle, handle)
