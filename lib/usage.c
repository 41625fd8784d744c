#include <stdlib.h>
#include <string.h>

#include "orch.h"
#include "store_side.h"
#include "traces.h"
#include "usage.h"
#include "xalloc.h"
#include "banned.h"

int usage_run_of(const json_t *ctx, struct usage_run *run)
{
	const json_t *stack = json_object_get(json_object_get(ctx, "snapshot"), "stack");
	const json_t *id = json_object_get(stack, "id");
	const char *agent = json_string_value(json_object_get(ctx, "agent"));

	if (!json_is_integer(id) || json_integer_value(id) <= 0 || !agent)
		return 0;
	memset(run, 0, sizeof(*run));
	run->stack_id = json_integer_value(id);
	run->execution_id = json_integer_value(json_object_get(ctx, "execution_id"));
	run->cycle = json_integer_value(json_object_get(ctx, "cycle"));
	run->agent = xstrdup(agent);
	run->run_at = json_integer_value(json_object_get(ctx, "now"));
	return 1;
}

void usage_run_release(struct usage_run *run)
{
	free(run->agent);
	run->agent = NULL;
}

void usage_requests_add(void *arg, const struct llm_request_record *r)
{
	struct usage_requests *rq = arg;
	struct llm_request_record *c;

	if (rq->n == rq->alloc) {
		rq->alloc = rq->alloc ? 2 * rq->alloc : 8;
		rq->v = xreallocarray(rq->v, rq->alloc, sizeof(*rq->v));
	}
	c = &rq->v[rq->n++];
	*c = *r;
	c->provider = xstrdup(r->provider);
	c->base_url = xstrdup(r->base_url);
	c->model = xstrdup(r->model);
	c->outcome = xstrdup(r->outcome);
}

void usage_requests_release(struct usage_requests *rq)
{
	size_t i;

	for (i = 0; i < rq->n; i++) {
		free((char *)rq->v[i].provider);
		free((char *)rq->v[i].base_url);
		free((char *)rq->v[i].model);
		free((char *)rq->v[i].outcome);
	}
	free(rq->v);
	rq->v = NULL;
	rq->n = rq->alloc = 0;
}

/* Bind the count V at I: NULL when not said or beyond belief (traces.h). */
static void bind_count(struct stmt *st, int i, int64_t v)
{
	if (v < 0 || v > TRACES_TOKENS_MAX)
		stmt_bind_null(st, i);
	else
		stmt_bind_int(st, i, v);
}

static int insert(struct store *s, const struct usage_run *run,
		  const struct llm_request_record *r, int run_ok, int64_t *written,
		  struct orch_error *err)
{
	/* Through SELECT: a stack removed meanwhile takes nothing, and an
	 * execution no longer there is none. */
	struct stmt *st = store_prepare(s,
		"INSERT INTO llm_requests (stack_id, execution_id, cycle, agent, run_at, run_ok,"
		" seq, round, retry, provider, base_url, model, http_status, outcome, started_at,"
		" duration_ms, prompt_tokens, completion_tokens, cached_tokens)"
		" SELECT id, (SELECT e.id FROM executions e WHERE e.id = ?2), ?3, ?4, ?5, ?6,"
		"  ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19"
		" FROM stacks WHERE id = ?1", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, run->stack_id);
	stmt_bind_int(st, 2, run->execution_id);
	if (run->cycle > 0)
		stmt_bind_int(st, 3, run->cycle);
	stmt_bind_text(st, 4, run->agent);
	stmt_bind_int(st, 5, run->run_at);
	stmt_bind_int(st, 6, run_ok);
	stmt_bind_int(st, 7, r->seq);
	stmt_bind_int(st, 8, r->round);
	stmt_bind_int(st, 9, r->retry);
	stmt_bind_text(st, 10, r->provider);
	stmt_bind_text(st, 11, r->base_url);
	stmt_bind_text(st, 12, r->model);
	if (r->http_status > 0)
		stmt_bind_int(st, 13, r->http_status);
	stmt_bind_text(st, 14, r->outcome);
	stmt_bind_int(st, 15, r->started_at);
	stmt_bind_int(st, 16, r->duration_ms > 0 ? r->duration_ms : 0);
	bind_count(st, 17, r->prompt_tokens);
	bind_count(st, 18, r->completion_tokens);
	bind_count(st, 19, r->cached_tokens);
	if (store_step_done(s, st, "recording a request", err) != 0)
		return -1;
	*written += store_changes(s);
	return 0;
}

int usage_record_in(struct store *s, const struct usage_run *run,
		    const struct usage_requests *rq, int run_ok, struct orch_error *err)
{
	int64_t written = 0;
	size_t i;
	int rc = 0;

	if (rq->n == 0)
		return 0;
	/* The stack's rows only: other stacks' turns record theirs at once. */
	if ((run->stack_id > 0 ? store_begin_stack(s, run->stack_id, err) : store_begin(s, err)) != 0)
		return -1;
	for (i = 0; rc == 0 && i < rq->n; i++)
		rc = insert(s, run, &rq->v[i], run_ok, &written, err);
	if (rc == 0)
		rc = store_commit(s, err);
	else
		store_rollback(s);
	return rc == 0 ? (int)written : -1;
}

int usage_record(const char *path, const struct usage_run *run,
		 const struct usage_requests *rq, int run_ok, struct orch_error *err)
{
	struct store *s;
	int rc;

	if (rq->n == 0)
		return 0;
	if (!(s = store_open_side(path, USAGE_BUSY_MS, "llm_requests", err)))
		return -1;
	rc = usage_record_in(s, run, rq, run_ok, err);
	store_close(s);
	return rc;
}
