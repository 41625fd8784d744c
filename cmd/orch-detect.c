/*
 * orch-detect - the first stage of a cycle: which agents of each stack have
 * work, as orch.work_status documents.
 */
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "cli.h"
#include "cycle.h"
#include "detect.h"
#include "follow.h"
#include "jsonio.h"
#include "orch.h"
#include "spawn.h"
#include "store.h"
#include "watch.h"
#include "xalloc.h"
#include "banned.h"

#define CACHE_BATCH 1000

static const char usage_line[] =
	"usage: orch-detect [--db PATH] [--stack NAME|ID]... [--all [--force | --follow]] "
	"[--config FILE] [--now MS] [--cache-ttl MS | --no-cache] [--explain] [--pretty] [-]";

static const char help_text[] =
	"usage: orch-detect [--db PATH] [--stack NAME|ID]... [--all [--force | --follow]] "
	"[--config FILE] [--now MS] [--cache-ttl MS | --no-cache] [--explain] [--pretty] [-]\n"
	"\n"
	"Print one orch.work_status document (NDJSON) per stack: which agents\n"
	"have work, how urgently, and why.\n"
	"\n"
	"  --db PATH         the database (default $ORCH_DB, else\n"
	"                    ~/.local/share/orch/orch.db)\n"
	"  --stack NAME|ID   this stack (repeatable)\n"
	"  --all             every running stack whose next_run_at has come\n"
	"  --force           with --all: every running stack\n"
	"  --follow          with --all: never end; print each running stack\n"
	"                    when it becomes due and its last cycle is decided\n"
	"  --config FILE     the rules' configuration file (default\n"
	"                    ~/.config/orch/config, if it exists)\n"
	"  --now MS          the clock, in ms since the epoch\n"
	"  --cache-ttl MS    serve a cached status younger than MS (default 5000)\n"
	"                    if the stack has not changed since\n"
	"  --no-cache        neither read nor write the cache\n"
	"  --explain         say on standard error why each stack --all left\n"
	"                    out was left out, and why each agent has no work\n"
	"  --pretty          indent the output\n"
	"  -                 read orch.snapshot documents from standard input\n"
	"                    instead of the database\n"
	"  -h, --help        print this help\n"
	"  --version         print the version\n";

struct pending {
	int64_t id;      /* stack id */
	int64_t version; /* state_version the status was computed at */
	json_t *status;  /* owned */
};

struct opts {
	const char *db;        /* borrowed from argv, or NULL */
	const char **stacks;   /* owned array of borrowed argv strings */
	size_t nstacks;        /* entries in stacks */
	int all;               /* --all */
	int force;             /* --force */
	int follow;            /* --follow */
	int64_t now;           /* the clock */
	int64_t ttl;           /* cache time to live, or DETECT_NO_CACHE */
	int cache_flag;        /* --cache-ttl or --no-cache seen */
	unsigned out_flags;    /* enum json_out_flags */
	int from_stdin;        /* '-' given */
	const char *config;    /* borrowed from argv, or NULL */
	int explain;           /* --explain */
	struct budget_config *budget; /* the configuration's token budgets */
};

/* --explain: why each agent of STATUS without work has none. */
static void explain_agents(const json_t *status)
{
	const json_t *agents = json_object_get(status, "agents"), *a;
	const char *name = json_string_value(json_object_get(json_object_get(status, "stack"),
							     "name"));
	const char *reason;
	int i;

	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		a = json_object_get(agents, orch_agents[i]);
		if (json_is_true(json_object_get(a, "has_work")))
			continue;
		reason = json_string_value(json_object_get(a, "reason"));
		cli_warn("explain: %s: %s: no work: %s", name ? name : "?", orch_agents[i],
			 reason ? reason : "no reason given");
	}
}

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The stacks --explain said last time why --follow left out. */
struct explained {
	struct detect_choice *v; /* owned; by id */
	size_t n;                /* entries in v */
};

/*
 * --explain: say why --all, choosing with FLAGS at NOW, left out each
 * stack but the N CHOSEN (ascending). With --follow (F, LAST), a stack
 * whose facts have not changed since LAST's pass is not said again, and
 * LAST keeps this pass's.
 */
static void explain_left_out(struct store *s, const struct follow *f,
			     const int64_t *chosen, size_t n, int64_t now,
			     unsigned flags, struct explained *last)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct detect_choice *v, *was;
	size_t nv, i, k;
	char *why;

	if (detect_choices(s, now, &v, &nv, &err) != 0)
		cli_die_error(&err);
	for (i = k = 0; i < nv; i++) {
		if (n && bsearch(&v[i].id, chosen, n, sizeof(*chosen), by_id)) {
			detect_choice_release(&v[i]);
			continue;
		}
		if (f)
			v[i].in_flight = follow_is_in_flight(f, v[i].id);
		was = last && last->n ? bsearch(&v[i].id, last->v, last->n, sizeof(*last->v),
						by_id) : NULL;
		if (!was || !detect_choice_same(was, &v[i])) {
			why = detect_left_out_reason(&v[i], now, flags);
			cli_warn("explain: %s: %s", v[i].name, why);
			free(why);
		}
		v[k++] = v[i];
	}
	if (!last) {
		detect_choices_free(v, k);
		return;
	}
	detect_choices_free(last->v, last->n);
	last->v = v;
	last->n = k;
}

static int filter(const struct opts *o, const struct detect_rules *rules)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct json_reader r;
	json_t *snap, *status;
	int rc;

	json_reader_init(&r, stdin);
	while ((rc = json_reader_next(&r, &snap, &err)) == 1) {
		status = detect_work_status(snap, o->now, rules, &err);
		json_decref(snap);
		if (!status) {
			orch_error_prefix(&err, "line %ld", r.doc_line);
			break;
		}
		rc = json_write(stdout, status, o->out_flags);
		if (o->explain)
			explain_agents(status);
		json_decref(status);
		if (rc != 0)
			break;
	}
	json_reader_release(&r);
	if (err.status)
		cli_die_error(&err);
	return 0;
}

static int by_stack_id(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* File the N statuses of P, computed under the rules of fingerprint RULES. */
static void flush_cache(struct store *s, int64_t rules, struct pending *p, size_t *n)
{
	struct orch_error err = ORCH_ERROR_INIT;
	size_t i;

	if (*n == 0)
		return;
	/* Each entry is one statement that keeps the newer of two: it need
	 * not wait for the stacks' writers, only for a writer of them all.
	 * Two programs filing the same entries at once wait for each other's
	 * rows; in the order of the ids, never each for the other's. */
	qsort(p, *n, sizeof(*p), by_stack_id);
	if (store_begin_stacks(s, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < *n; i++)
		if (detect_cache_put(s, p[i].id, p[i].version, rules, p[i].status, &err) != 0) {
			store_rollback(s);
			cli_die_error(&err);
		}
	if (store_commit(s, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < *n; i++)
		json_decref(p[i].status);
	*n = 0;
}

static void add_id(int64_t **ids, size_t *n, int64_t id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*ids)[i] == id)
			return;
	*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
	(*ids)[(*n)++] = id;
}

/* An abandoned cycle recovered before detection: its stack and what
 * cycle_recover() found, which the stack's status carries on. */
struct recovery {
	int64_t id;
	json_t *what; /* owned */
};

/* Recover the abandoned cycles among the N stacks IDS (cycle_recover):
 * *OUT a new array of *NOUT recoveries. */
static void recover(struct store *s, const int64_t *ids, size_t n,
		    struct recovery **out, size_t *nout)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t *cand;
	size_t ncand, i;
	json_t *what;
	int rc;

	*out = NULL;
	*nout = 0;
	if (cycle_recovery_candidates(s, ids, n, &cand, &ncand, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < ncand; i++) {
		if ((rc = cycle_recover(s, cand[i], &what, &err)) < 0)
			cli_die_error(&err);
		if (rc == 0)
			continue;
		*out = xreallocarray(*out, *nout + 1, sizeof(**out));
		(*out)[(*nout)++] = (struct recovery){ cand[i], what };
	}
	free(cand);
}

static void recoveries_free(struct recovery *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_decref(r[i].what);
	free(r);
}

/*
 * STATUS of stack ID as its budgets leave it (budget.h), a new reference:
 * held when a limit is reached, with its standing when one applies. Never
 * filed in the cache, which knows the stack's content, not its spending.
 */
static json_t *budgeted(struct store *s, const struct opts *o, json_t *status,
			int64_t id)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct budget_status b;
	json_t *out;

	if (budget_check(s, o->budget, id, o->now, 0, &b, &err) != 0)
		cli_die_error(&err);
	if (b.over)
		return budget_hold(status, &b);
	out = xjson(json_copy(status));
	if (b.binding)
		xjson_set(out, "budget", budget_json(&b));
	return out;
}

/* Write STATUS of stack ID, with its recovery if it had one (never filed
 * in the cache: it happened once). 0, or -1 on a write error. */
static int write_status(struct store *s, const struct opts *o, json_t *cached,
			int64_t id, const struct recovery *rec, size_t nrec)
{
	json_t *status = budgeted(s, o, cached, id);
	const char *error = json_string_value(json_object_get(status, "error"));
	size_t i;
	int rc;

	/* One stack's bad data is said, and goes on as that stack's status. */
	if (error)
		cli_warn("stack %lld (%s): %s", (long long)id,
			 json_string_value(json_object_get(json_object_get(status, "stack"), "name")),
			 error);
	for (i = 0; i < nrec && rec[i].id != id; i++)
		;
	if (i < nrec)
		xjson_set(status, "recovered", json_incref(rec[i].what));
	rc = json_write(stdout, status, o->out_flags);
	if (o->explain)
		explain_agents(status);
	json_decref(status);
	return rc;
}

/* --all: the due stacks IDS (ascending) through detect_stacks(). */
static int all_stacks(struct store *s, const struct opts *o,
		      const struct detect_rules *rules, const int64_t *ids,
		      size_t nids, struct pending *pending,
		      const struct recovery *rec, size_t nrec)
{
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *out[CACHE_BATCH];
	int64_t versions[CACHE_BATCH];
	size_t npending = 0, at, n, done, i;
	int rc = 0, failed;

	for (at = 0; at < nids && rc == 0; at += n) {
		n = nids - at < CACHE_BATCH ? nids - at : CACHE_BATCH;
		failed = detect_stacks(s, ids + at, n, o->now, rules, o->ttl, out,
				       versions, &done, &err) != 0;
		for (i = 0; i < done; i++) {
			if (!out[i])
				continue;
			if (rc == 0)
				rc = write_status(s, o, out[i], ids[at + i], rec, nrec);
			if (pending && !json_is_true(json_object_get(out[i], "cached"))) {
				pending[npending].id = ids[at + i];
				pending[npending].version = versions[i];
				pending[npending++].status = out[i];
			} else {
				json_decref(out[i]);
			}
		}
		if (failed)
			cli_die_error(&err);
		if (pending)
			flush_cache(s, rules->fingerprint, pending, &npending);
	}
	return rc;
}

/*
 * --all --follow: hand on each running stack when it is due and its last
 * cycle has been decided (lib/follow.h), for ever; sleep in between until
 * the next one is due or a write to the store may have made one due.
 * Ends on SIGINT, SIGTERM or SIGHUP, or when the reader of stdout goes.
 */
static int follow(struct store *s, struct opts *o, const struct detect_rules *rules,
		  struct pending *pending)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct store_watch *w = store_watch_new(s);
	struct follow *f = follow_new();
	struct explained last = { NULL, 0 };
	struct recovery *rec;
	struct pollfd extra[2];
	int64_t *due, wait;
	size_t ndue, nrec;
	int sigfd, rc = 0;

	if ((sigfd = spawn_init(&err)) < 0)
		cli_die_error(&err);
	while (!spawn_interrupted()) {
		o->now = orch_now_ms();
		if (follow_scan(f, s, o->now, &due, &ndue, &wait, &err) != 0)
			cli_die_error(&err);
		if (o->explain)
			explain_left_out(s, f, due, ndue, o->now, DETECT_FOLLOW, &last);
		if (ndue) {
			recover(s, due, ndue, &rec, &nrec);
			rc = all_stacks(s, o, rules, due, ndue, pending, rec, nrec);
			recoveries_free(rec, nrec);
			if (rc != 0 || fflush(stdout) != 0) {
				free(due);
				rc = -1;
				break;
			}
			follow_sent(f, due, ndue);
			free(due);
			continue;
		}
		extra[0] = (struct pollfd){ sigfd, POLLIN, 0 };
		extra[1] = (struct pollfd){ STDOUT_FILENO, 0, 0 };
		if (store_watch_wait(w, wait, extra, 2, &err) < 0)
			cli_die_error(&err);
		if (extra[0].revents)
			spawn_drain_signal();
		if (extra[1].revents & (POLLERR | POLLHUP)) {
			rc = -1;
			break;
		}
	}
	detect_choices_free(last.v, last.n);
	follow_free(f);
	store_watch_free(w);
	return rc;
}

static int from_store(struct opts *o, const struct detect_rules *rules)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct pending *pending = NULL;
	struct recovery *rec = NULL;
	struct stack_row row;
	struct store *s;
	int64_t *ids = NULL, version;
	size_t nids = 0, npending = 0, nrec = 0, i;
	json_t *status;
	int rc = 0;

	s = cli_open_store(o->db, 0);
	for (i = 0; i < o->nstacks; i++) {
		rc = store_find_stack(s, o->stacks[i], &row, &err);
		if (rc < 0)
			cli_die_error(&err);
		if (rc == 0)
			cli_die(ORCH_EX_NOINPUT, "no stack '%s'", o->stacks[i]);
		add_id(&ids, &nids, row.id);
		stack_row_release(&row);
	}
	if (o->ttl != DETECT_NO_CACHE)
		pending = xreallocarray(NULL, CACHE_BATCH, sizeof(*pending));
	if (o->follow) {
		rc = follow(s, o, rules, pending);
		goto out;
	}
	if (o->all && detect_due_stacks(s, o->now, o->force ? DETECT_FORCE : 0,
					&ids, &nids, &err) != 0)
		cli_die_error(&err);
	if (o->all && o->explain)
		explain_left_out(s, NULL, ids, nids, o->now, o->force ? DETECT_FORCE : 0, NULL);
	/* Before anything reads the state a dead pipeline left. */
	recover(s, ids, nids, &rec, &nrec);
	rc = 0;
	if (o->all) {
		/* Set-based, CACHE_BATCH stacks per round of queries. */
		rc = all_stacks(s, o, rules, ids, nids, pending, rec, nrec);
		nids = 0;
	}
	for (i = 0; i < nids && rc == 0; i++) {
		version = 0;
		rc = detect_stack(s, ids[i], o->now, rules, o->ttl, &status, &version, &err);
		if (rc < 0)
			cli_die_error(&err);
		if (rc == 0)
			continue;
		rc = write_status(s, o, status, ids[i], rec, nrec);
		if (pending && !json_is_true(json_object_get(status, "cached"))) {
			pending[npending].id = ids[i];
			pending[npending].version = version;
			pending[npending++].status = status;
			if (npending == CACHE_BATCH)
				flush_cache(s, rules->fingerprint, pending, &npending);
		} else {
			json_decref(status);
		}
	}
	if (pending)
		flush_cache(s, rules->fingerprint, pending, &npending);
out:
	recoveries_free(rec, nrec);
	free(pending);
	free(ids);
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
		{ "stack", required_argument, NULL, 258 },
		{ "all", no_argument, NULL, 259 },
		{ "force", no_argument, NULL, 260 },
		{ "now", required_argument, NULL, 261 },
		{ "cache-ttl", required_argument, NULL, 262 },
		{ "no-cache", no_argument, NULL, 263 },
		{ "pretty", no_argument, NULL, 264 },
		{ "config", required_argument, NULL, 265 },
		{ "follow", no_argument, NULL, 266 },
		{ "explain", no_argument, NULL, 267 },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct detect_rules rules;
	struct budget_config budget;
	struct opts o;
	int c, now_set = 0, status;

	orch_progname = "orch-detect";
	memset(&o, 0, sizeof(o));
	o.ttl = 5000;
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
			o.stacks = xreallocarray(o.stacks, o.nstacks + 1, sizeof(*o.stacks));
			o.stacks[o.nstacks++] = optarg;
			break;
		case 259:
			o.all = 1;
			break;
		case 260:
			o.force = 1;
			break;
		case 261:
			o.now = cli_int(usage_line, "--now", optarg, 0, INT64_MAX);
			now_set = 1;
			break;
		case 262:
			if (o.cache_flag && o.ttl == DETECT_NO_CACHE)
				cli_usage_error(usage_line, "--cache-ttl and --no-cache cannot be used together");
			o.ttl = cli_int(usage_line, "--cache-ttl", optarg, 0, INT64_MAX);
			o.cache_flag = 1;
			break;
		case 263:
			if (o.cache_flag && o.ttl != DETECT_NO_CACHE)
				cli_usage_error(usage_line, "--cache-ttl and --no-cache cannot be used together");
			o.ttl = DETECT_NO_CACHE;
			o.cache_flag = 1;
			break;
		case 264:
			o.out_flags |= JSON_OUT_PRETTY;
			break;
		case 265:
			o.config = optarg;
			break;
		case 266:
			o.follow = 1;
			break;
		case 267:
			o.explain = 1;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (strcmp(argv[optind], "-") != 0 || o.from_stdin)
			cli_usage_error(usage_line, "unexpected argument '%s'", argv[optind]);
		o.from_stdin = 1;
	}
	if (o.from_stdin && (o.nstacks || o.all))
		cli_usage_error(usage_line, "'-' cannot be mixed with --stack or --all");
	if (o.nstacks && o.all)
		cli_usage_error(usage_line, "--stack and --all cannot be used together");
	if (o.force && !o.all)
		cli_usage_error(usage_line, "--force needs --all");
	if (o.follow && !o.all)
		cli_usage_error(usage_line, "--follow needs --all");
	if (o.follow && o.force)
		cli_usage_error(usage_line, "--force and --follow cannot be used together");
	if (o.follow && now_set)
		cli_usage_error(usage_line, "--now and --follow cannot be used together");
	if (!o.from_stdin && !o.nstacks && !o.all)
		cli_usage_error(usage_line, "no stacks given: use --stack, --all or '-'");
	if (!now_set)
		o.now = orch_now_ms();
	o.budget = &budget;
	if (config_load(&conf, o.config, &err) != 0 ||
	    detect_rules_configure(&rules, &conf, &err) != 0 ||
	    budget_configure(&budget, &conf, &err) != 0)
		cli_die_error(&err);
	config_release(&conf);
	status = o.from_stdin ? filter(&o, &rules) : from_store(&o, &rules);
	detect_rules_release(&rules);
	free(o.stacks);
	return cli_finish(status);
}
