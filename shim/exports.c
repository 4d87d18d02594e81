/* Every plugin_* symbol Falco resolves. Each one: check arguments, take the GIL, delegate, convert,
 * release the GIL, return a defined result. No Python exception, NULL string or long wait escapes. */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* Events per batch (as the Go SDK: small batches bound what a crash mid-batch delivers again) and the
 * longest next_batch waits for the first one (keeps Falco responsive to stop and reload). */
#define BATCH_MAX_EVENTS 128
#define BATCH_WAIT_SECONDS 0.05

static const char NO_STATE_ERROR[] = "k8saudit-eks: no plugin state (init failed before allocating it)";

/* Static strings computed once by Python (fields, schema, open params), kept for the process. */
static pthread_mutex_t g_static_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_fields, *g_schema, *g_open_params;

static const char *python_string(char **slot, const char *func, const char *fallback)
{
	pthread_mutex_lock(&g_static_lock);
	if (!*slot && shim_interp_ensure() == 0) {
		char err[SHIM_ERRLEN];
		PyGILState_STATE gil = PyGILState_Ensure();
		PyObject *s = shim_pycall_module(err, sizeof err, func); /* New reference */
		const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
		if (u)
			*slot = strdup(u);
		PyErr_Clear();
		Py_XDECREF(s);
		PyGILState_Release(gil);
	}
	const char *r = *slot ? *slot : fallback;
	pthread_mutex_unlock(&g_static_lock);
	return r;
}

EXPORT const char *plugin_get_required_api_version(void) { return "3.0.0"; }
EXPORT const char *plugin_get_version(void) { return K8SAUDIT_VERSION; }
EXPORT const char *plugin_get_name(void) { return "k8saudit-eks"; }
EXPORT const char *plugin_get_contact(void) { return "github.com/k8saudit-eks-py/k8saudit-eks-py"; }
EXPORT uint32_t plugin_get_id(void) { return 9; }
EXPORT const char *plugin_get_event_source(void) { return "k8s_audit"; }

EXPORT const char *plugin_get_description(void)
{
	return "Reads Kubernetes audit events of EKS clusters from CloudWatch Logs, exactly once, "
	       "with the ka.* fields of k8saudit-eks (Python plugin behind a C shim)";
}

EXPORT const char *plugin_get_fields(void)
{
	return python_string(&g_fields, "fields_json", "[]");
}

EXPORT const char *plugin_get_init_schema(ss_plugin_schema_type *schema_type)
{
	const char *s = python_string(&g_schema, "init_schema_json", "");
	if (schema_type)
		*schema_type = s[0] ? SS_PLUGIN_SCHEMA_JSON : SS_PLUGIN_SCHEMA_NONE;
	return s;
}

EXPORT ss_plugin_t *plugin_init(const ss_plugin_init_input *in, ss_plugin_rc *rc)
{
	shim_plugin *p = calloc(1, sizeof *p);
	if (!p) {
		if (rc)
			*rc = SS_PLUGIN_FAILURE;
		return NULL;
	}
	pthread_mutex_init(&p->err_lock, NULL);
	if (shim_interp_ensure() != 0) {
		shim_set_error(p, "cannot start the embedded Python: %s", shim_interp_error());
		if (rc)
			*rc = SS_PLUGIN_FAILURE;
		return p;
	}
	const char *config = in && in->config ? in->config : "";
	PyGILState_STATE gil = PyGILState_Ensure();
	p->plugin = shim_pycall_method(p, shim_interp_module(), "Plugin", "(s)", config); /* New reference */
	PyGILState_Release(gil);
	if (rc)
		*rc = p->plugin ? SS_PLUGIN_SUCCESS : SS_PLUGIN_FAILURE;
	return p;
}

EXPORT void plugin_destroy(ss_plugin_t *s)
{
	shim_plugin *p = s;
	if (!p)
		return;
	if (p->plugin || p->cache.requests) {
		PyGILState_STATE gil = PyGILState_Ensure();
		if (p->plugin) {
			PyObject *r = shim_pycall_method(p, p->plugin, "destroy", NULL); /* New reference */
			Py_XDECREF(r);
		}
		shim_extract_free(&p->cache);
		Py_CLEAR(p->plugin);
		PyGILState_Release(gil);
	}
	pthread_mutex_destroy(&p->err_lock);
	free(p);
}

EXPORT const char *plugin_get_last_error(ss_plugin_t *s)
{
	shim_plugin *p = s;
	return p ? p->last_error : NO_STATE_ERROR;
}

EXPORT ss_instance_t *plugin_open(ss_plugin_t *s, const char *params, ss_plugin_rc *rc)
{
	shim_plugin *p = s;
	if (rc)
		*rc = SS_PLUGIN_FAILURE;
	if (!p || !p->plugin) {
		if (p && !p->last_error[0])
			shim_set_error(p, "open: the plugin was not initialised");
		return NULL;
	}
	shim_instance *inst = calloc(1, sizeof *inst);
	if (!inst) {
		shim_set_error(p, "open: out of memory");
		return NULL;
	}
	inst->owner = p;
	PyGILState_STATE gil = PyGILState_Ensure();
	inst->instance = shim_pycall_method(p, p->plugin, "open", "(s)", params ? params : ""); /* New */
	PyGILState_Release(gil);
	if (!inst->instance) {
		free(inst);
		return NULL;
	}
	if (rc)
		*rc = SS_PLUGIN_SUCCESS;
	return inst;
}

EXPORT void plugin_close(ss_plugin_t *s, ss_instance_t *h)
{
	shim_plugin *p = s;
	shim_instance *inst = h;
	if (!p || !inst)
		return;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *r = shim_pycall_method(p, inst->instance, "close", NULL); /* New reference */
	Py_XDECREF(r);
	Py_CLEAR(inst->instance);
	PyGILState_Release(gil);
	shim_buffers_free_batch(inst);
	free(inst);
}

EXPORT ss_plugin_rc plugin_next_batch(ss_plugin_t *s, ss_instance_t *h, uint32_t *nevts, ss_plugin_event ***evts)
{
	shim_plugin *p = s;
	shim_instance *inst = h;
	if (nevts)
		*nevts = 0;
	if (!p || !inst || !nevts || !evts) {
		if (p)
			shim_set_error(p, "next_batch: called without state, instance or outputs");
		return SS_PLUGIN_FAILURE;
	}
	if (inst->eof_pending)
		return SS_PLUGIN_EOF;
	ss_plugin_rc rc = SS_PLUGIN_FAILURE;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *res = shim_pycall_method(p, inst->instance, "next_batch", "(id)", BATCH_MAX_EVENTS,
					   BATCH_WAIT_SECONDS); /* New reference */
	if (!res)
		goto out;
	if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
		shim_set_error(p, "next_batch: the source must return (events, eof)");
		goto out;
	}
	int eof = PyObject_IsTrue(PyTuple_GET_ITEM(res, 1));
	rc = shim_buffers_fill_batch(inst, PyTuple_GET_ITEM(res, 0), nevts, evts);
	if (rc != SS_PLUGIN_SUCCESS)
		goto out;
	if (*nevts == 0)
		rc = eof > 0 ? SS_PLUGIN_EOF : SS_PLUGIN_TIMEOUT;
	else
		inst->eof_pending = eof > 0; /* deliver these first, report EOF on the next call */
out:
	Py_XDECREF(res);
	PyGILState_Release(gil);
	return rc;
}

EXPORT const char *plugin_get_progress(ss_plugin_t *s, ss_instance_t *h, uint32_t *progress_pct)
{
	shim_plugin *p = s;
	shim_instance *inst = h;
	if (progress_pct)
		*progress_pct = 0;
	if (!p || !inst)
		return "";
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *r = shim_pycall_method(p, inst->instance, "progress", NULL); /* New reference */
	unsigned int pct = 0;
	const char *text = NULL;
	if (r && PyArg_ParseTuple(r, "Is", &pct, &text)) {
		snprintf(inst->progress, sizeof inst->progress, "%s", text);
		if (progress_pct)
			*progress_pct = pct > 10000 ? 10000 : pct;
	} else {
		PyErr_Clear();
		inst->progress[0] = '\0';
	}
	Py_XDECREF(r);
	PyGILState_Release(gil);
	return inst->progress;
}

EXPORT const char *plugin_list_open_params(ss_plugin_t *s, ss_plugin_rc *rc)
{
	(void)s;
	if (rc)
		*rc = SS_PLUGIN_SUCCESS;
	return python_string(&g_open_params, "open_params_json", "");
}

EXPORT const char *plugin_event_to_string(ss_plugin_t *s, const ss_plugin_event_input *evt)
{
	shim_plugin *p = s;
	if (!p || !p->plugin || !evt || !evt->evt || evt->evt->len < PLUGIN_EVENT_PAYLOAD_OFFSET)
		return "";
	uint32_t plen;
	memcpy(&plen, (const uint8_t *)evt->evt + sizeof(ss_plugin_event) + 4, sizeof plen);
	if ((uint64_t)plen + PLUGIN_EVENT_PAYLOAD_OFFSET > evt->evt->len)
		return "";
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *r = shim_pycall_method(p, p->plugin, "event_to_string", "(y#)",
					 (const char *)evt->evt + PLUGIN_EVENT_PAYLOAD_OFFSET,
					 (Py_ssize_t)plen); /* New reference */
	if (!r || shim_copy_utf8(r, p->event_string, sizeof p->event_string) != 0)
		p->event_string[0] = '\0';
	Py_XDECREF(r);
	PyGILState_Release(gil);
	return p->event_string;
}

EXPORT ss_plugin_rc plugin_extract_fields(ss_plugin_t *s, const ss_plugin_event_input *evt,
					  const ss_plugin_field_extract_input *in)
{
	shim_plugin *p = s;
	if (!p || !p->plugin || !evt || !in || (in->num_fields && !in->fields)) {
		if (p)
			shim_set_error(p, "extract_fields: called without state, event or fields");
		return SS_PLUGIN_FAILURE;
	}
	ss_plugin_rc rc = SS_PLUGIN_SUCCESS;
	PyGILState_STATE gil = PyGILState_Ensure();
	for (uint32_t i = 0; i < in->num_fields && rc == SS_PLUGIN_SUCCESS; i++)
		rc = shim_extract_one(p, evt, &in->fields[i]);
	PyGILState_Release(gil);
	return rc;
}

EXPORT ss_plugin_metric *plugin_get_metrics(ss_plugin_t *s, uint32_t *num_metrics)
{
	static ss_plugin_metric none;
	shim_plugin *p = s;
	if (num_metrics)
		*num_metrics = 0;
	if (!p || !p->plugin || !num_metrics)
		return &none;
	PyGILState_STATE gil = PyGILState_Ensure();
	ss_plugin_metric *m = shim_metrics_collect(p, num_metrics);
	PyGILState_Release(gil);
	return m ? m : &none;
}
