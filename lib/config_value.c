/*
 * The kinds of setting that came after numbers, commands and lists:
 * decimals, text, URLs and NAME=N maps, checked and read (config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

/* ERR (65): "KEY = 'VALUE' (ORIGIN): " and the message. Returns -1. */
static int bad_value(const struct config *c, const char *key, const char *value,
		     struct orch_error *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int bad_value(const struct config *c, const char *key, const char *value,
		     struct orch_error *err, const char *fmt, ...)
{
	const char *origin = config_origin(c, key);
	char *shown = xstrdup(value), *msg, *p;
	va_list ap;

	for (p = shown; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (origin)
		orch_error_set(err, ORCH_EX_DATAERR, "%s = '%s' (%s): %s", key, shown, origin, msg);
	else
		orch_error_set(err, ORCH_EX_DATAERR, "%s = '%s': %s", key, shown, msg);
	free(msg);
	free(shown);
	return -1;
}

/* V as a decimal number: digits with an optional sign and fraction. */
static int parse_decimal(const char *v, double *out)
{
	const char *p = v;
	char *end;

	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.' && !isdigit((unsigned char)*++p))
		return -1;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p)
		return -1;
	*out = strtod(v, &end);
	return *end ? -1 : 0;
}

/*
 * The item NAME=N of map K in ITEM: 0 with *NAME (new) and *N, or -1 with
 * ERR naming the item.
 */
static int map_item(const struct config *c, const struct config_known *k,
		    const char *value, const char *item, size_t index, char **name,
		    int64_t *n, struct orch_error *err)
{
	const char *eq = strchr(item, '=');
	const char *num;
	char *end;
	long long v;

	if (eq) {
		num = eq + 1;
		while (isspace((unsigned char)*num))
			num++;
		errno = 0;
		v = strtoll(num, &end, 10);
		if (eq > item && isdigit((unsigned char)*num) && !*end && errno != ERANGE &&
		    v >= k->min && v <= k->max) {
			*name = xstrndup(item, (size_t)(eq - item));
			while (**name && isspace((unsigned char)(*name)[strlen(*name) - 1]))
				(*name)[strlen(*name) - 1] = '\0';
			*n = v;
			return 0;
		}
	}
	return bad_value(c, k->key, value, err,
			 "item %zu: expected NAME=N with N from %lld to %lld", index,
			 (long long)k->min, (long long)k->max);
}

int config_check_value(const struct config *c, const struct config_known *k,
		       const char *value, struct orch_error *err)
{
	char **items, *name;
	size_t count, i;
	int64_t n;
	double d;
	int rc = 0;

	switch (k->kind) {
	case CONFIG_DECIMAL:
		if (parse_decimal(value, &d) != 0 || d < (double)k->min || d > (double)k->max)
			return bad_value(c, k->key, value, err, "expected a number from %lld to %lld",
					 (long long)k->min, (long long)k->max);
		return 0;
	case CONFIG_TEXT:
		if (strlen(value) < (size_t)k->min)
			return bad_value(c, k->key, value, err, "must not be empty");
		return 0;
	case CONFIG_URL:
		if ((strncmp(value, "http://", 7) != 0 || !value[7]) &&
		    (strncmp(value, "https://", 8) != 0 || !value[8]))
			return bad_value(c, k->key, value, err,
					 "expected an http:// or https:// URL");
		return 0;
	case CONFIG_MAP:
		if (!(items = config_items(c, k->key, value, &count, err)))
			return -1;
		for (i = 0; i < count && rc == 0; i++) {
			if ((rc = map_item(c, k, value, items[i], i + 1, &name, &n, err)) == 0)
				free(name);
		}
		words_free(items);
		return rc;
	default:
		return orch_error_set(err, ORCH_EX_SOFTWARE, "%s: not a kind of value", k->key);
	}
}

/* The known KEY of the kind KIND, or NULL with ERR (70). */
static const struct config_known *known_of(const char *key, enum config_kind kind,
					   struct orch_error *err)
{
	const struct config_known *k = config_known_find(key);

	if (!k || k->kind != kind) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "'%s' is not a known setting of its kind",
			       key);
		return NULL;
	}
	return k;
}

int config_decimal(const struct config *c, const char *key, double *out,
		   struct orch_error *err)
{
	const struct config_known *k = known_of(key, CONFIG_DECIMAL, err);
	const char *v = config_get(c, key);

	if (!k)
		return -1;
	if (v && config_check_value(c, k, v, err) != 0)
		return -1;
	return parse_decimal(v ? v : k->def, out) == 0 ? 0
		: orch_error_set(err, ORCH_EX_SOFTWARE, "%s: a bad default", key);
}

const char *config_text(const struct config *c, const char *key)
{
	const struct config_known *k = config_known_find(key);
	const char *v = config_get(c, key);

	return v ? v : k ? k->def : NULL;
}

int config_map_number(const struct config *c, const char *key, const char *name,
		      int64_t *out, struct orch_error *err)
{
	const struct config_known *k = known_of(key, CONFIG_MAP, err);
	const char *v = config_get(c, key);
	char **items, *item_name;
	size_t count, i;
	int64_t n;
	int rc = 0;

	if (!k)
		return -1;
	if (!v)
		v = k->def;
	if (!(items = config_items(c, key, v, &count, err)))
		return -1;
	/* Every item is checked, as config_check() does, not only up to NAME. */
	for (i = 0; i < count; i++) {
		if (map_item(c, k, v, items[i], i + 1, &item_name, &n, err) != 0) {
			rc = -1;
			break;
		}
		if (strcmp(item_name, name) == 0) {
			*out = n;
			rc = 1;
		}
		free(item_name);
	}
	words_free(items);
	return rc;
}
