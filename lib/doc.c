#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "escape.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

int doc_check_type(const json_t *doc, const char *type, struct orch_error *err)
{
	const json_t *t, *v;

	if (!json_is_object(doc))
		return orch_error_set(err, ORCH_EX_DATAERR, "expected a JSON object");
	t = json_object_get(doc, "type");
	if (!json_is_string(t))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "expected an %s document, got no 'type'", type);
	if (strcmp(json_string_value(t), type) != 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "expected an %s document, got '%s'", type,
				      json_string_value(t));
	v = json_object_get(doc, "version");
	if (!json_is_integer(v))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "%s document has no integer 'version'", type);
	if (json_integer_value(v) != 1)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "unsupported %s version %lld", type,
				      (long long)json_integer_value(v));
	return 0;
}

static const json_t *member(const json_t *obj, const char *key)
{
	return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

int doc_int(const json_t *obj, const char *key, int64_t min, int64_t max,
	    int64_t *out, struct orch_error *err)
{
	const json_t *v = member(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must be an integer from %lld to %lld",
				      key, (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

int doc_string(const json_t *obj, const char *key, const char **out,
	       struct orch_error *err)
{
	const json_t *v = member(obj, key);

	if (!json_is_string(v))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int doc_bool(const json_t *obj, const char *key, int *out, struct orch_error *err)
{
	const json_t *v = member(obj, key);

	if (!json_is_boolean(v))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int doc_object(const json_t *obj, const char *key, json_t **out,
	       struct orch_error *err)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (!json_is_object(v))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must be an object", key);
	*out = v;
	return 0;
}

int doc_array(const json_t *obj, const char *key, json_t **out,
	      struct orch_error *err)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (!json_is_array(v))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must be an array", key);
	*out = v;
	return 0;
}

int doc_opt_int(const json_t *obj, const char *key, int64_t min, int64_t max,
		int64_t def, int64_t *out, struct orch_error *err)
{
	const json_t *v = member(obj, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	return doc_int(obj, key, min, max, out, err);
}

int doc_opt_string(const json_t *obj, const char *key, const char *def,
		   const char **out, struct orch_error *err)
{
	const json_t *v = member(obj, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	return doc_string(obj, key, out, err);
}

int doc_set_text(json_t *obj, const char *key, const char *s, const char *what,
		 struct orch_error *err)
{
	json_t *v = s ? json_string(s) : json_null();

	if (!v)
		return orch_error_set(err, ORCH_EX_DATAERR, "%s of %s is not valid UTF-8",
				      key, what);
	xjson_set(obj, key, v);
	return 0;
}

void doc_set_bytes(json_t *obj, const char *key, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *text, *q;
	size_t i;
	int n;

	if (!s) {
		xjson_set(obj, key, json_null());
		return;
	}
	/* Each byte becomes at most the three of U+FFFD. */
	q = text = xreallocarray(NULL, len + 1, 3);
	for (i = 0; i < len; i += (size_t)n) {
		n = escape_utf8_len(p + i, len - i);
		if (n == 0) {
			memcpy(q, "\xef\xbf\xbd", 3);
			q += 3;
			n = 1;
		} else {
			memcpy(q, p + i, (size_t)n);
			q += n;
		}
	}
	xjson_set(obj, key, xjson(json_stringn(text, (size_t)(q - text))));
	free(text);
}
