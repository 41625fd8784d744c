/*
 * The built-in agent's turns inside orch-exec: set up once per role as
 * cmd/orch-agent.c sets up once per process, then one turn per attempt,
 * leaving what that process leaves. Keep the two in step: a test
 * (tests/turns.bats) runs both on the same scripted replies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cassette.h"
#include "escape.h"
#include "faults.h"
#include "llm.h"
#include "orch.h"
#include "provider_caps.h"
#include "quota.h"
#include "turns.h"
#include "usage.h"
#include "xalloc.h"
#include "banned.h"

/* One role's settings, read once. */
struct role {
	struct llm_options o;     /* its pointers into this struct or turns */
	struct llm_providers p;   /* owned: each turn learns in a copy */
	char *prompt;             /* owned */
	struct orch_error err;    /* why the role cannot run; 0 when it can */
};

struct turns {
	struct role roles[ORCH_AGENT_COUNT];
	struct http_pool pool;
	struct orch_error pool_err;  /* libcurl would not start: every turn's */
	struct store *store;         /* borrowed: orch-exec's, for usage */
	struct provider_caps *caps;  /* owned, or NULL: no memory */
	struct quota *quota;         /* owned, or NULL: not shared */
};

struct turn_job {
	struct turns *ts;           /* borrowed */
	struct llm_options o;       /* the role's, with this job's hooks */
	struct llm_providers p;     /* owned: the role's, to learn in */
	json_t *ctx;                /* owned: the context */
	struct cassette *cassette;  /* owned, or NULL */
	struct faults *faults;      /* owned, or NULL */
	struct llm_turn *turn;      /* owned, or NULL: it could not begin */
	int ended;                  /* the turn has ended */
	struct usage_requests rq;   /* what the turn sent */
	struct orch_error early;    /* why it could not begin */
	char *log;                  /* owned: its standard error so far */
	size_t log_len;
};

/* --- once: each role ---------------------------------------------------- */

static void role_setup(struct role *r, const char *agent, const struct config *c)
{
	static const struct llm_flags none;
	char *path = NULL;

	memset(&r->o, 0, sizeof(r->o));
	r->o.role = agent;
	if (llm_configure(&r->o, &r->p, agent, &none, c, &r->err) != 0)
		return;
	if (!(r->prompt = llm_prompt_load(agent, NULL, &path, &r->err)))
		return;
	free(path);
	r->o.system_prompt = r->prompt;
}

struct turns *turns_new(const struct config *c, struct store *s)
{
	struct turns *ts = xcalloc(1, sizeof(*ts));
	struct orch_error err = ORCH_ERROR_INIT;
	int i, shared = 0;

	ts->store = s;
	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		role_setup(&ts->roles[i], orch_agents[i], c);
		shared |= !ts->roles[i].err.status && ts->roles[i].o.shared_quota;
	}
	http_pool_init(&ts->pool, &ts->pool_err);
	/* Without them the turns run, as orch-agent's do without a store. */
	ts->caps = provider_caps_open(store_location(s), &err);
	orch_error_release(&err);
	if (shared)
		ts->quota = quota_open(store_location(s), &err);
	orch_error_release(&err);
	return ts;
}

void turns_free(struct turns *ts)
{
	int i;

	if (!ts)
		return;
	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		llm_providers_release(&ts->roles[i].p);
		free(ts->roles[i].prompt);
		orch_error_release(&ts->roles[i].err);
	}
	http_pool_release(&ts->pool);
	orch_error_release(&ts->pool_err);
	provider_caps_close(ts->caps);
	quota_close(ts->quota);
	free(ts);
}

struct http_pool *turns_pool(struct turns *ts)
{
	return &ts->pool;
}

/* --- each turn ----------------------------------------------------------- */

/* A line on J's standard error, as cli_warn() writes it in orch-agent. */
static void say(struct turn_job *j, const char *line)
{
	char *shown = escape_term_dup(line, strlen(line), 0);
	char *next = xasprintf("%sorch-agent: %s\n", j->log ? j->log : "", shown);

	j->log_len += strlen(next) - (j->log ? strlen(j->log) : 0);
	free(j->log);
	j->log = next;
	free(shown);
}

/* The log of a turn, as orch-agent without -v: warnings only. */
static void on_log(void *arg, enum llm_log_level level, const char *line)
{
	if (level == LLM_LOG_WARN)
		say(arg, line);
}

struct turn_job *turns_start(struct turns *ts, int agent_index, const char *context,
			     size_t len)
{
	struct turn_job *j = xcalloc(1, sizeof(*j));
	struct role *r = &ts->roles[agent_index];
	json_error_t jerr;

	j->ts = ts;
	j->rq = (struct usage_requests)USAGE_REQUESTS_INIT;
	if (r->err.status) {
		orch_error_set(&j->early, r->err.status, "%s", r->err.msg);
		return j;
	}
	if (ts->pool_err.status) {
		orch_error_set(&j->early, ts->pool_err.status, "%s", ts->pool_err.msg);
		return j;
	}
	/* A process reads its cassette and faults when it starts. */
	if (faults_from_env(&j->faults, &j->early) != 0 ||
	    cassette_from_env(&j->cassette, &j->early) != 0)
		return j;
	if (!(j->ctx = json_loadb(context, len, 0, &jerr))) {
		orch_error_set(&j->early, ORCH_EX_DATAERR, "line %d: %s", jerr.line, jerr.text);
		return j;
	}
	if (llm_context_check(j->ctx, r->o.role, &j->early) != 0)
		return j;
	j->o = r->o;
	j->o.cassette = j->cassette;
	j->o.faults = j->faults;
	j->o.log = on_log;
	j->o.log_arg = j;
	j->o.on_request = usage_requests_add;
	j->o.request_arg = &j->rq;
	j->o.quota = j->o.shared_quota &&
		!(j->cassette && j->cassette->mode == CASSETTE_REPLAY) ? ts->quota : NULL;
	llm_providers_copy(&j->p, &r->p);
	if (ts->caps && provider_caps_load(ts->caps, &j->p, orch_now_ms(), &j->early) != 0)
		orch_error_release(&j->early);
	j->turn = llm_turn_new(&j->o, &j->p, j->ctx, &ts->pool, &j->early);
	return j;
}

int turns_step(struct turn_job *j, int64_t *wake_at)
{
	*wake_at = -1;
	if (j->turn && !j->ended && llm_turn_step(j->turn, wake_at))
		return 1;
	j->ended = 1;
	return 0;
}

/* Record what J's requests cost, as orch-agent's account() does. */
static void account(struct turn_job *j, int ok)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct usage_run run;
	char *line;

	if (!usage_run_of(j->ctx, &run))
		return;
	if (j->rq.n && usage_record_in(j->ts->store, &run, &j->rq, ok, &err) < 0) {
		line = xasprintf("%zu request%s not counted in usage: %s", j->rq.n,
				 j->rq.n == 1 ? "" : "s", err.msg);
		say(j, line);
		free(line);
	}
	orch_error_release(&err);
	usage_run_release(&run);
}

void turns_end(struct turn_job *j, struct child *c)
{
	struct orch_error err = ORCH_ERROR_INIT, cerr = ORCH_ERROR_INIT;
	json_t *doc = NULL;
	char *out = NULL, *line;
	int64_t wait = -1;
	int status = ORCH_EX_OK, dropped = 0;

	if (j->turn) {
		if (j->ended) {
			doc = llm_turn_end(j->turn, &err);
		} else {
			llm_turn_free(j->turn);
			dropped = 1;
		}
		j->turn = NULL;
		/* As orch-agent without -v: not remembered is not said. */
		if (j->ts->caps && provider_caps_save(j->ts->caps, &j->p, orch_now_ms(), &cerr) != 0)
			orch_error_release(&cerr);
		wait = llm_providers_wait(&j->p);
		account(j, doc != NULL);
	} else {
		err = j->early;
		j->early = (struct orch_error)ORCH_ERROR_INIT;
	}
	if (doc) {
		char *text = json_dumps(doc, JSON_COMPACT);

		if (text) {
			out = xasprintf("%s\n", text);
			free(text);
		} else {
			status = ORCH_EX_SOFTWARE;
			say(j, "out of memory writing the reply");
		}
	} else if (!dropped) {
		status = err.status ? err.status : ORCH_EX_SOFTWARE;
		say(j, err.msg ? err.msg : "unknown error");
		/* The retry contract (orch-exec(1)): the error, then the wait. */
		if (status == ORCH_EX_TEMPFAIL && wait >= 0) {
			line = xasprintf("%sretry-after-ms: %lld\n", j->log, (long long)wait);
			j->log_len = strlen(line);
			free(j->log);
			j->log = line;
		}
	}
	child_set_ended(c, status, out, out ? strlen(out) : 0, ORCH_MAX_CHILD_OUTPUT, j->log,
			j->log_len);
	j->log = NULL;
	orch_error_release(&err);
	json_decref(doc);
	json_decref(j->ctx);
	cassette_free(j->cassette);
	free(j->faults);
	llm_providers_release(&j->p);
	usage_requests_release(&j->rq);
	orch_error_release(&j->early);
	free(j);
}
