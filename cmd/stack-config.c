/*
 * orch-stack config: every setting orch reads, its value and its origin.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "escape.h"
#include "jsonio.h"
#include "orch.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

/* The widest VALUE column config prints: with the longest key and
 * "default", a row fits 80 columns. */
#define CONFIG_VALUE_COLUMN 32

/* One setting as config prints it. All borrowed. */
struct shown {
	const char *key;
	const char *value;
	const char *origin;
	int known;
};

/* Check a known key's value as its reader would; warn and return -1 if bad. */
static int check_setting(const struct config *c, const struct config_known *k)
{
	struct orch_error err = ORCH_ERROR_INIT;

	if (config_check(c, k, &err) == 0)
		return 0;
	cli_warn("%s", err.msg);
	orch_error_release(&err);
	return -1;
}

/* Write the first piece of *REST wrapped to WIDTH; move *REST past it.
 * Returns the columns written. */
static int put_piece(const char **rest, int width)
{
	size_t len = strlen(*rest), next;
	size_t piece = term_wrap(*rest, len, width, &next);
	int cols = escape_term(stdout, *rest, piece, INT_MAX, 0);

	*rest += next;
	return cols;
}

static void config_table(const struct shown *rows, size_t n)
{
	int keyw = 3, valw = 5, w;
	const char *rest;
	size_t i;

	/* Values are never cut: one wider than CONFIG_VALUE_COLUMN is
	 * wrapped onto lines of its own in the VALUE column. */
	for (i = 0; i < n; i++) {
		if ((w = term_columns(rows[i].key)) > keyw)
			keyw = w;
		if ((w = escape_term(NULL, rows[i].value, strlen(rows[i].value),
				     CONFIG_VALUE_COLUMN, 0)) > valw)
			valw = w;
	}
	printf("%-*s  %-*s  %s\n", keyw, "KEY", valw, "VALUE", "ORIGIN");
	for (i = 0; i < n; i++) {
		term_cut(stdout, rows[i].key, keyw, 1);
		fputs("  ", stdout);
		rest = rows[i].value;
		w = put_piece(&rest, valw);
		printf("%*s  ", valw - w, "");
		term_cut(stdout, rows[i].origin, term_columns(rows[i].origin), 0);
		puts(rows[i].known ? "" : " (unknown key)");
		while (*rest) {
			printf("%*s  ", keyw, "");
			put_piece(&rest, valw);
			putchar('\n');
		}
	}
}

int stack_config(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config c = CONFIG_INIT;
	struct shown *rows;
	size_t i, n = 0;
	int status = 0;

	(void)s;
	if (config_load(&c, o->config, &err) != 0)
		cli_die_error(&err);
	rows = xreallocarray(NULL, config_known_count + c.n, sizeof(*rows));
	for (i = 0; i < config_known_count; i++) {
		const char *v = config_get(&c, config_known[i].key);

		rows[n].key = config_known[i].key;
		rows[n].value = v ? v : config_known[i].def;
		rows[n].origin = v ? config_origin(&c, config_known[i].key) : "default";
		rows[n++].known = 1;
		if (check_setting(&c, &config_known[i]) != 0)
			status = ORCH_EX_DATAERR;
	}
	for (i = 0; i < c.n; i++) {
		if (config_known_find(c.entries[i].key))
			continue;
		cli_warn("%s: unknown key '%s'", c.entries[i].origin, c.entries[i].key);
		rows[n].key = c.entries[i].key;
		rows[n].value = c.entries[i].value;
		rows[n].origin = c.entries[i].origin;
		rows[n++].known = 0;
	}
	if (!o->json)
		config_table(rows, n);
	for (i = 0; o->json && i < n; i++) {
		json_t *v = xjson(json_pack("{sssssssb}", "key", rows[i].key,
					    "value", rows[i].value, "origin", rows[i].origin,
					    "known", rows[i].known));

		json_write(stdout, v, 0);
		json_decref(v);
	}
	free(rows);
	config_release(&c);
	return status;
}
