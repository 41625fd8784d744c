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

#include "budget.h"
#include "cli.h"
#include "decide.h"
#include "jsonio.h"
#include "orch.h"
#include "retention.h"
#include "schedule.h"
#include "store.h"
#include "watch.h"
#include "xalloc.h"
#include "banned.h"

#define WAIT_CAP_MS (60 * 60 * 1000)
#define EXIT_NOTHING_RUNNING 1

static const char usage_line[] =
	"usage: orch-decide [--db PATH] [--no-db] [--config FILE] [--wait [--follow]] "
	"[--now MS] [--pretty] [FILE]";

static const char help_text[] =
	"usage: orch-decide [--db PATH] [--no-db] [--config FILE] [--wait [--follow]] "
	"[--now MS] [--pretty] [FILE]\n"
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
	"  --wait        then wait until a running stack is due, waking at once\n"
	"                when a write makes one due; exit 1 when no stack is\n"
	"                left running\n"
	"  --follow      with --wait: keep waiting while no stack runs\n"
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
	int follow;         /* --follow */
	int64_t now;        /* the clock */
	unsigned out_flags; /* enum json_out_flags */
};

/* The stack as the store has it at NOW, under the token budgets BC; its
 * state (NULL when deleted) and what holds it to its budget (NULL when
 * nothing does) go in *STATE and *BUDGET, new strings. */
static void stack_now(struct store *s, struct budget_config *bc, int64_t now,
		      int64_t id, struct decide_stack *out, char **state, char **budget)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct budget_status b;
	struct stack_row row;
	int rc = store_get_stack(s, id, &row, &err);

	memset(out, 0, sizeof(*out));
	*state = *budget = NULL;
	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		return;
	*state = xstrdup(row.execution_state);
	out->state = *state;
	out->consecutive_failures = row.consecutive_failures;
	out->wake_at = row.wake_at;
	stack_row_release(&row);
	if (budget_check(s, bc, id, now, 0, &b, &err) != 0)
		cli_die_error(&err);
	if (b.binding)
		out->budget_until = b.binding->resets_at ? b.binding->resets_at : -1;
	if (b.over)
		out->budget_reason = *budget = budget_reason(&b);
}

/* Record DECISION; 1, or 0 (said on stderr) when the document was one
 * that cannot be recorded: a per-stack fault never ends the run. */
static int record(struct store *s, const json_t *decision,
		  const struct decision_facts *f, int64_t now)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct schedule_decision d = {
		.stack_id = f->stack_id,
		.execution_id = f->execution_id,
		.action = json_string_value(json_object_get(decision, "action")),
		.rule = json_string_value(json_object_get(decision, "rule")),
		.reason = json_string_value(json_object_get(decision, "reason")),
		.pause_ms = json_integer_value(json_object_get(decision, "pause_ms")),
		.next_at = json_integer_value(json_object_get(decision, "next_at")),
		.detected_at = f->detected_at,
		.failed = f->failed,
		.floor = f->floor,
		.stop = f->stop,
		.now = now,
	};

	if (schedule_record(s, &d, &err) == 0)
		return 1;
	if (err.status != ORCH_EX_DATAERR)
		cli_die_error(&err);
	cli_warn("%s", err.msg);
	orch_error_release(&err);
	return 0;
}

/*
 * --wait: until a running stack is due. A write that makes one due (a
 * message, a start, a decision recorded by another pipeline) wakes the
 * wait at once through the store's watch. Returns 0 when one is due, 1
 * when none runs (and not FOLLOW).
 */
static int wait_for_due(struct store *s, int follow)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct store_watch *w = store_watch_new(s);
	int64_t at, now, timeout;
	int rc = 0;

	for (;;) {
		if (schedule_earliest(s, &at, &err) != 0)
			cli_die_error(&err);
		now = orch_now_ms();
		if (at < 0 && !follow) {
			rc = EXIT_NOTHING_RUNNING;
			break;
		}
		if (at >= 0 && at <= now)
			break;
		timeout = at < 0 || at - now > WAIT_CAP_MS ? WAIT_CAP_MS : at - now;
		if (store_watch_wait(w, timeout, NULL, 0, &err) < 0)
			cli_die_error(&err);
	}
	store_watch_free(w);
	return rc;
}

/* json_reader's before_wait: what was written reaches the next stage. */
static void flush_stdout(void *arg)
{
	(void)arg;
	fflush(stdout);
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
		{ "follow", no_argument, NULL, 263 },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT, pruning = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct decide_rules rules;
	struct budget_config budget;
	struct retention_rules keep;
	int recorded;
	struct decision_facts facts;
	struct decide_stack now_stack;
	struct store *store = NULL;
	struct json_reader r;
	struct opts o;
	json_t *doc, *decision;
	int64_t wake = -1, next_at;
	int c, now_set = 0, rc;
	FILE *in = stdin;
	char *state, *held = NULL;

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
		case 263:
			o.follow = 1;
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
	if (o.follow && !o.wait)
		cli_usage_error(usage_line, "--follow needs --wait");
	if (!now_set)
		o.now = orch_now_ms();
	if (config_load(&conf, o.config, &err) != 0 ||
	    decide_rules_configure(&rules, &conf, &err) != 0 ||
	    retention_configure(&keep, &conf, &err) != 0 ||
	    budget_configure(&budget, &conf, &err) != 0)
		cli_die_error(&err);
	config_release(&conf);
	if (o.file && strcmp(o.file, "-") != 0 && !(in = fopen(o.file, "r")))
		cli_die(ORCH_EX_NOINPUT, "cannot open '%s': %s", o.file, strerror(errno));
	if (!o.no_db) {
		store = cli_open_store(o.db, 0);
	}

	json_reader_init(&r, in);
	/* In a long-lived pipeline, each document goes on before waiting. */
	r.before_wait = flush_stdout;
	while ((rc = json_reader_next(&r, &doc, &err)) == 1) {
		const json_t *stack = json_object_get(doc, "stack");
		int64_t id = json_integer_value(json_object_get(stack, "id"));

		if (store) {
			stack_now(store, &budget, o.now, id, &now_stack, &state, &held);
		} else {
			const char *s = json_string_value(json_object_get(stack, "execution_state"));

			memset(&now_stack, 0, sizeof(now_stack));
			now_stack.state = state = s ? xstrdup(s) : NULL;
		}
		decision = decide(doc, &now_stack, o.now, &rules, &facts, &err);
		free(state);
		free(held);
		held = NULL;
		json_decref(doc);
		if (!decision) {
			orch_error_prefix(&err, "line %ld", r.doc_line);
			break;
		}
		recorded = store && facts.record && record(store, decision, &facts, o.now);
		xjson_set(decision, "recorded", json_boolean(recorded));
		/* Retention's bounded share (issue 10): never fails the run. */
		if (recorded &&
		    retention_after_decision(store, &keep, facts.stack_id, o.now, &pruning) != 0) {
			cli_warn("stack %lld: %s", (long long)facts.stack_id, pruning.msg);
			orch_error_release(&pruning);
		}
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
	rc = 0;
	if (o.wait && fflush(stdout) == 0) {
		if (store) {
			rc = wait_for_due(store, o.follow);
		} else if (wake < 0) {
			rc = EXIT_NOTHING_RUNNING;
		} else if (wake > o.now) {
			/* --no-db: the decisions are all it knows. */
			struct timespec ts;
			int64_t ms = wake - o.now > WAIT_CAP_MS ? WAIT_CAP_MS : wake - o.now;

			ts.tv_sec = (time_t)(ms / 1000);
			ts.tv_nsec = (long)(ms % 1000) * 1000000L;
			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
		}
	}
	store_close(store);
	return cli_finish(rc);
}
