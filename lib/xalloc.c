#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orch.h"
#include "xalloc.h"

const char *orch_progname = "orch";

void xalloc_die(void)
{
	fprintf(stderr, "%s: out of memory\n", orch_progname);
	exit(ORCH_EX_SOFTWARE);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		xalloc_die();
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (!p)
		xalloc_die();
	return p;
}

void *xreallocarray(void *p, size_t count, size_t size)
{
	void *q;

	if (size && count > SIZE_MAX / size)
		xalloc_die();
	q = realloc(p, count && size ? count * size : 1);
	if (!q)
		xalloc_die();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		xalloc_die();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		xalloc_die();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		xalloc_die();
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

json_t *xjson_check(json_t *v, const char *file, int line)
{
	if (!v) {
		fprintf(stderr, "%s: out of memory (json at %s:%d)\n",
			orch_progname, file, line);
		exit(ORCH_EX_SOFTWARE);
	}
	return v;
}

void xjson_set(json_t *obj, const char *key, json_t *value)
{
	if (!value || json_object_set_new(obj, key, value) != 0)
		xalloc_die();
}

void xjson_append(json_t *arr, json_t *value)
{
	if (!value || json_array_append_new(arr, value) != 0)
		xalloc_die();
}
