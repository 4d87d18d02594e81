/* Event batches handed to Falco: one arena per instance, valid until its next next_batch or close.
 * Falco writes into these events (plugin id, tid, ts), so the memory is ours and writable. */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

static int reserve(void **buf, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*buf, ncap * elem);
	if (!n)
		return -1;
	*buf = n;
	*cap = ncap;
	return 0;
}

/* GIL held. `events` is a list of (ts_ns: int, payload: bytes). */
ss_plugin_rc shim_buffers_fill_batch(shim_instance *inst, PyObject *events, uint32_t *nevts,
				     ss_plugin_event ***evts)
{
	if (!PyList_Check(events)) {
		shim_set_error(inst->owner, "next_batch: the source returned %s, not a list", Py_TYPE(events)->tp_name);
		return SS_PLUGIN_FAILURE;
	}
	Py_ssize_t n = PyList_GET_SIZE(events);
	size_t total = 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PyList_GET_ITEM(events, i); /* Borrowed reference */
		if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(item, 1))) {
			shim_set_error(inst->owner, "next_batch: event %zd is not a (ts, bytes) tuple", i);
			return SS_PLUGIN_FAILURE;
		}
		size_t len = (size_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 1));
		if (len > UINT32_MAX - PLUGIN_EVENT_PAYLOAD_OFFSET - 8) {
			shim_set_error(inst->owner, "next_batch: event %zd is too large (%zu bytes)", i, len);
			return SS_PLUGIN_FAILURE;
		}
		total += (PLUGIN_EVENT_PAYLOAD_OFFSET + len + 7) & ~(size_t)7; /* keep headers 8-aligned */
	}
	void *arena = inst->arena, *ptrs = inst->events;
	if (reserve(&arena, &inst->arena_cap, total ? total : 1, 1) != 0 ||
	    reserve(&ptrs, &inst->events_cap, (size_t)(n ? n : 1), sizeof(ss_plugin_event *)) != 0) {
		inst->arena = arena;
		inst->events = ptrs;
		shim_set_error(inst->owner, "next_batch: out of memory for %zu bytes", total);
		return SS_PLUGIN_FAILURE;
	}
	inst->arena = arena;
	inst->events = ptrs;

	uint8_t *at = inst->arena;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PyList_GET_ITEM(events, i); /* Borrowed reference */
		PyObject *payload = PyTuple_GET_ITEM(item, 1); /* Borrowed reference */
		uint64_t ts = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(item, 0));
		if (PyErr_Occurred()) {
			PyErr_Clear();
			ts = UINT64_MAX; /* Falco then stamps the current time */
		}
		uint32_t len = (uint32_t)PyBytes_GET_SIZE(payload);
		ss_plugin_event *e = (ss_plugin_event *)at;
		e->ts = ts;
		e->tid = UINT64_MAX;
		e->len = PLUGIN_EVENT_PAYLOAD_OFFSET + len;
		e->type = PLUGIN_EVENT_TYPE;
		e->nparams = PLUGIN_EVENT_NPARAMS;
		uint32_t lens[3] = {4, len, 0}; /* param lengths, then plugin id 0 (Falco fills ours) */
		memcpy(at + sizeof(ss_plugin_event), lens, sizeof lens);
		memcpy(at + PLUGIN_EVENT_PAYLOAD_OFFSET, PyBytes_AS_STRING(payload), len);
		inst->events[i] = e;
		at += (PLUGIN_EVENT_PAYLOAD_OFFSET + len + 7) & ~(size_t)7;
	}
	*nevts = (uint32_t)n;
	*evts = inst->events;
	return SS_PLUGIN_SUCCESS;
}

void shim_buffers_free_batch(shim_instance *inst)
{
	free(inst->arena);
	free(inst->events);
	inst->arena = NULL;
	inst->events = NULL;
	inst->arena_cap = inst->events_cap = 0;
}
