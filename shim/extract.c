/* Field extraction with one Python crossing per event: Plugin.extract computes every request seen so
 * far; later requests of the same event are answered from C. Outputs stay valid until the next call. */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same_event(const shim_extract_cache *c, const ss_plugin_event_input *in)
{
	return c->have_event && c->evtnum == in->evtnum && c->evt == (const void *)in->evt &&
	       c->ts == in->evt->ts && c->len == in->evt->len;
}

static void drop_event(shim_extract_cache *c)
{
	Py_CLEAR(c->event);
	Py_CLEAR(c->values);
	c->have_event = 0;
}

/* The hot lookup: requests without an argument are indexed by field id; the few with an argument
 * are scanned. */
static long find_request(const shim_extract_cache *c, uint32_t fid, const char *arg)
{
	if (!arg)
		return fid < c->argless_cap ? c->argless[fid] : -1;
	for (size_t i = 0; i < c->nreqs; i++) {
		const shim_request *r = &c->reqs[i];
		if (r->field_id == fid && r->arg && strcmp(arg, r->arg) == 0)
			return (long)i;
	}
	return -1;
}

static int index_argless(shim_extract_cache *c, uint32_t fid, long index)
{
	if (fid >= c->argless_cap) {
		size_t ncap = c->argless_cap ? c->argless_cap : 128;
		while (ncap <= fid)
			ncap *= 2;
		int32_t *n = realloc(c->argless, ncap * sizeof *n);
		if (!n)
			return -1;
		for (size_t i = c->argless_cap; i < ncap; i++)
			n[i] = -1;
		c->argless = n;
		c->argless_cap = ncap;
	}
	c->argless[fid] = (int32_t)index;
	return 0;
}

/* GIL held. Appends (fid, arg) to the request list and rebuilds the requests tuple. */
static long add_request(shim_extract_cache *c, uint32_t fid, const char *arg)
{
	if (c->nreqs == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		shim_request *n = realloc(c->reqs, ncap * sizeof *n);
		if (!n)
			return -1;
		c->reqs = n;
		c->cap = ncap;
	}
	if (!arg && index_argless(c, fid, (long)c->nreqs) != 0)
		return -1;
	PyObject *item = Py_BuildValue("(Iz)", fid, arg); /* New reference */
	if (!item) {
		if (!arg)
			c->argless[fid] = -1;
		return -1;
	}
	Py_ssize_t old = c->requests ? PyTuple_GET_SIZE(c->requests) : 0;
	PyObject *tuple = PyTuple_New(old + 1); /* New reference */
	if (!tuple) {
		Py_DECREF(item);
		if (!arg)
			c->argless[fid] = -1;
		return -1;
	}
	for (Py_ssize_t i = 0; i < old; i++) {
		PyObject *x = PyTuple_GET_ITEM(c->requests, i); /* Borrowed reference */
		Py_INCREF(x);
		PyTuple_SET_ITEM(tuple, i, x); /* Steals a reference */
	}
	PyTuple_SET_ITEM(tuple, old, item); /* Steals a reference */
	Py_XSETREF(c->requests, tuple);
	shim_request *r = &c->reqs[c->nreqs];
	r->field_id = fid;
	r->arg = arg ? strdup(arg) : NULL;
	r->strs = NULL;
	r->cap = 0;
	return (long)c->nreqs++;
}

/* GIL held. Points the request's string array at the UTF-8 of `value` (kept alive by the cache). */
static int to_strings(shim_request *r, PyObject *value, uint64_t *count)
{
	*count = 0;
	if (value == Py_None)
		return 0;
	int single = PyUnicode_Check(value) || PyBytes_Check(value);
	Py_ssize_t n = single ? 1 : (PyTuple_Check(value) ? PyTuple_GET_SIZE(value) : -1);
	if (n < 0)
		return -1;
	if ((size_t)n > r->cap) {
		const char **s = realloc(r->strs, (size_t)n * sizeof *s);
		if (!s)
			return -1;
		r->strs = s;
		r->cap = (size_t)n;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *v = single ? value : PyTuple_GET_ITEM(value, i); /* Borrowed reference */
		const char *s;
		if (PyUnicode_Check(v))
			s = PyUnicode_AsUTF8(v); /* cached inside the str object */
		else if (PyBytes_Check(v))
			s = PyBytes_AS_STRING(v); /* NUL-terminated by CPython */
		else
			return -1;
		if (!s)
			return -1;
		r->strs[i] = s;
	}
	*count = (uint64_t)n;
	return 0;
}

static ss_plugin_rc fail(shim_plugin *p, const char *what)
{
	char err[SHIM_ERRLEN];
	if (PyErr_Occurred())
		shim_pycall_report(err, sizeof err, what);
	else
		snprintf(err, sizeof err, "%s", what);
	shim_set_error(p, "%s", err);
	drop_event(&p->cache);
	return SS_PLUGIN_FAILURE;
}

ss_plugin_rc shim_extract_one(shim_plugin *p, const ss_plugin_event_input *in, ss_plugin_extract_field *f)
{
	static PyObject *s_extract, *s_extract_more; /* interned method names, process lifetime */
	shim_extract_cache *c = &p->cache;
	const ss_plugin_event *e = in->evt;
	f->res_len = 0;

	uint32_t plen;
	if (!e || e->type != PLUGIN_EVENT_TYPE || e->nparams != PLUGIN_EVENT_NPARAMS ||
	    e->len < PLUGIN_EVENT_PAYLOAD_OFFSET)
		return SS_PLUGIN_SUCCESS; /* not a plugin event: no value */
	memcpy(&plen, (const uint8_t *)e + sizeof(ss_plugin_event) + 4, sizeof plen);
	if ((uint64_t)plen + PLUGIN_EVENT_PAYLOAD_OFFSET > e->len)
		return SS_PLUGIN_SUCCESS;

	/* Python always gets the argument text: key arguments as given, index arguments printed
	 * back (arg_index alone is unreliable across Falco versions, so test arg_present). */
	char argbuf[32];
	const char *arg = NULL;
	if (f->arg_present) {
		if (f->arg_key) {
			arg = f->arg_key;
		} else {
			snprintf(argbuf, sizeof argbuf, "%llu", (unsigned long long)f->arg_index);
			arg = argbuf;
		}
	}

	if (!s_extract) {
		s_extract = PyUnicode_InternFromString("extract");
		s_extract_more = PyUnicode_InternFromString("extract_more");
		if (!s_extract || !s_extract_more)
			return fail(p, "extract: out of memory");
	}

	long ri = find_request(c, f->field_id, arg);
	if (ri < 0 && (ri = add_request(c, f->field_id, arg)) < 0)
		return fail(p, "extract: out of memory");

	if (!same_event(c, in)) {
		drop_event(c);
		PyObject *payload =
			PyBytes_FromStringAndSize((const char *)e + PLUGIN_EVENT_PAYLOAD_OFFSET, plen); /* New */
		if (!payload)
			return fail(p, "extract");
		PyObject *res = PyObject_CallMethodObjArgs(p->plugin, s_extract, payload, c->requests, NULL); /* New */
		Py_DECREF(payload);
		if (!res)
			return fail(p, "extract");
		if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
			Py_DECREF(res);
			return fail(p, "extract: Plugin.extract must return (event, values)");
		}
		c->event = PyTuple_GET_ITEM(res, 0); /* Borrowed, then owned */
		Py_INCREF(c->event);
		c->values = PySequence_List(PyTuple_GET_ITEM(res, 1)); /* New reference (a copy we may append to) */
		Py_DECREF(res);
		if (!c->values)
			return fail(p, "extract");
		c->evtnum = in->evtnum;
		c->evt = e;
		c->ts = e->ts;
		c->len = e->len;
		c->have_event = 1;
	}

	/* Requests first seen after this event was computed: one extra crossing each, once. */
	while (PyList_GET_SIZE(c->values) <= ri) {
		Py_ssize_t k = PyList_GET_SIZE(c->values);
		PyObject *req = PyTuple_GET_ITEM(c->requests, k); /* Borrowed reference */
		PyObject *v = PyObject_CallMethodObjArgs(p->plugin, s_extract_more, c->event, PyTuple_GET_ITEM(req, 0),
							 PyTuple_GET_ITEM(req, 1), NULL); /* New reference */
		if (!v)
			return fail(p, "extract");
		int rc = PyList_Append(c->values, v);
		Py_DECREF(v);
		if (rc != 0)
			return fail(p, "extract");
	}

	PyObject *value = PyList_GET_ITEM(c->values, ri); /* Borrowed reference */
	uint64_t count;
	if (to_strings(&c->reqs[ri], value, &count) != 0) {
		PyErr_Clear();
		shim_set_error(p, "extract: field %s returned a %s, not str/bytes/tuple", f->field ? f->field : "?",
			       Py_TYPE(value)->tp_name);
		return SS_PLUGIN_FAILURE;
	}
	f->res.str = c->reqs[ri].strs;
	f->res_len = count;
	return SS_PLUGIN_SUCCESS;
}

void shim_extract_free(shim_extract_cache *c)
{
	drop_event(c);
	Py_CLEAR(c->requests);
	for (size_t i = 0; i < c->nreqs; i++) {
		free(c->reqs[i].arg);
		free(c->reqs[i].strs);
	}
	free(c->reqs);
	free(c->argless);
	memset(c, 0, sizeof *c);
}
