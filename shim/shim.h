/* Internal interface of the shim: plugin/instance state and the shim_<file>_* functions.
 * Every function taking or returning a PyObject expects the caller to hold the GIL. */
#ifndef K8SAUDIT_SHIM_H
#define K8SAUDIT_SHIM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdint.h>

#include "abi.h"

#define SHIM_ERRLEN 4096
#define SHIM_LOG_PREFIX "[k8saudit-eks] "
/* Set to "1" by a host that reports get_last_error itself: failed calls then log nothing. */
#define SHIM_QUIET_ERRORS_ENV "K8SAUDIT_EKS_PY_QUIET_ERRORS"

/* Result storage of one distinct extraction request (field id + argument). */
typedef struct {
	uint32_t field_id;
	char *arg; /* NULL when no [argument] was given */
	const char **strs; /* pointers into the current event's Python values */
	size_t cap;
} shim_request;

/* Per plugin state cache: one Python crossing per event, then served from C. */
typedef struct {
	PyObject *requests; /* New reference: tuple of (field_id, arg | None), grows on misses */
	shim_request *reqs; /* same order as `requests` */
	size_t nreqs;
	size_t cap;
	int32_t *argless; /* field_id → index of its no-argument request, -1 if none yet */
	size_t argless_cap;
	/* current event identity */
	int have_event;
	uint64_t evtnum;
	const void *evt;
	uint64_t ts;
	uint32_t len;
	PyObject *event; /* New reference: opaque per-event object from Plugin.extract */
	PyObject *values; /* New reference: list aligned with requests (None until computed) */
} shim_extract_cache;

typedef struct shim_plugin {
	PyObject *plugin; /* New reference: k8saudit_eks_py.plugin.Plugin, NULL after a failed init */
	pthread_mutex_t err_lock; /* last_error may be written from the event thread and read elsewhere */
	char last_error[SHIM_ERRLEN];
	char event_string[1024];
	shim_extract_cache cache;
} shim_plugin;

typedef struct {
	shim_plugin *owner;
	PyObject *instance; /* New reference: k8saudit_eks_py.plugin.Instance */
	int eof_pending; /* the last batch carried events and the source said EOF after them */
	/* batch storage: valid until the next next_batch/close of this instance */
	uint8_t *arena;
	size_t arena_cap;
	ss_plugin_event **events;
	size_t events_cap;
	char progress[256];
} shim_instance;

/* interp.c */
int shim_interp_ensure(void); /* start CPython once per process; 0 on success */
const char *shim_interp_error(void); /* why the start failed ("" otherwise) */
PyObject *shim_interp_module(void); /* Borrowed reference: k8saudit_eks_py.plugin */

/* pyerr.c (GIL held): Python exceptions as text */
void shim_pycall_report(char *err, size_t errlen, const char *context);
int shim_copy_utf8(PyObject *s, char *out, size_t outlen);

/* pycall.c (GIL held) */
PyObject *shim_pycall_method(shim_plugin *p, PyObject *obj, const char *name, const char *fmt, ...);
PyObject *shim_pycall_module(char *err, size_t errlen, const char *func);
void shim_set_error(shim_plugin *p, const char *fmt, ...);

/* buffers.c (GIL held) */
ss_plugin_rc shim_buffers_fill_batch(shim_instance *inst, PyObject *events, uint32_t *nevts,
				     ss_plugin_event ***evts);
void shim_buffers_free_batch(shim_instance *inst);

/* extract.c (GIL held) */
ss_plugin_rc shim_extract_one(shim_plugin *p, const ss_plugin_event_input *evt, ss_plugin_extract_field *f);
void shim_extract_free(shim_extract_cache *c);

/* metrics.c (GIL held; the result is the calling thread's own storage) */
ss_plugin_metric *shim_metrics_collect(shim_plugin *p, uint32_t *num);

#endif
