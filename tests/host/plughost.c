/* Test host: loads the plugin library exactly as Falco does (dlopen RTLD_LOCAL|RTLD_NOW, API version
 * check, init → open → next_batch → one extract_fields call per field → close → destroy) and prints
 * what it saw as JSON lines for the pytest suite. It contains no Python.
 *
 * Usage: plughost LIBRARY COMMAND [options]
 *   info                         identity, schema, open params and fields (one JSON object)
 *   run      [--config J] [--open P] [--requests FILE] [--max-events N] [--max-seconds S]
 *            [--metrics-thread] [--progress] [--kill-after N] [--kill-when-idle-after N]
 *                                read events; per event one JSON line {"n","ts","len","values":[...]}
 *                                (values in request order: null or list of strings); last line on
 *                                stdout is {"summary": {...}} (events, timeouts, rc, max_batch_ms, ...)
 *                                --kill-after N: SIGKILL itself right after the Nth event (mid-batch);
 *                                --kill-when-idle-after N: on the first timeout after N events. Each
 *                                event line is flushed before, so the output is what was processed.
 *                                --flush: the same for a kill from outside; each batch is preceded by
 *                                {"batch":K,"size":N,"t":wall-clock seconds}.
 *                                --stamp: each event line also holds "t" (wall clock, s) and is
 *                                flushed at once (several hosts watched while they run);
 *                                --reopen-after S: close and open the instance again once after S
 *                                seconds (Falco's hot reload), printing {"reopened":rc}.
 *                                --open-file FILE: the open params are FILE's content, read again
 *                                on each SIGHUP, which closes and opens the instance with them
 *                                (Falco reloading a rewritten config), printing {"reopened":rc,"t"}.
 *                                SIGTERM / SIGINT: stop reading, print the summary, close, destroy
 *                                and exit 0 (Falco's clean shutdown).
 *   extract  --events FILE --requests FILE [--falco-0.42]
 *                                wrap each line of FILE into a plugin event (no open) and extract
 *   init     [--config J]        print {"rc":..,"error":..} of init (and destroy)
 *   open     [--config J] --open P   print rc/error of init+open
 *   lifecycle [--config J] [--open P] [--requests FILE]
 *                                two states at once, destroy one, use the other; init→destroy→init;
 *                                dlclose + dlopen + init again; prints one JSON line per step
 *   tostring --events FILE       event_to_string for each line
 *   bench    --events FILE --requests FILE [--rounds N]
 *                                extract every request of every event N times (new evtnum each
 *                                time, nothing printed per event); prints events/s, extractions/s
 * A request is "field" or "field[arg]", one per line. --falco-0.42 sets arg_index 0 when no index is
 * given (Falco ≤ 0.42); the default is UINT64_MAX (Falco ≥ 0.43). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../shim/abi.h"
#include "minijson.h"

typedef struct {
	void *handle;
	const char *(*get_required_api_version)(void);
	const char *(*get_version)(void);
	const char *(*get_name)(void);
	const char *(*get_description)(void);
	const char *(*get_contact)(void);
	uint32_t (*get_id)(void);
	const char *(*get_event_source)(void);
	const char *(*get_fields)(void);
	const char *(*get_init_schema)(ss_plugin_schema_type *);
	ss_plugin_t *(*init)(const ss_plugin_init_input *, ss_plugin_rc *);
	void (*destroy)(ss_plugin_t *);
	const char *(*get_last_error)(ss_plugin_t *);
	ss_instance_t *(*open)(ss_plugin_t *, const char *, ss_plugin_rc *);
	void (*close)(ss_plugin_t *, ss_instance_t *);
	ss_plugin_rc (*next_batch)(ss_plugin_t *, ss_instance_t *, uint32_t *, ss_plugin_event ***);
	const char *(*list_open_params)(ss_plugin_t *, ss_plugin_rc *);
	const char *(*get_progress)(ss_plugin_t *, ss_instance_t *, uint32_t *);
	const char *(*event_to_string)(ss_plugin_t *, const ss_plugin_event_input *);
	ss_plugin_rc (*extract_fields)(ss_plugin_t *, const ss_plugin_event_input *,
				       const ss_plugin_field_extract_input *);
	ss_plugin_metric *(*get_metrics)(ss_plugin_t *, uint32_t *);
} plugin_api;

typedef struct {
	char *text; /* as written */
	uint32_t field_id;
	char *arg; /* NULL when no [argument] */
	host_field field; /* a copy: the table is reloaded after dlclose + dlopen */
} request;

static host_field *g_fields;
static int g_nfields;
static int g_falco_042;

static void die(const char *fmt, const char *what)
{
	fprintf(stderr, "plughost: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	exit(2);
}

static int stamp_events; /* --stamp */
static volatile sig_atomic_t g_stop, g_reload; /* SIGTERM/SIGINT, SIGHUP */

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		g_reload = 1;
	else
		g_stop = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The whole of FILE without its trailing newlines (malloc'ed), for --open-file. */
static char *read_params(const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f)
		die("cannot read %s", file);
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	size_t got;
	while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += got;
		if (len + 1 == cap)
			text = realloc(text, cap *= 2);
	}
	fclose(f);
	if (!text)
		die("%s", "out of memory");
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	text[len] = 0;
	return text;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* JSON string with the bytes as they are (invalid UTF-8 passes through; readers decode leniently). */
static void put_json(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

#define RESOLVE(api, name)                                                                  \
	do {                                                                                \
		*(void **)(&(api)->name) = dlsym((api)->handle, "plugin_" #name);            \
	} while (0)

/* Same rule as Falco's loader: major equal, minor ≤ framework's (3.0.0 here, i.e. Falco 0.35). */
static int api_compatible(const char *required)
{
	unsigned maj, min, patch;
	if (sscanf(required, "%u.%u.%u", &maj, &min, &patch) != 3)
		return 0;
	return maj == 3 && min == 0 && patch == 0;
}

static void load(plugin_api *api, const char *path)
{
	memset(api, 0, sizeof *api);
	api->handle = dlopen(path, RTLD_LOCAL | RTLD_NOW);
	if (!api->handle)
		die("dlopen failed: %s", dlerror());
	RESOLVE(api, get_required_api_version);
	if (!api->get_required_api_version || !api_compatible(api->get_required_api_version()))
		die("%s", "plugin requires an incompatible API version");
	RESOLVE(api, get_version);
	RESOLVE(api, get_name);
	RESOLVE(api, get_description);
	RESOLVE(api, get_contact);
	RESOLVE(api, get_id);
	RESOLVE(api, get_event_source);
	RESOLVE(api, get_fields);
	RESOLVE(api, get_init_schema);
	RESOLVE(api, init);
	RESOLVE(api, destroy);
	RESOLVE(api, get_last_error);
	RESOLVE(api, open);
	RESOLVE(api, close);
	RESOLVE(api, next_batch);
	RESOLVE(api, list_open_params);
	RESOLVE(api, get_progress);
	RESOLVE(api, event_to_string);
	RESOLVE(api, extract_fields);
	RESOLVE(api, get_metrics);
	if (!api->get_version || !api->get_name || !api->get_description || !api->get_contact || !api->init ||
	    !api->destroy || !api->get_last_error || !api->open || !api->close || !api->next_batch ||
	    !api->get_fields || !api->extract_fields || !api->get_id || !api->get_event_source)
		die("%s", "a required plugin symbol is missing");
	/* Falco calls these at load time, before init. */
	if (!api->get_id() || !api->get_event_source() || !api->get_event_source()[0])
		die("%s", "plugin has no ID or event source");
	const char *fields = api->get_fields();
	if (!fields)
		die("%s", "get_fields returned NULL");
	free(g_fields);
	g_nfields = minijson_fields(fields, &g_fields);
	if (g_nfields <= 0)
		die("%s", "get_fields is not a non-empty JSON array of fields");
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Splits text into lines in place (a trailing '\r' is dropped); returns the count. */
static size_t split_lines(char *text, char ***lines_out)
{
	size_t cap = 64, n = 0;
	char **lines = malloc(cap * sizeof *lines);
	for (char *p = text; *p;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		size_t len = strlen(p);
		if (len && p[len - 1] == '\r')
			p[len - 1] = '\0';
		if (n == cap)
			lines = realloc(lines, (cap *= 2) * sizeof *lines);
		lines[n++] = p;
		if (!nl)
			break;
		p = nl + 1;
	}
	*lines_out = lines;
	return n;
}

static size_t load_requests(const char *path, request **out)
{
	char **lines;
	size_t n = split_lines(read_file(path), &lines), k = 0;
	request *reqs = calloc(n ? n : 1, sizeof *reqs);
	for (size_t i = 0; i < n; i++) {
		if (!lines[i][0])
			continue;
		request *r = &reqs[k];
		r->text = strdup(lines[i]);
		char *name = strdup(lines[i]);
		char *open = strchr(name, '[');
		if (open) {
			size_t len = strlen(open);
			if (open[len - 1] != ']')
				die("bad request %s", lines[i]);
			open[len - 1] = '\0';
			r->arg = strdup(open + 1);
			*open = '\0';
		}
		int found = -1;
		for (int f = 0; f < g_nfields && found < 0; f++)
			if (strcmp(g_fields[f].name, name) == 0)
				found = f;
		if (found < 0)
			die("unknown field %s", name);
		r->field_id = (uint32_t)found;
		r->field = g_fields[found];
		free(name);
		k++;
	}
	*out = reqs;
	return k;
}

/* Fills one request the way libsinsp does (field name, arg_key only for key fields, arg_index only
 * for index fields, arg_present). */
static void fill_request(ss_plugin_extract_field *f, const request *r)
{
	memset(f, 0, sizeof *f);
	f->field_id = r->field_id;
	f->field = r->field.name;
	f->ftype = FTYPE_STRING;
	f->flist = (ss_plugin_bool)r->field.is_list;
	f->arg_present = r->arg != NULL;
	f->arg_index = g_falco_042 ? 0 : UINT64_MAX;
	if (r->arg && r->field.is_key)
		f->arg_key = r->arg;
	if (r->arg && r->field.is_index) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(r->arg, &end, 10);
		if (!errno && *end == '\0' && r->arg[0])
			f->arg_index = v;
	}
}

/* One extract_fields call per request (as Falco does), then print every value at the end: values
 * must still be valid after the later calls (one result buffer per field). */
static int extract_event(const plugin_api *api, ss_plugin_t *s, const ss_plugin_event *evt, uint64_t evtnum,
			 const request *reqs, size_t nreqs, FILE *out, uint64_t n)
{
	ss_plugin_event_input in = {.evt = evt, .evtnum = evtnum, .evtsrc = "k8s_audit"};
	ss_plugin_extract_field *f = calloc(nreqs ? nreqs : 1, sizeof *f);
	int *ok = calloc(nreqs ? nreqs : 1, sizeof *ok);
	int failures = 0;
	for (size_t i = 0; i < nreqs; i++) {
		fill_request(&f[i], &reqs[i]);
		ss_plugin_field_extract_input ein = {.num_fields = 1, .fields = &f[i]};
		ok[i] = api->extract_fields(s, &in, &ein) == SS_PLUGIN_SUCCESS;
		if (!ok[i])
			failures++;
	}
	if (out) {
		fprintf(out, "{\"n\":%" PRIu64 ",\"ts\":%" PRIu64 ",\"len\":%u,", n, evt->ts, evt->len);
		if (stamp_events)
			fprintf(out, "\"t\":%.3f,", wall_s());
		fputs("\"values\":[", out);
		for (size_t i = 0; i < nreqs; i++) {
			if (i)
				fputc(',', out);
			if (!ok[i] || f[i].res_len == 0) {
				fputs("null", out);
				continue;
			}
			fputc('[', out);
			for (uint64_t k = 0; k < f[i].res_len; k++) {
				if (k)
					fputc(',', out);
				put_json(out, f[i].res.str[k]);
			}
			fputc(']', out);
		}
		fputs("]}\n", out);
		if (stamp_events)
			fflush(out);
	}
	free(f);
	free(ok);
	return failures;
}

typedef struct {
	const plugin_api *api;
	ss_plugin_t *s;
	volatile int stop;
	uint64_t calls, metrics_seen;
} metrics_thread_arg;

static void *metrics_thread(void *p)
{
	metrics_thread_arg *a = p;
	while (!a->stop) {
		uint32_t n = 0;
		ss_plugin_metric *m = a->api->get_metrics(a->s, &n);
		for (uint32_t i = 0; i < n; i++)
			if (m[i].name && m[i].name[0])
				a->metrics_seen++;
		__atomic_add_fetch(&a->calls, 1, __ATOMIC_RELEASE);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void print_metrics(FILE *out, const plugin_api *api, ss_plugin_t *s)
{
	uint32_t n = 0;
	ss_plugin_metric *m = api->get_metrics ? api->get_metrics(s, &n) : NULL;
	fputs("{", out);
	for (uint32_t i = 0; i < n && m; i++) {
		if (i)
			fputc(',', out);
		put_json(out, m[i].name);
		if (m[i].value_type == METRIC_VALUE_D)
			fprintf(out, ":%.6f", m[i].value.d);
		else
			fprintf(out, ":%" PRIu64, m[i].value.u64);
	}
	fputs("}", out);
}

typedef struct {
	const char *config, *open, *open_file, *requests, *events;
	long max_events, rounds, kill_after, kill_idle_after;
	double max_seconds, reopen_after;
	int metrics_thread, progress, flush;
} options;

static ss_plugin_t *do_init(const plugin_api *api, const char *config, ss_plugin_rc *rc)
{
	ss_plugin_init_input in = {.config = config ? config : ""};
	if (api->get_init_schema) {
		ss_plugin_schema_type t = SS_PLUGIN_SCHEMA_NONE;
		const char *schema = api->get_init_schema(&t);
		if (!schema)
			die("%s", "get_init_schema returned NULL");
		if (t == SS_PLUGIN_SCHEMA_JSON && !in.config[0])
			in.config = "{}"; /* as Falco does */
	}
	return api->init(&in, rc);
}

static int cmd_run(const plugin_api *api, const options *o)
{
	request *reqs = NULL;
	size_t nreqs = o->requests ? load_requests(o->requests, &reqs) : 0;
	ss_plugin_rc rc;
	ss_plugin_t *s = do_init(api, o->config, &rc);
	if (rc != SS_PLUGIN_SUCCESS) {
		printf("{\"summary\":{\"stage\":\"init\",\"rc\":%d,\"error\":", rc);
		put_json(stdout, s ? api->get_last_error(s) : "no state");
		puts("}}");
		if (s)
			api->destroy(s);
		return 1;
	}
	char *params = o->open_file ? read_params(o->open_file) : NULL;
	catch_signals();
	double opened_t = wall_s(); /* when open was called: a poll-mode origin is this minus shift */
	ss_instance_t *h = api->open(s, params ? params : o->open ? o->open : "", &rc);
	if (rc == SS_PLUGIN_SUCCESS && h) {
		printf("{\"opened\":%d,\"t\":%.6f}\n", rc, opened_t);
		fflush(stdout);
	}
	if (rc != SS_PLUGIN_SUCCESS || !h) {
		free(params);
		printf("{\"summary\":{\"stage\":\"open\",\"rc\":%d,\"error\":", rc);
		put_json(stdout, api->get_last_error(s));
		puts("}}");
		api->destroy(s);
		return 1;
	}
	metrics_thread_arg marg = {.api = api, .s = s};
	pthread_t mt;
	if (o->metrics_thread && api->get_metrics) {
		pthread_create(&mt, NULL, metrics_thread, &marg);
		/* Its first call made before reading starts: on a busy machine a short read could otherwise end
		 * before the thread ran at all, and nothing would have been read concurrently. */
		while (__atomic_load_n(&marg.calls, __ATOMIC_ACQUIRE) == 0) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}

	uint64_t n = 0, timeouts = 0, batches = 0, failures = 0, evtnum = 0;
	double start = now_s(), max_batch = 0;
	ss_plugin_rc last = SS_PLUGIN_SUCCESS;
	int reopened = 0;
	while (o->max_events < 0 || n < (uint64_t)o->max_events) {
		if (g_stop || (o->max_seconds > 0 && now_s() - start > o->max_seconds))
			break;
		if (g_reload && o->open_file) {
			g_reload = 0; /* a rewritten config: close, then open the file's params on the same state */
			api->close(s, h);
			free(params);
			params = read_params(o->open_file);
			double reopened_t = wall_s();
			h = api->open(s, params, &rc);
			printf("{\"reopened\":%d,\"t\":%.6f}\n", rc, reopened_t);
			fflush(stdout);
			if (rc != SS_PLUGIN_SUCCESS || !h) {
				free(params);
				api->destroy(s);
				return 1;
			}
		}
		if (o->reopen_after > 0 && !reopened && now_s() - start > o->reopen_after) {
			reopened = 1; /* hot reload: close, then open the same params on the same state */
			api->close(s, h);
			h = api->open(s, params ? params : o->open ? o->open : "", &rc);
			printf("{\"reopened\":%d}\n", rc);
			fflush(stdout);
			if (rc != SS_PLUGIN_SUCCESS || !h) {
				api->destroy(s);
				return 1;
			}
		}
		uint32_t nevts = 0;
		ss_plugin_event **evts = NULL;
		double t0 = now_s();
		last = api->next_batch(s, h, &nevts, &evts);
		double dt = now_s() - t0;
		if (dt > max_batch)
			max_batch = dt;
		if (last == SS_PLUGIN_TIMEOUT && nevts == 0) {
			timeouts++;
			if (o->kill_idle_after > 0 && n >= (uint64_t)o->kill_idle_after)
				kill(getpid(), SIGKILL); /* a crash while Falco waits for events */
			continue;
		}
		if (last == SS_PLUGIN_FAILURE)
			break;
		if (last == SS_PLUGIN_SUCCESS && nevts == 0) {
			fprintf(stderr, "plughost: SUCCESS with 0 events (Falco treats this as an error)\n");
			last = SS_PLUGIN_FAILURE;
			break;
		}
		batches++;
		if (o->flush) {
			struct timespec wall;
			clock_gettime(CLOCK_REALTIME, &wall);
			printf("{\"batch\":%" PRIu64 ",\"size\":%u,\"t\":%.6f}\n", batches, nevts,
			       wall.tv_sec + wall.tv_nsec / 1e9);
		}
		for (uint32_t i = 0; i < nevts && (o->max_events < 0 || n < (uint64_t)o->max_events); i++) {
			ss_plugin_event *e = evts[i];
			if (e->type != PLUGIN_EVENT_TYPE || e->nparams != PLUGIN_EVENT_NPARAMS)
				die("%s", "malformed plugin event");
			/* Falco writes into the event: plugin id, tid, and ts when unset. */
			uint32_t id = 9;
			memcpy((uint8_t *)e + PLUGIN_EVENT_PAYLOAD_OFFSET - 4, &id, sizeof id);
			e->tid = UINT64_MAX;
			failures += (uint64_t)extract_event(api, s, e, ++evtnum, reqs, nreqs, stdout, n);
			n++;
			if (o->kill_after > 0 || o->kill_idle_after > 0 || o->flush)
				fflush(stdout); /* what was processed must be visible after the kill */
			if (o->kill_after > 0 && n == (uint64_t)o->kill_after)
				kill(getpid(), SIGKILL); /* a crash in the middle of a batch */
		}
		if (o->progress && api->get_progress) {
			uint32_t pct = 0;
			const char *txt = api->get_progress(s, h, &pct);
			fprintf(stderr, "progress %u %s\n", pct, txt ? txt : "(null)");
		}
		if (last == SS_PLUGIN_EOF)
			break;
	}
	if (o->metrics_thread && api->get_metrics) {
		marg.stop = 1;
		pthread_join(mt, NULL);
	}
	const char *err = last == SS_PLUGIN_FAILURE ? api->get_last_error(s) : "";
	printf("{\"summary\":{\"stage\":\"read\",\"events\":%" PRIu64 ",\"timeouts\":%" PRIu64
	       ",\"batches\":%" PRIu64 ",\"rc\":%d,\"extract_failures\":%" PRIu64
	       ",\"max_batch_ms\":%.1f,\"seconds\":%.3f,\"metrics_calls\":%" PRIu64 ",\"error\":",
	       n, timeouts, batches, last, failures, max_batch * 1000, now_s() - start, marg.calls);
	put_json(stdout, err ? err : "(null)");
	fputs(",\"metrics\":", stdout);
	print_metrics(stdout, api, s);
	puts("}}");
	fflush(stdout);
	api->close(s, h);
	api->destroy(s);
	free(params);
	return last == SS_PLUGIN_FAILURE ? 1 : 0;
}

/* Wraps a payload into a plugin event the way libscap stores one (type 322, params 4 + N). */
static ss_plugin_event *wrap(const char *payload, size_t len, uint64_t ts)
{
	ss_plugin_event *e = malloc(PLUGIN_EVENT_PAYLOAD_OFFSET + len);
	e->ts = ts;
	e->tid = UINT64_MAX;
	e->len = (uint32_t)(PLUGIN_EVENT_PAYLOAD_OFFSET + len);
	e->type = PLUGIN_EVENT_TYPE;
	e->nparams = PLUGIN_EVENT_NPARAMS;
	uint32_t params[3] = {4, (uint32_t)len, 9};
	memcpy((uint8_t *)e + sizeof *e, params, sizeof params);
	memcpy((uint8_t *)e + PLUGIN_EVENT_PAYLOAD_OFFSET, payload, len);
	return e;
}

static int cmd_extract(const plugin_api *api, const options *o)
{
	if (!o->events || !o->requests)
		die("%s", "extract needs --events and --requests");
	request *reqs;
	size_t nreqs = load_requests(o->requests, &reqs);
	char **lines;
	size_t n = split_lines(read_file(o->events), &lines);
	ss_plugin_rc rc;
	ss_plugin_t *s = do_init(api, o->config, &rc);
	if (rc != SS_PLUGIN_SUCCESS)
		die("init failed: %s", s ? api->get_last_error(s) : "no state");
	uint64_t failures = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!lines[i][0])
			continue;
		ss_plugin_event *e = wrap(lines[i], strlen(lines[i]), 1000 + i);
		failures += (uint64_t)extract_event(api, s, e, i + 1, reqs, nreqs, stdout, k++);
		free(e);
	}
	printf("{\"summary\":{\"events\":%" PRIu64 ",\"extract_failures\":%" PRIu64 "}}\n", k, failures);
	api->destroy(s);
	return 0;
}

static int cmd_bench(const plugin_api *api, const options *o)
{
	if (!o->events || !o->requests)
		die("%s", "bench needs --events and --requests");
	request *reqs;
	size_t nreqs = load_requests(o->requests, &reqs);
	char **lines;
	size_t n = split_lines(read_file(o->events), &lines);
	ss_plugin_event **evts = calloc(n ? n : 1, sizeof *evts);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (lines[i][0])
			evts[k++] = wrap(lines[i], strlen(lines[i]), 1000 + i);
	ss_plugin_rc rc;
	ss_plugin_t *s = do_init(api, o->config, &rc);
	if (rc != SS_PLUGIN_SUCCESS)
		die("init failed: %s", s ? api->get_last_error(s) : "no state");
	long rounds = o->rounds > 0 ? o->rounds : 1;
	uint64_t evtnum = 0, failures = 0;
	double start = now_s();
	for (long r = 0; r < rounds; r++)
		for (size_t i = 0; i < k; i++)
			failures += (uint64_t)extract_event(api, s, evts[i], ++evtnum, reqs, nreqs, NULL, 0);
	double secs = now_s() - start;
	printf("{\"events\":%" PRIu64 ",\"requests_per_event\":%zu,\"extractions\":%" PRIu64
	       ",\"seconds\":%.3f,\"events_per_s\":%.0f,\"extractions_per_s\":%.0f,\"failures\":%" PRIu64 "}\n",
	       evtnum, nreqs, evtnum * nreqs, secs, (double)evtnum / secs, (double)(evtnum * nreqs) / secs, failures);
	api->destroy(s);
	for (size_t i = 0; i < k; i++)
		free(evts[i]);
	free(evts);
	return 0;
}

static int cmd_tostring(const plugin_api *api, const options *o)
{
	char **lines;
	size_t n = split_lines(read_file(o->events), &lines);
	ss_plugin_rc rc;
	ss_plugin_t *s = do_init(api, o->config, &rc);
	if (rc != SS_PLUGIN_SUCCESS)
		die("init failed: %s", s ? api->get_last_error(s) : "no state");
	for (size_t i = 0; i < n; i++) {
		ss_plugin_event *e = wrap(lines[i], strlen(lines[i]), 1);
		ss_plugin_event_input in = {.evt = e, .evtnum = i + 1, .evtsrc = "k8s_audit"};
		const char *str = api->event_to_string(s, &in);
		put_json(stdout, str ? str : "(NULL)");
		fputc('\n', stdout);
		free(e);
	}
	api->destroy(s);
	return 0;
}

static int cmd_init(const plugin_api *api, const options *o, int and_open)
{
	ss_plugin_rc rc;
	ss_plugin_t *s = do_init(api, o->config, &rc);
	const char *stage = "init";
	if (rc == SS_PLUGIN_SUCCESS && and_open) {
		stage = "open";
		ss_instance_t *h = api->open(s, o->open ? o->open : "", &rc);
		if (h && rc == SS_PLUGIN_SUCCESS)
			api->close(s, h);
	}
	const char *err = s ? api->get_last_error(s) : NULL;
	printf("{\"stage\":\"%s\",\"rc\":%d,\"state\":%s,\"error\":", stage, rc, s ? "true" : "false");
	put_json(stdout, err ? err : "(NULL)");
	puts("}");
	if (s)
		api->destroy(s);
	return rc == SS_PLUGIN_SUCCESS ? 0 : 1;
}

/* Reads up to max events from a fresh open of s; returns how many arrived (or -1). */
static long read_some(const plugin_api *api, ss_plugin_t *s, const options *o, long max, request *reqs,
		      size_t nreqs)
{
	ss_plugin_rc rc;
	ss_instance_t *h = api->open(s, o->open ? o->open : "", &rc);
	if (!h || rc != SS_PLUGIN_SUCCESS)
		return -1;
	long n = 0;
	double start = now_s();
	while (n < max && now_s() - start < 30) {
		uint32_t nevts = 0;
		ss_plugin_event **evts;
		rc = api->next_batch(s, h, &nevts, &evts);
		for (uint32_t i = 0; i < nevts && n < max; i++, n++)
			extract_event(api, s, evts[i], (uint64_t)n + 1, reqs, nreqs, NULL, 0);
		if (rc == SS_PLUGIN_EOF || rc == SS_PLUGIN_FAILURE)
			break;
	}
	api->close(s, h);
	return n;
}

static void step(const char *name, int ok, long detail)
{
	printf("{\"step\":\"%s\",\"ok\":%s,\"detail\":%ld}\n", name, ok ? "true" : "false", detail);
	fflush(stdout);
}

static int cmd_lifecycle(plugin_api *api, const char *path, const options *o)
{
	request *reqs = NULL;
	size_t nreqs = o->requests ? load_requests(o->requests, &reqs) : 0;
	ss_plugin_rc rc1, rc2;
	/* Two live states (Falco: offline inspector + live inspector, or a hot-reload dry run). */
	ss_plugin_t *a = do_init(api, o->config, &rc1);
	ss_plugin_t *b = do_init(api, o->config, &rc2);
	step("init_two_states", rc1 == SS_PLUGIN_SUCCESS && rc2 == SS_PLUGIN_SUCCESS && a && b && a != b, 0);
	api->destroy(a);
	long n = read_some(api, b, o, 5, reqs, nreqs);
	step("use_second_after_destroying_first", n > 0, n);
	api->destroy(b);
	/* init → destroy → init again in the same process */
	ss_plugin_t *c = do_init(api, o->config, &rc1);
	n = read_some(api, c, o, 5, reqs, nreqs);
	step("reinit_after_destroy", rc1 == SS_PLUGIN_SUCCESS && n > 0, n);
	/* close then open again on the same state (hot reload keeps the state) */
	n = read_some(api, c, o, 3, reqs, nreqs);
	step("reopen_same_state", n > 0, n);
	api->destroy(c);
	/* dlclose + dlopen (Falco's restart) */
	int closed = dlclose(api->handle) == 0;
	load(api, path);
	ss_plugin_t *d = do_init(api, o->config, &rc1);
	n = read_some(api, d, o, 5, reqs, nreqs);
	step("dlclose_dlopen_init", closed && rc1 == SS_PLUGIN_SUCCESS && n > 0, n);
	api->destroy(d);
	return 0;
}

static int cmd_info(const plugin_api *api)
{
	ss_plugin_schema_type t = SS_PLUGIN_SCHEMA_NONE;
	printf("{\"required_api_version\":");
	put_json(stdout, api->get_required_api_version());
	printf(",\"name\":");
	put_json(stdout, api->get_name());
	printf(",\"version\":");
	put_json(stdout, api->get_version());
	printf(",\"description\":");
	put_json(stdout, api->get_description());
	printf(",\"contact\":");
	put_json(stdout, api->get_contact());
	printf(",\"id\":%u,\"event_source\":", api->get_id());
	put_json(stdout, api->get_event_source());
	const char *schema = api->get_init_schema ? api->get_init_schema(&t) : "";
	printf(",\"schema_type\":%d,\"init_schema\":%s", t, schema && schema[0] ? schema : "null");
	ss_plugin_rc rc = SS_PLUGIN_FAILURE;
	const char *params = api->list_open_params ? api->list_open_params(NULL, &rc) : "";
	printf(",\"open_params_rc\":%d,\"open_params\":%s", rc, params && params[0] ? params : "null");
	printf(",\"fields\":%s}\n", api->get_fields());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("%s", "usage: plughost LIBRARY COMMAND [options] (see the header of plughost.c)");
	const char *path = argv[1], *cmd = argv[2];
	options o = {.max_events = -1};
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--metrics-thread"))
			o.metrics_thread = 1;
		else if (!strcmp(a, "--progress"))
			o.progress = 1;
		else if (!strcmp(a, "--flush"))
			o.flush = 1;
		else if (!strcmp(a, "--falco-0.42"))
			g_falco_042 = 1;
		else if (!v)
			die("missing value for %s", a);
		else if (!strcmp(a, "--config"))
			o.config = argv[++i];
		else if (!strcmp(a, "--open"))
			o.open = argv[++i];
		else if (!strcmp(a, "--open-file"))
			o.open_file = argv[++i];
		else if (!strcmp(a, "--requests"))
			o.requests = argv[++i];
		else if (!strcmp(a, "--events"))
			o.events = argv[++i];
		else if (!strcmp(a, "--max-events"))
			o.max_events = atol(argv[++i]);
		else if (!strcmp(a, "--kill-after"))
			o.kill_after = atol(argv[++i]);
		else if (!strcmp(a, "--kill-when-idle-after"))
			o.kill_idle_after = atol(argv[++i]);
		else if (!strcmp(a, "--rounds"))
			o.rounds = atol(argv[++i]);
		else if (!strcmp(a, "--stamp"))
			stamp_events = 1;
		else if (!strcmp(a, "--reopen-after"))
			o.reopen_after = atof(argv[++i]);
		else if (!strcmp(a, "--max-seconds"))
			o.max_seconds = atof(argv[++i]);
		else
			die("unknown option %s", a);
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	plugin_api api;
	load(&api, path);
	int rc;
	if (!strcmp(cmd, "info"))
		rc = cmd_info(&api);
	else if (!strcmp(cmd, "run"))
		rc = cmd_run(&api, &o);
	else if (!strcmp(cmd, "extract"))
		rc = cmd_extract(&api, &o);
	else if (!strcmp(cmd, "init"))
		rc = cmd_init(&api, &o, 0);
	else if (!strcmp(cmd, "open"))
		rc = cmd_init(&api, &o, 1);
	else if (!strcmp(cmd, "lifecycle"))
		rc = cmd_lifecycle(&api, path, &o);
	else if (!strcmp(cmd, "bench"))
		rc = cmd_bench(&api, &o);
	else if (!strcmp(cmd, "tostring"))
		rc = cmd_tostring(&api, &o);
	else
		die("unknown command %s", cmd);
	fflush(stdout);
	return rc;
}
