/* A small strict-enough JSON walker for the get_fields array: names, types, list and arg flags. */
#include "minijson.h"

#include <stdlib.h>
#include <string.h>

static const char *ws(const char *p)
{
	while (p && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* p at '"'. Copies the decoded string (\uXXXX kept as '?') and returns the position after it. */
static const char *str(const char *p, char *out, size_t outlen)
{
	size_t n = 0;
	if (*p != '"')
		return NULL;
	for (p++; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				for (int i = 0; i < 4; i++)
					if (!*++p)
						return NULL;
				c = '?';
				break;
			case '\0': return NULL;
			default: c = *p;
			}
		}
		if (out && n + 1 < outlen)
			out[n++] = c;
	}
	if (out && outlen)
		out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

static const char *skip(const char *p)
{
	p = ws(p);
	if (!p || !*p)
		return NULL;
	if (*p == '"')
		return str(p, NULL, 0);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = ws(p + 1);
		if (p && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = str(ws(p), NULL, 0);
				p = ws(p);
				if (!p || *p != ':')
					return NULL;
				p++;
			}
			p = ws(skip(p));
			if (!p)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p++;
		}
	}
	const char *start = p;
	while (*p && strchr("abcdefghijklmnopqrstuvwxyz0123456789.+-E", *p))
		p++;
	return p == start ? NULL : p;
}

static const char *boolean(const char *p, int *out)
{
	p = ws(p);
	if (strncmp(p, "true", 4) == 0) {
		*out = 1;
		return p + 4;
	}
	if (strncmp(p, "false", 5) == 0) {
		*out = 0;
		return p + 5;
	}
	return NULL;
}

/* Walks one object; for each key calls back into the field being filled. */
static const char *object(const char *p, host_field *f, int in_arg)
{
	char key[64];
	p = ws(p);
	if (!p || *p != '{')
		return NULL;
	p = ws(p + 1);
	if (*p == '}')
		return p + 1;
	for (;;) {
		p = str(ws(p), key, sizeof key);
		p = ws(p);
		if (!p || *p != ':')
			return NULL;
		p = ws(p + 1);
		if (!in_arg && strcmp(key, "name") == 0)
			p = str(p, f->name, sizeof f->name);
		else if (!in_arg && strcmp(key, "type") == 0)
			p = str(p, f->type, sizeof f->type);
		else if (!in_arg && strcmp(key, "isList") == 0)
			p = boolean(p, &f->is_list);
		else if (!in_arg && strcmp(key, "arg") == 0)
			p = object(p, f, 1);
		else if (in_arg && strcmp(key, "isIndex") == 0)
			p = boolean(p, &f->is_index);
		else if (in_arg && strcmp(key, "isKey") == 0)
			p = boolean(p, &f->is_key);
		else if (in_arg && strcmp(key, "isRequired") == 0)
			p = boolean(p, &f->is_required);
		else
			p = skip(p);
		p = ws(p);
		if (!p)
			return NULL;
		if (*p == '}')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

int minijson_fields(const char *json, host_field **out)
{
	size_t cap = 16, n = 0;
	host_field *fields = calloc(cap, sizeof *fields);
	const char *p = ws(json);
	if (!fields || !p || *p != '[')
		goto bad;
	p = ws(p + 1);
	if (*p == ']') {
		*out = fields;
		return 0;
	}
	for (;;) {
		if (n == cap) {
			host_field *g = realloc(fields, 2 * cap * sizeof *g);
			if (!g)
				goto bad;
			memset(g + cap, 0, cap * sizeof *g);
			fields = g;
			cap *= 2;
		}
		p = ws(object(p, &fields[n], 0));
		if (!p)
			goto bad;
		n++;
		if (*p == ']')
			break;
		if (*p != ',')
			goto bad;
		p++;
	}
	*out = fields;
	return (int)n;
bad:
	free(fields);
	return -1;
}
