/* The only code that turns Python exceptions into text: last-error messages and stderr log lines.
 * Used by the interpreter's start (interp.c) and by every call into Python (pycall.c). */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GIL held. Copies a str's UTF-8 into out; returns 0 on success. */
int shim_copy_utf8(PyObject *s, char *out, size_t outlen)
{
	Py_ssize_t n = 0;
	const char *u = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
	if (!u) {
		PyErr_Clear();
		return -1;
	}
	snprintf(out, outlen, "%.*s", (int)n, u);
	return 0;
}

static int is_plugin_error(PyObject *value)
{
	/* Our own exceptions carry a message written for the Falco user: show it alone. */
	PyObject *mod = PyObject_GetAttrString((PyObject *)Py_TYPE(value), "__module__"); /* New */
	int ours = 0;
	if (mod && PyUnicode_Check(mod)) {
		const char *m = PyUnicode_AsUTF8(mod);
		ours = m && strncmp(m, "k8saudit_eks_py", 15) == 0;
	}
	Py_XDECREF(mod);
	PyErr_Clear();
	return ours;
}

static void display(PyObject *value)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_DisplayException(value);
#else
	PyObject *tb = PyException_GetTraceback(value); /* New reference */
	PyErr_Display((PyObject *)Py_TYPE(value), value, tb);
	Py_XDECREF(tb);
#endif
}

/* GIL held, an exception set. Writes "context: message" into err, logs it, clears the exception. */
void shim_pycall_report(char *err, size_t errlen, const char *context)
{
	PyObject *value;
#if PY_VERSION_HEX >= 0x030C0000
	value = PyErr_GetRaisedException(); /* New reference */
#else
	PyObject *type, *tb;
	PyErr_Fetch(&type, &value, &tb); /* New references */
	PyErr_NormalizeException(&type, &value, &tb);
	if (value && tb)
		PyException_SetTraceback(value, tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
#endif
	char msg[SHIM_ERRLEN - 256] = "unknown error";
	int ours = 0;
	if (value) {
		PyObject *text = PyObject_Str(value); /* New reference */
		char body[SHIM_ERRLEN - 512] = "";
		if (!text || shim_copy_utf8(text, body, sizeof body) != 0)
			snprintf(body, sizeof body, "(unprintable exception)");
		Py_XDECREF(text);
		PyErr_Clear();
		ours = is_plugin_error(value);
		if (ours) {
			snprintf(msg, sizeof msg, "%s", body);
		} else {
			snprintf(msg, sizeof msg, "%.200s: %s", Py_TYPE(value)->tp_name, body);
			/* Unexpected: the traceback helps whoever reports the bug. */
			display(value);
			PyErr_Clear();
		}
	}
	Py_XDECREF(value);
	/* Our own errors are complete sentences for the user; others get the call they came from. */
	if (context && context[0] && !ours)
		snprintf(err, errlen, "%.200s: %s", context, msg);
	else
		snprintf(err, errlen, "%s", msg);
	/* A host that prints get_last_error itself (the `tail` command) asks for no copy on stderr. */
	const char *quiet = getenv(SHIM_QUIET_ERRORS_ENV);
	if (!quiet || strcmp(quiet, "1") != 0)
		fprintf(stderr, SHIM_LOG_PREFIX "%s\n", err);
}
