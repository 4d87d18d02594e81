/* plugin_get_metrics storage: Plugin.metrics() → ss_plugin_metric array.
 * Falco calls get_metrics from its event thread and from Prometheus webserver threads at once, and
 * copies the array after we return: each calling thread gets its own buffer (thread-local, freed when
 * the thread ends), valid until that thread's next call. */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	ss_plugin_metric *metrics;
	size_t metrics_cap;
	char *names; /* the metric names back to back, NUL-terminated */
	size_t names_cap;
} thread_metrics;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static int g_key_ok;

static void free_thread_metrics(void *ptr)
{
	thread_metrics *t = ptr;
	free(t->metrics);
	free(t->names);
	free(t);
}

static void make_key(void)
{
	g_key_ok = pthread_key_create(&g_key, free_thread_metrics) == 0;
}

static thread_metrics *this_thread(void)
{
	pthread_once(&g_key_once, make_key);
	if (!g_key_ok)
		return NULL;
	thread_metrics *t = pthread_getspecific(g_key);
	if (!t) {
		t = calloc(1, sizeof *t);
		if (t && pthread_setspecific(g_key, t) != 0) {
			free(t);
			t = NULL;
		}
	}
	return t;
}

static int grow(void **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	void *n = realloc(*buf, need);
	if (!n)
		return -1;
	*buf = n;
	*cap = need;
	return 0;
}

/* GIL held. (name, kind 0 = counter | 1 = gauge, int | float) rows → the thread's metric array. */
ss_plugin_metric *shim_metrics_collect(shim_plugin *p, uint32_t *num)
{
	*num = 0;
	thread_metrics *t = this_thread();
	if (!t)
		return NULL;
	PyObject *list = PyObject_CallMethod(p->plugin, "metrics", NULL); /* New reference */
	if (!list || !PyList_Check(list)) {
		char err[SHIM_ERRLEN];
		if (PyErr_Occurred())
			shim_pycall_report(err, sizeof err, "metrics"); /* logged; not a Falco error */
		Py_XDECREF(list);
		return NULL;
	}
	Py_ssize_t n = PyList_GET_SIZE(list);
	size_t names_len = 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PyList_GET_ITEM(list, i); /* Borrowed reference */
		PyObject *name = PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 3 ? PyTuple_GET_ITEM(item, 0) : NULL;
		const char *u = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
		names_len += u ? strlen(u) + 1 : 0;
	}
	PyErr_Clear();
	if (grow((void **)&t->metrics, &t->metrics_cap, (size_t)(n ? n : 1) * sizeof *t->metrics) != 0 ||
	    grow((void **)&t->names, &t->names_cap, names_len ? names_len : 1) != 0) {
		Py_DECREF(list);
		return NULL;
	}
	uint32_t k = 0;
	size_t at = 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PyList_GET_ITEM(list, i); /* Borrowed reference */
		const char *name;
		int kind;
		PyObject *value; /* Borrowed reference */
		if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "siO", &name, &kind, &value)) {
			PyErr_Clear();
			continue;
		}
		ss_plugin_metric *m = &t->metrics[k];
		m->type = kind == 0 ? METRIC_TYPE_MONOTONIC : METRIC_TYPE_NON_MONOTONIC;
		if (PyFloat_Check(value)) {
			m->value_type = METRIC_VALUE_D;
			m->value.d = PyFloat_AS_DOUBLE(value);
		} else {
			m->value_type = METRIC_VALUE_U64;
			m->value.u64 = PyLong_AsUnsignedLongLongMask(value);
		}
		size_t len = strlen(name) + 1;
		if (PyErr_Occurred() || at + len > names_len) {
			PyErr_Clear();
			continue;
		}
		memcpy(t->names + at, name, len);
		m->name = t->names + at;
		at += len;
		k++;
	}
	Py_DECREF(list);
	*num = k;
	return t->metrics;
}
