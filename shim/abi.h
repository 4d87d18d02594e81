/* Our own declarations of the Falco plugin API 3.0.0 subset this plugin uses (layouts: LP64).
 * Only the 3.0 prefix of every input struct is declared: Falco 0.35 passes nothing longer. */
#ifndef K8SAUDIT_ABI_H
#define K8SAUDIT_ABI_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	SS_PLUGIN_SUCCESS = 0,
	SS_PLUGIN_FAILURE = 1,
	SS_PLUGIN_TIMEOUT = -1,
	SS_PLUGIN_EOF = 2,
	SS_PLUGIN_NOT_SUPPORTED = 3,
} ss_plugin_rc;

typedef enum {
	SS_PLUGIN_SCHEMA_NONE = 0,
	SS_PLUGIN_SCHEMA_JSON = 1,
} ss_plugin_schema_type;

enum { FTYPE_UINT64 = 8, FTYPE_STRING = 9 };
enum { METRIC_TYPE_MONOTONIC = 0, METRIC_TYPE_NON_MONOTONIC = 1 };
enum { METRIC_VALUE_U64 = 2, METRIC_VALUE_D = 4 };

typedef uint32_t ss_plugin_bool;
typedef void ss_plugin_t;
typedef void ss_instance_t;
typedef void ss_plugin_owner_t;
typedef const char *(*ss_owner_last_error_fn)(ss_plugin_owner_t *o);

#define PLUGIN_EVENT_TYPE 322
#define PLUGIN_EVENT_NPARAMS 2
/* header (26) + two 4-byte param lengths + 4-byte plugin id */
#define PLUGIN_EVENT_PAYLOAD_OFFSET 38

#pragma pack(push, 1)
typedef struct {
	uint64_t ts;
	uint64_t tid;
	uint32_t len;
	uint16_t type;
	uint32_t nparams;
} ss_plugin_event;
#pragma pack(pop)

typedef struct {
	const ss_plugin_event *evt;
	uint64_t evtnum;
	const char *evtsrc;
} ss_plugin_event_input;

typedef struct {
	const char *config;
	ss_plugin_owner_t *owner;
	ss_owner_last_error_fn get_owner_last_error;
	const void *tables;
	/* log_fn (3.3+) deliberately not declared: Falco 0.35-0.37 pass 32 bytes. */
} ss_plugin_init_input;

typedef struct {
	uint32_t len;
	const void *ptr;
} ss_plugin_byte_buffer;

typedef struct {
	union {
		const char **str;
		uint64_t *u64;
		uint32_t *u32;
		ss_plugin_bool *boolean;
		ss_plugin_byte_buffer *buf;
	} res;
	uint64_t res_len;
	uint32_t field_id;
	const char *field;
	const char *arg_key;
	uint64_t arg_index;
	ss_plugin_bool arg_present;
	uint32_t ftype;
	ss_plugin_bool flist;
} ss_plugin_extract_field;

typedef struct {
	ss_plugin_owner_t *owner;
	ss_owner_last_error_fn get_owner_last_error;
	uint32_t num_fields;
	ss_plugin_extract_field *fields;
	void *table_reader[4]; /* embedded vtable, unused */
	/* table_reader_ext (3.1+) and value_offsets (3.11+) deliberately not declared. */
} ss_plugin_field_extract_input;

typedef union {
	uint32_t u32;
	int32_t s32;
	uint64_t u64;
	int64_t s64;
	double d;
	float f;
	int i;
} ss_plugin_metric_value;

typedef struct {
	const char *name;
	uint32_t type;
	ss_plugin_metric_value value;
	uint32_t value_type;
} ss_plugin_metric;

/* Layout checks against the ABI fact sheet (section 3). */
_Static_assert(sizeof(ss_plugin_event) == 26, "event header is 26 packed bytes");
_Static_assert(sizeof(ss_plugin_event_input) == 24, "event_input is 24 bytes");
_Static_assert(sizeof(ss_plugin_init_input) == 32, "init_input 3.0 prefix is 32 bytes");
_Static_assert(sizeof(ss_plugin_extract_field) == 64, "extract_field is 64 bytes");
_Static_assert(offsetof(ss_plugin_extract_field, arg_present) == 48, "arg_present at 48");
_Static_assert(sizeof(ss_plugin_field_extract_input) == 64, "extract_input 3.0 prefix is 64 bytes");
_Static_assert(sizeof(ss_plugin_metric) == 32, "metric is 32 bytes");
_Static_assert(offsetof(ss_plugin_metric, value_type) == 24, "metric value_type at 24");

#endif
