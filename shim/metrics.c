/* plugin_get_metrics storage: Plugin.metrics() → ss_plugin_metric array valid until a later call. */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

static void free_set(struct shim_metric_set *set)
{
	for (uint32_t i = 0; i < set->n; i++)
		free(set->names[i]);
	free(set->names);
	free(set->metrics);
	memset(set, 0, sizeof *set);
}

void shim_metrics_free(shim_plugin *p)
{
	for (size_t i = 0; i < sizeof p->metric_sets / sizeof p->metric_sets[0]; i++)
		free_set(&p->metric_sets[i]);
}

/* GIL held, metrics_lock held. (name, kind 0 = counter | 1 = gauge, int | float) → metrics. */
ss_plugin_metric *shim_metrics_collect(shim_plugin *p, uint32_t *num)
{
	*num = 0;
	PyObject *list = PyObject_CallMethod(p->plugin, "metrics", NULL); /* New reference */
	if (!list || !PyList_Check(list)) {
		char err[SHIM_ERRLEN];
		if (PyErr_Occurred())
			shim_pycall_report(err, sizeof err, "metrics"); /* logged; not a Falco error */
		Py_XDECREF(list);
		return NULL;
	}
	struct shim_metric_set *set = &p->metric_sets[p->metric_gen++ % 4];
	free_set(set);
	Py_ssize_t n = PyList_GET_SIZE(list);
	set->metrics = calloc((size_t)(n ? n : 1), sizeof *set->metrics);
	set->names = calloc((size_t)(n ? n : 1), sizeof *set->names);
	if (!set->metrics || !set->names) {
		Py_DECREF(list);
		free_set(set);
		return NULL;
	}
	uint32_t k = 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PyList_GET_ITEM(list, i); /* Borrowed reference */
		const char *name;
		int kind;
		PyObject *value; /* Borrowed reference */
		if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "siO", &name, &kind, &value)) {
			PyErr_Clear();
			continue;
		}
		ss_plugin_metric *m = &set->metrics[k];
		m->type = kind == 0 ? METRIC_TYPE_MONOTONIC : METRIC_TYPE_NON_MONOTONIC;
		if (PyFloat_Check(value)) {
			m->value_type = METRIC_VALUE_D;
			m->value.d = PyFloat_AS_DOUBLE(value);
		} else {
			m->value_type = METRIC_VALUE_U64;
			m->value.u64 = PyLong_AsUnsignedLongLongMask(value);
		}
		char *copy = PyErr_Occurred() ? NULL : strdup(name);
		PyErr_Clear();
		if (!copy)
			continue;
		set->names[k] = copy;
		m->name = copy;
		k++;
	}
	Py_DECREF(list);
	set->n = k;
	*num = k;
	return set->metrics;
}
