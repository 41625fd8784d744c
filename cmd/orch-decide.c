/*
 * orch-decide - the last stage of a cycle: continue, pause or stop each
 * stack, and record it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "decide.h"
#include "jsonio.h"
#include "orch.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

#define WAIT_CAP_MS (60 * 60 * 1000)
#define EXIT_NOTHING_RUNNING 1

static const char usage_line[] =
	"usage: orch-decide [--db PATH] [--no-db] [--config FILE] [--wait] [--now MS] "
	"[--pretty] [FILE]";

static const char help_text[] =
	"usage: orch-decide [--db PATH] [--no-db] [--config FILE] [--wait] [--now MS] "
	"[--pretty] [FILE]\n"
	"\n"
	"Read orch.execution documents (from FILE or standard input) and print\n"
	"one orch.decision per document: continue, pause or stop. Each is\n"
	"recorded in the store: the cycle's decision, the stack's next run.\n"
	"\n"
	"  --db PATH     the database (default $ORCH_DB, else\n"
	"                ~/.local/share/orch/orch.db)\n"
	"  --no-db       a pure filter: no database read or written\n"
	"  --config FILE the pauses' configuration file (default\n"
	"                ~/.config/orch/config, if it exists)\n"
	"  --wait        then sleep until the earliest next run; exit 1 when\n"
	"                no stack is left running\n"
	"  --now MS      the clock, in ms since the epoch\n"
	"  --pretty      indent the output\n"
	"  -h, --help    print this help\n"
	"  --version     print the version\n";

struct opts {
	const char *db;     /* borrowed from argv, or NULL */
	const char *file;   /* borrowed from argv, or NULL for stdin */
	const char *config; /* borrowed from argv, or NULL */
	int no_db;          /* --no-db */
	int wait;           /* --wait */
	int64_t now;        /* the clock */
	unsigned out_flags; /* enum json_out_flags */
};

/* The stack's state now (NULL when deleted) and its failure streak. */
static char *current_state(struct store *s, int64_t id, int64_t *failures)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	char *state;
	int rc = store_get_stack(s, id, &row, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		return NULL;
	*failures = row.consecutive_failures;
	state = xstrdup(row.execution_state);
	stack_row_release(&row);
	return state;
}

static void record(struct store *s, const json_t *decision,
		   const struct decision_facts *f, int64_t now)
{
	static const char exec_sql[] =
		"UPDATE executions SET decision = ?, pause_ms = ?, next_at = ?,"
		" reason = ? WHERE id = ? AND stack_id = ?";
	static const char stack_sql[] =
		"UPDATE stacks SET next_run_at = ?, total_cycles = total_cycles + 1,"
		" consecutive_failures = CASE WHEN ? THEN consecutive_failures + 1 ELSE 0 END,"
		" last_executed_at = ? WHERE id = ?";
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = NULL;
	const char *action = json_string_value(json_object_get(decision, "action"));
	const char *reason = json_string_value(json_object_get(decision, "reason"));
	int64_t pause = json_integer_value(json_object_get(decision, "pause_ms"));
	int64_t next_at = json_integer_value(json_object_get(decision, "next_at"));

	if (store_begin(s, &err) != 0)
		cli_die_error(&err);
	if (f->execution_id) {
		if (!(st = store_prepare(s, exec_sql, &err)))
			goto fail;
		sqlite3_bind_text(st, 1, action, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, pause);
		sqlite3_bind_int64(st, 3, next_at);
		sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, f->execution_id);
		sqlite3_bind_int64(st, 6, f->stack_id);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_error(s, &err, "recording the decision");
			goto fail;
		}
		store_finish(s, st);
		st = NULL;
		/* Another stack's cycle, or none: record nothing for anyone. */
		if (sqlite3_changes(s->db) != 1) {
			orch_error_set(&err, ORCH_EX_DATAERR,
				       "execution %lld is not a cycle of stack %lld",
				       (long long)f->execution_id, (long long)f->stack_id);
			goto fail;
		}
	}
	if (!(st = store_prepare(s, stack_sql, &err)))
		goto fail;
	sqlite3_bind_int64(st, 1, next_at);
	sqlite3_bind_int(st, 2, f->failed);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, f->stack_id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_error(s, &err, "recording the decision");
		goto fail;
	}
	store_finish(s, st);
	if (store_commit(s, &err) != 0)
		cli_die_error(&err);
	return;
fail:
	store_finish(s, st);
	store_rollback(s);
	cli_die_error(&err);
}

/* The earliest next_run_at of a running stack, or -1 when none runs. */
static int64_t earliest_running(struct store *s)
{
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = store_prepare(s, "SELECT min(next_run_at) FROM stacks"
					 " WHERE execution_state = 'running'", &err);
	int64_t at = -1;

	if (!st)
		cli_die_error(&err);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		at = sqlite3_column_int64(st, 0);
	store_finish(s, st);
	return at;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":h";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ "no-db", no_argument, NULL, 258 },
		{ "wait", no_argument, NULL, 259 },
		{ "now", required_argument, NULL, 260 },
		{ "pretty", no_argument, NULL, 261 },
		{ "config", required_argument, NULL, 262 },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct decide_rules rules;
	struct decision_facts facts;
	struct store *store = NULL;
	struct json_reader r;
	struct opts o;
	json_t *doc, *decision;
	int64_t wake = -1, failures, next_at;
	int c, now_set = 0, rc, decisions = 0;
	FILE *in = stdin;
	char *state;

	orch_progname = "orch-decide";
	memset(&o, 0, sizeof(o));
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
			o.no_db = 1;
			break;
		case 259:
			o.wait = 1;
			break;
		case 260:
			o.now = cli_int(usage_line, "--now", optarg, 0, INT64_MAX / 2);
			now_set = 1;
			break;
		case 261:
			o.out_flags |= JSON_OUT_PRETTY;
			break;
		case 262:
			o.config = optarg;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		o.file = argv[optind++];
	if (optind < argc)
		cli_usage_error(usage_line, "unexpected argument '%s'", argv[optind]);
	if (o.no_db && o.db)
		cli_usage_error(usage_line, "--db and --no-db cannot be used together");
	if (!now_set)
		o.now = orch_now_ms();
	if (config_load(&conf, o.config, &err) != 0 ||
	    decide_rules_configure(&rules, &conf, &err) != 0)
		cli_die_error(&err);
	config_release(&conf);
	if (o.file && strcmp(o.file, "-") != 0 && !(in = fopen(o.file, "r")))
		cli_die(ORCH_EX_NOINPUT, "cannot open '%s': %s", o.file, strerror(errno));
	if (!o.no_db) {
		store = cli_open_store(o.db, 0);
	}

	json_reader_init(&r, in);
	while ((rc = json_reader_next(&r, &doc, &err)) == 1) {
		const json_t *stack = json_object_get(doc, "stack");
		int64_t id = json_integer_value(json_object_get(stack, "id"));

		failures = 0;
		if (store) {
			state = current_state(store, id, &failures);
		} else {
			const char *s = json_string_value(json_object_get(stack, "execution_state"));
			state = s ? xstrdup(s) : NULL;
		}
		decision = decide(doc, state, failures, o.now, &rules, &facts, &err);
		free(state);
		json_decref(doc);
		if (!decision) {
			orch_error_prefix(&err, "line %ld", r.doc_line);
			break;
		}
		if (store && facts.record)
			record(store, decision, &facts, o.now);
		xjson_set(decision, "recorded", json_boolean(store && facts.record));
		decisions++;
		if (strcmp(json_string_value(json_object_get(decision, "action")), "stop") != 0) {
			next_at = json_integer_value(json_object_get(decision, "next_at"));
			if (wake < 0 || next_at < wake)
				wake = next_at;
		}
		rc = json_write(stdout, decision, o.out_flags);
		json_decref(decision);
		if (rc != 0)
			break;
	}
	json_reader_release(&r);
	if (in != stdin)
		fclose(in);
	if (err.status)
		cli_die_error(&err);
	if (o.wait && fflush(stdout) == 0) {
		if (store && (decisions == 0 || wake < 0))
			wake = earliest_running(store);
		if (wake < 0) {
			store_close(store);
			return cli_finish(EXIT_NOTHING_RUNNING);
		}
		if (wake > o.now)
			sleep_ms(wake - o.now > WAIT_CAP_MS ? WAIT_CAP_MS : wake - o.now);
	}
	store_close(store);
	return cli_finish(0);
}
