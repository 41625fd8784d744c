/*
 * xalloc.h - allocation that cannot fail: on exhaustion these print
 * "PROGRAM: out of memory" and exit 70. The one place lib/ exits, because
 * no caller could do anything better.
 */
#ifndef ORCH_XALLOC_H
#define ORCH_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

/* The name errors are reported under; cmd/ sets it first thing in main. */
extern const char *orch_progname;

/* Say "out of memory" and exit 70: what every x-wrapper does on failure,
 * for an allocation made by a library (libpq) that only returns NULL. */
void xalloc_die(void);

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
/* realloc of COUNT * SIZE bytes, failing on overflow. */
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Check that jansson handed back a value; exits like xmalloc otherwise. */
#define xjson(v) xjson_check((v), __FILE__, __LINE__)
#include <jansson.h>
json_t *xjson_check(json_t *v, const char *file, int line);
/* json_object_set_new / json_array_append_new that exit on failure. */
void xjson_set(json_t *obj, const char *key, json_t *value_stolen);
void xjson_append(json_t *arr, json_t *value_stolen);

#endif
