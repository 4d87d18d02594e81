/* Starts CPython once per process and imports k8saudit_eks_py.plugin; never finalises (hot reload).
 * The library is linked with -z nodelete, so these statics survive dlclose + dlopen. */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNTIME_DIR "k8saudit-eks-py-runtime"
#define OVERRIDE_ENV "K8SAUDIT_EKS_PY_PYTHON"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0 = not started, 1 = ready, -1 = failed for good */
static char g_error[SHIM_ERRLEN];
static PyObject *g_module; /* New reference, kept for the process lifetime */

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whether `path` is the running executable itself. */
static int is_main_program(const char *path)
{
	char exe[PATH_MAX], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0 || !realpath(path, real))
		return 0;
	exe[n] = '\0';
	return strcmp(exe, real) == 0;
}

/* Extension modules (_ssl, orjson, ...) import libpython symbols; Falco loads us RTLD_LOCAL, so make
 * libpython global before the first import. */
static int promote_libpython(void)
{
	Dl_info info;
	if (!dladdr((void *)&Py_IsInitialized, &info) || !info.dli_fname) {
		snprintf(g_error, sizeof g_error, "cannot locate libpython: dladdr failed");
		return -1;
	}
	/* In-process hosts on a python3 that has libpython linked in (Debian's and Ubuntu's): the
	 * executable's symbols are global already, and it cannot be dlopen'ed by name. */
	if (is_main_program(info.dli_fname))
		return 0;
	if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL)) {
		snprintf(g_error, sizeof g_error, "cannot make %s global: %s", info.dli_fname, dlerror());
		return -1;
	}
	return 0; /* handle deliberately kept: libpython must stay loaded */
}

/* Directory holding this shared library. */
static int self_dir(char *out, size_t outlen)
{
	Dl_info info;
	char real[PATH_MAX];
	if (!dladdr((void *)&shim_interp_ensure, &info) || !info.dli_fname || !realpath(info.dli_fname, real))
		return -1;
	char *slash = strrchr(real, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	snprintf(out, outlen, "%s", real);
	return 0;
}

static int config_fail(PyConfig *config, PyStatus status, const char *what)
{
	snprintf(g_error, sizeof g_error, "cannot start Python (%s): %s", what,
		 status.err_msg ? status.err_msg : "unknown error");
	PyConfig_Clear(config);
	return -1;
}

/* Decide where Python's home and packages are, in order: override variable, private runtime next
 * to the library (falcoctl artifact), the virtual environment the library was installed into, the
 * Python it was built against. `site_dir` receives a directory to add with site.addsitedir. */
static int start_python(const char *dir, char *site_dir, size_t site_len)
{
	char path[PATH_MAX];
	PyConfig config;
	PyStatus status;

	PyConfig_InitIsolatedConfig(&config);
	config.install_signal_handlers = 0; /* signals belong to Falco */
	config.buffered_stdio = 0; /* log lines reach stderr at once */
	config.site_import = 1;
	site_dir[0] = '\0';

	const char *override = getenv(OVERRIDE_ENV);
	snprintf(path, sizeof path, "%s/" RUNTIME_DIR, dir);
	if (override && override[0]) {
		status = PyConfig_SetBytesString(&config, &config.program_name, override);
		if (PyStatus_Exception(status))
			return config_fail(&config, status, OVERRIDE_ENV);
		status = PyConfig_SetBytesString(&config, &config.executable, override);
	} else if (is_dir(path)) {
		status = PyConfig_SetBytesString(&config, &config.home, path);
		/* Named explicitly: Debian's site.py (copied into a runtime built with apt's python3) looks
		 * only in dist-packages directories outside a venv. */
		int n = snprintf(site_dir, site_len, "%s/lib/python%d.%d/site-packages", path,
				 PY_MAJOR_VERSION, PY_MINOR_VERSION);
		if (n < 0 || (size_t)n >= site_len) {
			snprintf(g_error, sizeof g_error, "the runtime path is too long (%d bytes)", n);
			PyConfig_Clear(&config);
			return -1;
		}
	} else {
		/* <venv>/lib/pythonX.Y/site-packages/k8saudit_eks_py/<this library> */
		char venv[PATH_MAX];
		snprintf(venv, sizeof venv, "%s/../../../..", dir);
		char cfg[PATH_MAX + 16];
		snprintf(cfg, sizeof cfg, "%s/pyvenv.cfg", venv);
		snprintf(site_dir, site_len, "%s/..", dir);
		if (is_file(cfg)) {
			char exe[PATH_MAX + 32];
			snprintf(exe, sizeof exe, "%s/bin/python3", venv);
			status = PyConfig_SetBytesString(&config, &config.program_name, exe);
			if (PyStatus_Exception(status))
				return config_fail(&config, status, "venv");
			status = PyConfig_SetBytesString(&config, &config.executable, exe);
		} else {
			status = PyConfig_SetBytesString(&config, &config.home, K8SAUDIT_PYTHON_HOME);
		}
	}
	if (PyStatus_Exception(status))
		return config_fail(&config, status, "configuration");
	status = Py_InitializeFromConfig(&config);
	if (PyStatus_Exception(status))
		return config_fail(&config, status, "initialisation");
	PyConfig_Clear(&config);
	return 0;
}

/* GIL held. Adds site_dir (and its .pth files) to sys.path, then imports the plugin module. */
static int import_plugin(const char *site_dir)
{
	if (site_dir[0]) {
		PyObject *site = PyImport_ImportModule("site"); /* New reference */
		PyObject *r = site ? PyObject_CallMethod(site, "addsitedir", "s", site_dir) : NULL; /* New */
		Py_XDECREF(r);
		Py_XDECREF(site);
		if (!r) {
			shim_pycall_report(g_error, sizeof g_error, "cannot add the package directory to sys.path");
			return -1;
		}
	}
	g_module = PyImport_ImportModule("k8saudit_eks_py.plugin"); /* New reference */
	if (!g_module) {
		shim_pycall_report(g_error, sizeof g_error, "cannot import k8saudit_eks_py.plugin");
		return -1;
	}
	return 0;
}

int shim_interp_ensure(void)
{
	pthread_mutex_lock(&g_lock);
	if (g_state != 0) {
		int ok = g_state == 1;
		pthread_mutex_unlock(&g_lock);
		return ok ? 0 : -1;
	}
	char dir[PATH_MAX] = ".";
	char site_dir[PATH_MAX + 4] = "";
	int rc = -1;
	if (self_dir(dir, sizeof dir) != 0)
		snprintf(g_error, sizeof g_error, "cannot locate the plugin library on disk");
	else if (promote_libpython() == 0) {
		if (Py_IsInitialized()) {
			/* Loaded into a process that already runs Python (in-process hosts): use it. */
			PyGILState_STATE gil = PyGILState_Ensure();
			rc = import_plugin(site_dir);
			PyGILState_Release(gil);
		} else if (start_python(dir, site_dir, sizeof site_dir) == 0) {
			rc = import_plugin(site_dir);
			/* Drop the GIL for good: entry points take it with PyGILState_Ensure. */
			PyEval_SaveThread();
		}
	}
	g_state = rc == 0 ? 1 : -1;
	if (rc != 0)
		fprintf(stderr, SHIM_LOG_PREFIX "%s\n", g_error);
	pthread_mutex_unlock(&g_lock);
	return rc;
}

const char *shim_interp_error(void)
{
	return g_error;
}

PyObject *shim_interp_module(void)
{
	return g_module;
}
