/*
 * orch-stack - administer stacks: how a person drives the store.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "cli.h"
#include "config.h"
#include "graph.h"
#include "jsonio.h"
#include "orch.h"
#include "snapshot.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]";

static const char help_text[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]\n"
	"\n"
	"  init                            create the database\n"
	"  create NAME [--idea TEXT]       a new idle stack\n"
	"  list [--json]                   every stack\n"
	"  names                           every stack's name, one a line\n"
	"  show [--json] STACK             a summary, or the orch.snapshot document\n"
	"  start STACK                     run it from the next cycle on\n"
	"  pause STACK                     stop running it, for now\n"
	"  stop STACK                      stop running it\n"
	"  rm STACK                        delete it and all it holds\n"
	"  say STACK TEXT [--from SENDER]  a user message to the stack\n"
	"  todo add STACK TEXT [--priority 1-5]\n"
	"  todo list STACK [--json]\n"
	"  history STACK [--limit N] [--json]\n"
	"                                  the latest cycles (default 20), newest first\n"
	"  graph STACK [--cycle N]         a cycle's executed graph as Graphviz DOT\n"
	"                                  (default the latest recorded)\n"
	"  usage STACK [--json] [--since MS]\n"
	"                                  tokens per agent and UTC day\n"
	"  config [--config FILE] [--json] every setting, its value and its origin\n"
	"\n"
	"STACK is a name or an id.\n"
	"  --db PATH     the database (default $ORCH_DB, else\n"
	"                ~/.local/share/orch/orch.db)\n"
	"  --now MS      the clock, in ms since the epoch\n"
	"  -h, --help    print this help\n"
	"  --version     print the version\n";

/* The flags that belong to some subcommands only, in flag_names order. */
enum sub_flags {
	F_IDEA = 1 << 0,
	F_FROM = 1 << 1,
	F_PRIORITY = 1 << 2,
	F_JSON = 1 << 3,
	F_LIMIT = 1 << 4,
	F_CYCLE = 1 << 5,
	F_SINCE = 1 << 6,
	F_CONFIG = 1 << 7,
};

static const char *const flag_names[] = {
	"--idea", "--from", "--priority", "--json", "--limit", "--cycle",
	"--since", "--config",
};

#define HISTORY_LIMIT 20
#define WIDTH 80        /* columns every table and summary fits in */
#define LABEL_WIDTH 15  /* the label column of show */

struct opts {
	const char *db;     /* borrowed from argv, or NULL */
	int64_t now;        /* the clock */
	const char *idea;   /* --idea, borrowed */
	const char *from;   /* --from, borrowed */
	int64_t priority;   /* --priority, 0 when not given */
	int json;           /* --json */
	int64_t limit;      /* --limit, HISTORY_LIMIT when not given */
	int64_t cycle;      /* --cycle, 0 when not given */
	int64_t since;      /* --since, 0 when not given */
	const char *config; /* --config, borrowed */
	unsigned given;     /* enum sub_flags: which were given */
	char **args;        /* borrowed: the operands, subcommand first */
	int nargs;          /* operands */
};

static void get_stack(struct store *s, const char *ref, struct stack_row *row)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int rc = store_find_stack(s, ref, row, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no stack '%s'", ref);
}

static int64_t find_stack(struct store *s, const char *ref)
{
	struct stack_row row;
	int64_t id;

	get_stack(s, ref, &row);
	id = row.id;
	stack_row_release(&row);
	return id;
}

static void need_args(const struct opts *o, int n, const char *usage)
{
	if (o->nargs < n)
		cli_usage_error(usage_line, "usage: orch-stack %s", usage);
	if (o->nargs > n)
		cli_usage_error(usage_line, "unexpected argument '%s'", o->args[n]);
}

/* Refuse the subcommand-only flags that SUB does not take. */
static void allow(const struct opts *o, const char *sub, unsigned ok)
{
	size_t i;

	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (o->given & ~ok & (1u << i))
			cli_usage_error(usage_line, "option '%s' does not apply to '%s'",
					flag_names[i], sub);
}

static void check(int rc, struct orch_error *err)
{
	if (rc != 0)
		cli_die_error(err);
}

static sqlite3_stmt *prepare(struct store *s, const char *sql)
{
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = store_prepare(s, sql, &err);

	if (!st)
		cli_die_error(&err);
	return st;
}

static const char *text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

/*
 * Length of the well-formed UTF-8 sequence at S, 0 when S starts an
 * ill-formed one.
 */
static int utf8_len(const unsigned char *s)
{
	int n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/*
 * Walk S by characters, one column each: write the first MAX of them to
 * stdout when PUT, control characters as spaces and ill-formed bytes as
 * '?'. Returns how many characters S has (PUT false) or were written.
 */
static int walk(const char *s, int max, int put)
{
	const unsigned char *p = (const unsigned char *)s;
	int cols = 0, n;

	while (*p && cols < max) {
		n = utf8_len(p);
		if (put) {
			if (n == 0)
				putchar('?');
			else if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] < 0xa0))
				putchar(' ');
			else
				fwrite(p, 1, (size_t)n, stdout);
		}
		p += n ? n : 1;
		cols++;
	}
	return cols;
}

/*
 * Print S in at most WIDTH columns (at least 3), ending in "..." when it is
 * cut; with PAD, fill the rest of WIDTH with spaces.
 */
static void print_cut(const char *s, int width, int pad)
{
	int n;

	if (width < 3)
		width = 3;
	n = walk(s, width + 1, 0);
	if (n <= width) {
		walk(s, n, 1);
	} else {
		walk(s, width - 3, 1);
		fputs("...", stdout);
		n = width;
	}
	if (pad)
		printf("%*s", width - n, "");
}

/* MS as "2026-11-25 01:02:03", UTC, in BUF; the bare number if out of range. */
static const char *utc_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;
	int n;

	if (gmtime_r(&t, &tm) && strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) > 0)
		return buf;
	n = snprintf(buf, size, "%lld", (long long)ms);
	if (n < 0 || (size_t)n >= size)
		cli_die(ORCH_EX_SOFTWARE, "time %lld too long to print", (long long)ms);
	return buf;
}

static void stack_list(struct store *s, const struct opts *o)
{
	sqlite3_stmt *st = prepare(s,
		"SELECT id, name, execution_state, phase, total_cycles, next_run_at, created_at,"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id AND t.status = 'pending'),"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id),"
		" (SELECT count(*) FROM user_messages m WHERE m.stack_id = s.id AND m.processed = 0)"
		" FROM stacks s ORDER BY id");
	int rc;

	if (!o->json)
		printf("%-5s %-20s %-8s %-12s %6s %9s %8s\n", "ID", "NAME", "STATE",
		       "PHASE", "CYCLES", "TODOS", "MESSAGES");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			json_t *v = xjson(json_pack("{sIsssssssIsIsIsIsIsI}",
				"id", (json_int_t)sqlite3_column_int64(st, 0),
				"name", text(st, 1), "execution_state", text(st, 2),
				"phase", text(st, 3),
				"total_cycles", (json_int_t)sqlite3_column_int64(st, 4),
				"next_run_at", (json_int_t)sqlite3_column_int64(st, 5),
				"created_at", (json_int_t)sqlite3_column_int64(st, 6),
				"pending_todos", (json_int_t)sqlite3_column_int64(st, 7),
				"todos", (json_int_t)sqlite3_column_int64(st, 8),
				"unprocessed_messages", (json_int_t)sqlite3_column_int64(st, 9)));
			json_write(stdout, v, 0);
			json_decref(v);
			continue;
		}
		char todos[48];
		int n = snprintf(todos, sizeof(todos), "%lld/%lld",
				 (long long)sqlite3_column_int64(st, 7),
				 (long long)sqlite3_column_int64(st, 8));

		if (n < 0 || (size_t)n >= sizeof(todos))
			cli_die(ORCH_EX_SOFTWARE, "todo count too long");
		printf("%-5lld ", (long long)sqlite3_column_int64(st, 0));
		print_cut(text(st, 1), 20, 1);
		printf(" %-8s ", text(st, 2));
		print_cut(text(st, 3), 12, 1);
		printf(" %6lld %9s %8lld\n", (long long)sqlite3_column_int64(st, 4), todos,
		       (long long)sqlite3_column_int64(st, 9));
	}
	store_finish(s, st);
	if (rc != SQLITE_DONE)
		cli_die(ORCH_EX_SOFTWARE, "listing stacks: %s", sqlite3_errmsg(s->db));
}

static void stack_names(struct store *s)
{
	sqlite3_stmt *st = prepare(s, "SELECT name FROM stacks ORDER BY name");

	while (sqlite3_step(st) == SQLITE_ROW)
		printf("%s\n", text(st, 0));
	store_finish(s, st);
}

static void todo_list(struct store *s, int64_t id, const struct opts *o)
{
	sqlite3_stmt *st = prepare(s, "SELECT id, priority, status, content, created_at,"
				   " completed_at FROM todos WHERE stack_id = ? ORDER BY id");

	sqlite3_bind_int64(st, 1, id);
	if (!o->json)
		printf("%-6s %-3s %-11s %s\n", "ID", "PRI", "STATUS", "CONTENT");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (o->json) {
			json_t *v = xjson(json_pack("{sIsIsssssIso}",
				"id", (json_int_t)sqlite3_column_int64(st, 0),
				"priority", (json_int_t)sqlite3_column_int64(st, 1),
				"status", text(st, 2), "content", text(st, 3),
				"created_at", (json_int_t)sqlite3_column_int64(st, 4),
				"completed_at", sqlite3_column_type(st, 5) == SQLITE_NULL
					? json_null()
					: json_integer(sqlite3_column_int64(st, 5))));
			json_write(stdout, v, 0);
			json_decref(v);
			continue;
		}
		printf("%-6lld %-3lld %-11s ", (long long)sqlite3_column_int64(st, 0),
		       (long long)sqlite3_column_int64(st, 1), text(st, 2));
		print_cut(text(st, 3), 56, 0);
		printf("\n");
	}
	store_finish(s, st);
}

/* One line of show: the label, then the value cut to fit. */
__attribute__((format(printf, 2, 3)))
static void show_line(const char *label, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	v = xvasprintf(fmt, ap);
	va_end(ap);
	printf("%-*s", LABEL_WIDTH, label);
	print_cut(v, WIDTH - LABEL_WIDTH, 0);
	putchar('\n');
	free(v);
}

static int64_t member_int(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static const char *member_text(const json_t *obj, const char *key)
{
	const char *t = json_string_value(json_object_get(obj, key));

	return t ? t : "";
}

/* A time in show, "2026-11-25 01:02:03 UTC", or "never" for 0. */
static const char *show_time(int64_t ms, char *buf, size_t size)
{
	char t[32];
	int n;

	if (ms == 0)
		return "never";
	n = snprintf(buf, size, "%s UTC", utc_time(ms, t, sizeof(t)));
	if (n < 0 || (size_t)n >= size)
		cli_die(ORCH_EX_SOFTWARE, "time %lld too long to print", (long long)ms);
	return buf;
}

static void stack_show(struct store *s, const struct stack_row *row,
		       const struct opts *o)
{
	static const char *const statuses[] = {
		"pending", "in_progress", "completed", "cancelled",
	};
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *snap, *project, *artifact, *todo, *memory;
	int64_t counts[4] = { 0, 0, 0, 0 };
	char when[48];
	size_t i, j;

	if (!(snap = snapshot_load(s, row->id, &err)))
		cli_die_error(&err);
	json_array_foreach(json_object_get(snap, "todos"), i, todo)
		for (j = 0; j < 4; j++)
			if (strcmp(member_text(todo, "status"), statuses[j]) == 0)
				counts[j]++;
	project = json_object_get(snap, "project");
	artifact = json_object_get(snap, "artifact");
	memory = json_object_get(snap, "memory");

	show_line("id", "%lld", (long long)row->id);
	show_line("name", "%s", row->name);
	show_line("state", "%s", row->execution_state);
	show_line("phase", "%s", row->phase);
	if (row->consecutive_failures > 0)
		show_line("cycles", "%lld (the last %lld failed)",
			  (long long)row->total_cycles,
			  (long long)row->consecutive_failures);
	else
		show_line("cycles", "%lld", (long long)row->total_cycles);
	if (strcmp(row->execution_state, "running") != 0)
		show_line("next run", "-");
	else if (row->next_run_at == 0)
		show_line("next run", "due");
	else
		show_line("next run", "%s%s",
			  show_time(row->next_run_at, when, sizeof(when)),
			  row->next_run_at <= o->now ? " (due)" : "");
	show_line("project", "%s", json_is_object(project)
		  ? member_text(project, "title") : "-");
	show_line("description", "%s", json_is_object(project)
		  ? member_text(project, "description") : "-");
	show_line("todos", "%lld pending, %lld in progress, %lld completed, %lld cancelled",
		  (long long)counts[0], (long long)counts[1], (long long)counts[2],
		  (long long)counts[3]);
	/* The snapshot lists the answered messages the planner has not seen. */
	for (i = j = 0; i < json_array_size(json_object_get(snap, "user_messages")); i++)
		j += !json_is_true(json_object_get(json_array_get(json_object_get(snap,
			"user_messages"), i), "processed"));
	show_line("user messages", "%zu unprocessed", j);
	show_line("messages", "%zu unread",
		  json_array_size(json_object_get(snap, "messages")));
	if (json_is_object(artifact))
		show_line("artifact", "version %lld, %lld bytes, %s, %s",
			  (long long)member_int(artifact, "version"),
			  (long long)member_int(artifact, "size"),
			  member_text(artifact, "type"),
			  show_time(member_int(artifact, "created_at"), when, sizeof(when)));
	else
		show_line("artifact", "-");
	show_line("last planning", "%s",
		  show_time(member_int(json_object_get(memory, "planner"),
				       "last_planning_time"), when, sizeof(when)));
	show_line("last review", "%s",
		  show_time(member_int(json_object_get(memory, "reviewer"),
				       "last_review_time"), when, sizeof(when)));
	json_decref(snap);
}

/* The columns of the history query. */
enum history_col {
	H_ID, H_CYCLE, H_STATUS, H_STARTED, H_ENDED, H_DECISION, H_PAUSE,
	H_NEXT, H_REASON, H_ERROR, H_SUMMARY,
};

/* An integer column as JSON, null for NULL. New reference. */
static json_t *int_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return xjson(json_integer(sqlite3_column_int64(st, col)));
}

/*
 * A text column of the history as JSON, null for NULL: a new reference, or
 * NULL when the text is not UTF-8.
 */
static json_t *text_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return json_stringn(text(st, col), (size_t)sqlite3_column_bytes(st, col));
}

/*
 * One history row as JSON. Everything that can be wrong with the row is
 * found before the object is built, and what was made is freed before
 * dying: a pointer dead after a noreturn call can look like a leak.
 */
static json_t *history_json(sqlite3_stmt *st, const struct stack_row *row)
{
	static const int text_cols[] = { H_STATUS, H_DECISION, H_REASON, H_ERROR };
	json_t *texts[4], *v, *summary = json_null();
	json_error_t jerr;
	size_t i, j;

	for (i = 0; i < 4; i++) {
		if ((texts[i] = text_or_null(st, text_cols[i])))
			continue;
		for (j = 0; j < i; j++)
			json_decref(texts[j]);
		cli_die(ORCH_EX_DATAERR, "%s of cycle %lld of stack '%s' is not valid UTF-8",
			sqlite3_column_name(st, text_cols[i]),
			(long long)sqlite3_column_int64(st, H_CYCLE), row->name);
	}
	if (sqlite3_column_type(st, H_SUMMARY) != SQLITE_NULL &&
	    !(summary = json_loadb(text(st, H_SUMMARY),
				   (size_t)sqlite3_column_bytes(st, H_SUMMARY),
				   JSON_DECODE_ANY, &jerr))) {
		for (j = 0; j < 4; j++)
			json_decref(texts[j]);
		cli_die(ORCH_EX_DATAERR,
			"summary of cycle %lld of stack '%s' is not valid JSON: %s",
			(long long)sqlite3_column_int64(st, H_CYCLE), row->name, jerr.text);
	}
	v = xjson(json_object());
	xjson_set(v, "execution_id", int_or_null(st, H_ID));
	xjson_set(v, "cycle", int_or_null(st, H_CYCLE));
	xjson_set(v, "status", texts[0]);
	xjson_set(v, "started_at", int_or_null(st, H_STARTED));
	xjson_set(v, "ended_at", int_or_null(st, H_ENDED));
	xjson_set(v, "duration_ms", sqlite3_column_type(st, H_ENDED) == SQLITE_NULL
		  ? json_null()
		  : xjson(json_integer(sqlite3_column_int64(st, H_ENDED) -
				       sqlite3_column_int64(st, H_STARTED))));
	xjson_set(v, "decision", texts[1]);
	xjson_set(v, "pause_ms", int_or_null(st, H_PAUSE));
	xjson_set(v, "next_at", int_or_null(st, H_NEXT));
	xjson_set(v, "reason", texts[2]);
	xjson_set(v, "error", texts[3]);
	xjson_set(v, "summary", summary);
	return v;
}

static void history_line(sqlite3_stmt *st)
{
	char started[32], duration[32];
	const char *what;
	char *reason = NULL, *decision;
	int used, n;

	utc_time(sqlite3_column_int64(st, H_STARTED), started, sizeof(started));
	if (sqlite3_column_type(st, H_ENDED) == SQLITE_NULL)
		n = snprintf(duration, sizeof(duration), "-");
	else
		n = snprintf(duration, sizeof(duration), "%lld",
			     (long long)(sqlite3_column_int64(st, H_ENDED) -
					 sqlite3_column_int64(st, H_STARTED)));
	if (n < 0 || (size_t)n >= sizeof(duration))
		cli_die(ORCH_EX_SOFTWARE, "duration too long to print");
	if (sqlite3_column_type(st, H_DECISION) == SQLITE_NULL)
		decision = xstrdup("-");
	else if (strcmp(text(st, H_DECISION), "pause") == 0 &&
		 sqlite3_column_type(st, H_PAUSE) != SQLITE_NULL)
		decision = xasprintf("pause %lld",
				     (long long)sqlite3_column_int64(st, H_PAUSE));
	else
		decision = xstrdup(text(st, H_DECISION));
	if (*text(st, H_ERROR))
		what = reason = xasprintf("error: %s", text(st, H_ERROR));
	else if (*text(st, H_REASON))
		what = text(st, H_REASON);
	else
		what = "-";
	used = printf("%-5lld %-19s %8s %-9s %-10s ",
		      (long long)sqlite3_column_int64(st, H_CYCLE), started, duration,
		      text(st, H_STATUS), decision);
	print_cut(what, WIDTH - (used > 0 ? used : 0), 0);
	putchar('\n');
	free(decision);
	free(reason);
}

static void history(struct store *s, const struct stack_row *row, const struct opts *o)
{
	sqlite3_stmt *st = prepare(s,
		"SELECT id, cycle, status, started_at, ended_at, decision, pause_ms,"
		" next_at, reason, error, summary FROM executions"
		" WHERE stack_id = ? ORDER BY cycle DESC, id DESC LIMIT ?");
	int rc;

	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_int64(st, 2, o->limit);
	if (!o->json)
		printf("%-5s %-19s %8s %-9s %-10s %s\n", "CYCLE", "STARTED", "DURATION",
		       "STATUS", "DECISION", "REASON");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			json_t *v = history_json(st, row);

			json_write(stdout, v, 0);
			json_decref(v);
		} else {
			history_line(st);
		}
	}
	store_finish(s, st);
	if (rc != SQLITE_DONE) {
		struct orch_error err = ORCH_ERROR_INIT;

		store_error(s, &err, "reading the history");
		cli_die_error(&err);
	}
}

static void graph_show(struct store *s, const struct stack_row *row, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = prepare(s,
		"SELECT e.cycle, g.graph FROM executions e"
		" JOIN graphs g ON g.execution_id = e.id"
		" WHERE e.stack_id = ?1 AND (?2 = 0 OR e.cycle = ?2)"
		" ORDER BY e.cycle DESC, e.id DESC LIMIT 1");
	json_t *graph;
	json_error_t jerr;
	long long cycle;
	int rc;

	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_int64(st, 2, o->cycle);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		if (o->cycle)
			cli_die(ORCH_EX_NOINPUT, "no recorded graph for cycle %lld of stack '%s'",
				(long long)o->cycle, row->name);
		cli_die(ORCH_EX_NOINPUT, "no recorded graph for stack '%s'", row->name);
	}
	if (rc != SQLITE_ROW) {
		store_error(s, &err, "reading the graph");
		cli_die_error(&err);
	}
	cycle = sqlite3_column_int64(st, 0);
	graph = json_loadb(text(st, 1), (size_t)sqlite3_column_bytes(st, 1), 0, &jerr);
	store_finish(s, st);
	if (!graph)
		cli_die(ORCH_EX_DATAERR,
			"recorded graph for cycle %lld of stack '%s' is not valid JSON: %s",
			cycle, row->name, jerr.text);
	if (graph_write_dot(stdout, graph, &err) != 0) {
		json_decref(graph);
		if (err.status == ORCH_EX_DATAERR)
			orch_error_prefix(&err, "recorded graph for cycle %lld of stack '%s'",
					  cycle, row->name);
		cli_die_error(&err);
	}
	json_decref(graph);
}

/* The columns of the usage query. */
enum usage_col { U_AGENT, U_DAY, U_CALLS, U_PROMPT, U_COMPLETION };

static void usage_row(const char *agent, const char *day, int64_t calls,
			     int64_t prompt, int64_t completion)
{
	print_cut(agent, 12, 1);
	printf(" %-10s %7lld %12lld %12lld %12lld\n", day, (long long)calls,
	       (long long)prompt, (long long)completion, (long long)(prompt + completion));
}

static void usage_show(struct store *s, const struct stack_row *row, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = prepare(s,
		"SELECT id FROM traces WHERE stack_id = ?1 AND started_at >= ?2"
		" AND usage IS NOT NULL AND NOT json_valid(usage) LIMIT 1");
	int64_t calls = 0, prompt = 0, completion = 0;
	int rc;

	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_int64(st, 2, o->since);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cli_die(ORCH_EX_DATAERR, "usage of trace %lld of stack '%s' is not valid JSON",
			(long long)sqlite3_column_int64(st, 0), row->name);
	store_finish(s, st);
	if (rc != SQLITE_DONE) {
		store_error(s, &err, "reading the usage");
		cli_die_error(&err);
	}
	/* Tokens that are not integers count as none. */
	st = prepare(s,
		"SELECT agent, date(started_at / 1000, 'unixepoch') AS day, count(*),"
		" sum(CASE WHEN json_type(usage, '$.prompt_tokens') = 'integer'"
		"     THEN json_extract(usage, '$.prompt_tokens') ELSE 0 END),"
		" sum(CASE WHEN json_type(usage, '$.completion_tokens') = 'integer'"
		"     THEN json_extract(usage, '$.completion_tokens') ELSE 0 END)"
		" FROM traces WHERE stack_id = ?1 AND started_at >= ?2"
		" GROUP BY agent, day"
		" ORDER BY CASE agent WHEN 'planner' THEN 0 WHEN 'builder' THEN 1"
		" WHEN 'communicator' THEN 2 WHEN 'reviewer' THEN 3 ELSE 4 END, agent, day");
	sqlite3_bind_int64(st, 1, row->id);
	sqlite3_bind_int64(st, 2, o->since);
	if (!o->json)
		printf("%-12s %-10s %7s %12s %12s %12s\n", "AGENT", "DAY", "CALLS",
		       "PROMPT", "COMPLETION", "TOTAL");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(st, U_CALLS);
		int64_t p = sqlite3_column_int64(st, U_PROMPT);
		int64_t c = sqlite3_column_int64(st, U_COMPLETION);

		calls += n;
		prompt += p;
		completion += c;
		if (o->json) {
			json_t *v = xjson(json_pack("{sssssIsIsIsI}",
				"agent", text(st, U_AGENT), "day", text(st, U_DAY),
				"calls", (json_int_t)n, "prompt_tokens", (json_int_t)p,
				"completion_tokens", (json_int_t)c,
				"total_tokens", (json_int_t)(p + c)));

			json_write(stdout, v, 0);
			json_decref(v);
		} else {
			usage_row(text(st, U_AGENT), text(st, U_DAY), n, p, c);
		}
	}
	store_finish(s, st);
	if (rc != SQLITE_DONE) {
		store_error(s, &err, "reading the usage");
		cli_die_error(&err);
	}
	if (!o->json)
		usage_row("total", "", calls, prompt, completion);
}

/* The widest VALUE column config prints: with the longest key and
 * "default", a row fits 80 columns. */
#define CONFIG_VALUE_COLUMN 32

/*
 * The first line of S broken into lines of at most WIDTH columns: its
 * columns in *COLS, and where the next line starts. A line breaks after
 * its last space when it has one; a word wider than WIDTH is split.
 */
static const char *wrap_line(const char *s, int width, int *cols)
{
	const unsigned char *p = (const unsigned char *)s, *after_space = NULL;
	int n = 0, space_cols = 0, len;

	while (*p && n < width) {
		len = utf8_len(p);
		p += len ? len : 1;
		n++;
		if (p[-1] == ' ') {
			after_space = p;
			space_cols = n;
		}
	}
	if (*p == ' ') {
		*cols = n;
		return (const char *)p + 1;
	}
	if (*p && after_space) {
		*cols = space_cols;
		return (const char *)after_space;
	}
	*cols = n;
	return (const char *)p;
}

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

static int config_show(const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config c = CONFIG_INIT;
	struct shown *rows;
	size_t i, n = 0;
	int keyw = 3, valw = 5, w, status = 0;
	const char *rest;

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
	/* Values are never cut: one wider than CONFIG_VALUE_COLUMN is
	 * wrapped onto lines of its own in the VALUE column. */
	for (i = 0; i < n; i++) {
		if ((w = walk(rows[i].key, INT32_MAX, 0)) > keyw)
			keyw = w;
		if ((w = walk(rows[i].value, CONFIG_VALUE_COLUMN, 0)) > valw)
			valw = w;
	}
	if (!o->json) {
		printf("%-*s  %-*s  %s\n", keyw, "KEY", valw, "VALUE", "ORIGIN");
	}
	for (i = 0; i < n; i++) {
		if (o->json) {
			json_t *v = xjson(json_pack("{sssssssb}", "key", rows[i].key,
						    "value", rows[i].value,
						    "origin", rows[i].origin,
						    "known", rows[i].known));

			json_write(stdout, v, 0);
			json_decref(v);
			continue;
		}
		print_cut(rows[i].key, keyw, 1);
		fputs("  ", stdout);
		rest = wrap_line(rows[i].value, valw, &w);
		walk(rows[i].value, w, 1);
		printf("%*s  ", valw - w, "");
		print_cut(rows[i].origin, walk(rows[i].origin, INT32_MAX, 0), 0);
		puts(rows[i].known ? "" : " (unknown key)");
		while (*rest) {
			const char *line = rest;

			rest = wrap_line(line, valw, &w);
			printf("%*s  ", keyw, "");
			walk(line, w, 1);
			putchar('\n');
		}
	}
	free(rows);
	config_release(&c);
	return status;
}

static int run(const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	const char *sub = o->args[0];
	struct stack_row row;
	struct store *s;
	int64_t id;

	if (strcmp(sub, "config") == 0) {
		need_args(o, 1, "config [--config FILE] [--json]");
		allow(o, sub, F_CONFIG | F_JSON);
		return config_show(o);
	}
	if (strcmp(sub, "init") == 0) {
		need_args(o, 1, "init");
		allow(o, "init", 0);
		store_close(cli_open_store(o->db, STORE_CREATE));
		return 0;
	}
	s = cli_open_store(o->db, 0);
	if (strcmp(sub, "create") == 0) {
		need_args(o, 2, "create NAME [--idea TEXT]");
		allow(o, sub, F_IDEA);
		if (admin_check_name(o->args[1], &err) != 0)
			cli_usage_error(usage_line, "%s", err.msg);
		check(admin_create(s, o->args[1], o->idea, o->now, &id, &err), &err);
	} else if (strcmp(sub, "list") == 0) {
		need_args(o, 1, "list [--json]");
		allow(o, sub, F_JSON);
		stack_list(s, o);
	} else if (strcmp(sub, "names") == 0) {
		need_args(o, 1, "names");
		allow(o, sub, 0);
		stack_names(s);
	} else if (strcmp(sub, "show") == 0) {
		json_t *snap;

		need_args(o, 2, "show [--json] STACK");
		allow(o, sub, F_JSON);
		get_stack(s, o->args[1], &row);
		if (o->json) {
			if (!(snap = snapshot_load(s, row.id, &err)))
				cli_die_error(&err);
			json_write(stdout, snap, JSON_OUT_PRETTY);
			json_decref(snap);
		} else {
			stack_show(s, &row, o);
		}
		stack_row_release(&row);
	} else if (strcmp(sub, "start") == 0 || strcmp(sub, "pause") == 0 ||
		   strcmp(sub, "stop") == 0) {
		const char *state = strcmp(sub, "start") == 0 ? "running"
				  : strcmp(sub, "pause") == 0 ? "paused" : "stopped";

		if (o->nargs != 2)
			cli_usage_error(usage_line, "usage: orch-stack %s STACK", sub);
		allow(o, sub, 0);
		check(admin_set_state(s, find_stack(s, o->args[1]), state, o->now, &err), &err);
	} else if (strcmp(sub, "rm") == 0) {
		need_args(o, 2, "rm STACK");
		allow(o, sub, 0);
		check(admin_remove(s, find_stack(s, o->args[1]), &err), &err);
	} else if (strcmp(sub, "say") == 0) {
		need_args(o, 3, "say STACK TEXT [--from SENDER]");
		allow(o, sub, F_FROM);
		check(admin_add_user_message(s, find_stack(s, o->args[1]),
					     o->from ? o->from : "user", o->args[2],
					     o->now, NULL, &err), &err);
	} else if (strcmp(sub, "todo") == 0 && o->nargs > 1 && strcmp(o->args[1], "add") == 0) {
		need_args(o, 4, "todo add STACK TEXT [--priority 1-5]");
		allow(o, "todo add", F_PRIORITY);
		check(admin_add_todo(s, find_stack(s, o->args[2]), o->args[3],
				     o->priority ? o->priority : 3, o->now, &err), &err);
	} else if (strcmp(sub, "todo") == 0 && o->nargs > 1 && strcmp(o->args[1], "list") == 0) {
		need_args(o, 3, "todo list STACK [--json]");
		allow(o, "todo list", F_JSON);
		todo_list(s, find_stack(s, o->args[2]), o);
	} else if (strcmp(sub, "todo") == 0) {
		cli_usage_error(usage_line, "usage: orch-stack todo add|list STACK ...");
	} else if (strcmp(sub, "history") == 0) {
		need_args(o, 2, "history STACK [--limit N] [--json]");
		allow(o, sub, F_LIMIT | F_JSON);
		get_stack(s, o->args[1], &row);
		history(s, &row, o);
		stack_row_release(&row);
	} else if (strcmp(sub, "graph") == 0) {
		need_args(o, 2, "graph STACK [--cycle N]");
		allow(o, sub, F_CYCLE);
		get_stack(s, o->args[1], &row);
		graph_show(s, &row, o);
		stack_row_release(&row);
	} else if (strcmp(sub, "usage") == 0) {
		need_args(o, 2, "usage STACK [--json] [--since MS]");
		allow(o, sub, F_JSON | F_SINCE);
		get_stack(s, o->args[1], &row);
		usage_show(s, &row, o);
		stack_row_release(&row);
	} else {
		cli_usage_error(usage_line, "unknown subcommand '%s'", sub);
	}
	store_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":h";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ "now", required_argument, NULL, 258 },
		{ "idea", required_argument, NULL, 259 },
		{ "from", required_argument, NULL, 260 },
		{ "priority", required_argument, NULL, 261 },
		{ "json", no_argument, NULL, 262 },
		{ "limit", required_argument, NULL, 263 },
		{ "cycle", required_argument, NULL, 264 },
		{ "since", required_argument, NULL, 265 },
		{ "config", required_argument, NULL, 266 },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int c, now_set = 0;

	orch_progname = "orch-stack";
	memset(&o, 0, sizeof(o));
	o.limit = HISTORY_LIMIT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 256:
			cli_version();
		case 257:
			o.db = optarg;
			break;
		case 258:
			o.now = cli_int(usage_line, "--now", optarg, 0, INT64_MAX / 2);
			now_set = 1;
			break;
		case 259:
			o.idea = optarg;
			o.given |= F_IDEA;
			break;
		case 260:
			o.from = optarg;
			o.given |= F_FROM;
			break;
		case 261:
			o.priority = cli_int(usage_line, "--priority", optarg, 1, 5);
			o.given |= F_PRIORITY;
			break;
		case 262:
			o.json = 1;
			o.given |= F_JSON;
			break;
		case 263:
			o.limit = cli_int(usage_line, "--limit", optarg, 1, 100000);
			o.given |= F_LIMIT;
			break;
		case 264:
			o.cycle = cli_int(usage_line, "--cycle", optarg, 1, INT64_MAX);
			o.given |= F_CYCLE;
			break;
		case 265:
			o.since = cli_int(usage_line, "--since", optarg, 0, INT64_MAX);
			o.given |= F_SINCE;
			break;
		case 266:
			o.config = optarg;
			o.given |= F_CONFIG;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		cli_usage_error(usage_line, "no subcommand given");
	o.args = argv + optind;
	o.nargs = argc - optind;
	if (!now_set)
		o.now = orch_now_ms();
	return cli_finish(run(&o));
}
