/* Calls into the plugin's Python module and the last-error text an entry point reports to Falco. */
#include "shim.h"

#include <stdarg.h>
#include <stdio.h>

void shim_set_error(shim_plugin *p, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&p->err_lock);
	va_start(ap, fmt);
	vsnprintf(p->last_error, sizeof p->last_error, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&p->err_lock);
}

/* GIL held. obj.name(*Py_BuildValue(fmt, ...)); on exception the text goes to p's last error. */
PyObject *shim_pycall_method(shim_plugin *p, PyObject *obj, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PyObject *args = fmt ? Py_VaBuildValue(fmt, ap) : PyTuple_New(0); /* New reference */
	va_end(ap);
	PyObject *result = NULL;
	if (args && !PyTuple_Check(args)) {
		PyObject *one = PyTuple_Pack(1, args); /* New reference */
		Py_DECREF(args);
		args = one;
	}
	PyObject *meth = args ? PyObject_GetAttrString(obj, name) : NULL; /* New reference */
	if (meth)
		result = PyObject_CallObject(meth, args); /* New reference */
	Py_XDECREF(meth);
	Py_XDECREF(args);
	if (!result) {
		char err[SHIM_ERRLEN];
		shim_pycall_report(err, sizeof err, name);
		shim_set_error(p, "%s", err);
	}
	return result;
}

/* GIL held. k8saudit_eks_py.plugin.<func>() → New reference, or NULL with err filled. */
PyObject *shim_pycall_module(char *err, size_t errlen, const char *func)
{
	PyObject *mod = shim_interp_module(); /* Borrowed reference */
	PyObject *result = mod ? PyObject_CallMethod(mod, func, NULL) : NULL; /* New reference */
	if (!result)
		shim_pycall_report(err, errlen, func);
	return result;
}
