/* Reads the plugin's get_fields JSON into a field table (test host only). */
#ifndef PLUGHOST_MINIJSON_H
#define PLUGHOST_MINIJSON_H

#include <stddef.h>

typedef struct {
	char name[128];
	char type[16];
	int is_list, is_index, is_key, is_required;
} host_field;

/* Returns the number of fields parsed, or -1 if the JSON is not an array of field objects. */
int minijson_fields(const char *json, host_field **out);

#endif
