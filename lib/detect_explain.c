/*
 * Why orch-detect --all leaves a stack out: the conditions of
 * detect_due_stacks() and follow_scan(), read from the same SQL
 * (SCHEDULE_DUE_SQL, cycle_lease_held), said in words.
 */
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "detect.h"
#include "orch.h"
#include "schedule.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

struct choices {
	struct detect_choice *v; /* owned */
	size_t n, alloc;         /* entries used, allocated */
	int64_t now;             /* the clock of the query */
};

static int choice_row(struct stmt *st, void *arg)
{
	struct choices *c = arg;
	struct detect_choice *e;
	const char *holder = store_column_text(st, 5);
	int64_t expires = stmt_int(st, 6);

	if (c->n == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 64;
		c->v = xreallocarray(c->v, c->alloc, sizeof(*c->v));
	}
	e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	e->id = stmt_int(st, 0);
	e->name = store_column_strdup(st, 1);
	e->execution_state = store_column_strdup(st, 2);
	e->next_run_at = stmt_int(st, 3);
	e->consecutive_failures = stmt_int(st, 4);
	/* As schedule_running() judges it, for follow_scan(). */
	if (holder && *holder &&
	    cycle_lease_held(holder, expires, stmt_int(st, 7), c->now)) {
		e->holder = cycle_owner_short(holder);
		e->lease_expires_at = expires;
	}
	e->due = stmt_int(st, 8);
	return 0;
}

int detect_choices(struct store *s, int64_t now, struct detect_choice **out,
		   size_t *n, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT id, name, execution_state, next_run_at,"
					 " consecutive_failures, lease_owner,"
					 " COALESCE(lease_expires_at, 0), " CYCLE_LEASE_TAKEN_SQL ","
					 " " SCHEDULE_DUE_SQL("?1")
					 " FROM stacks ORDER BY id", err);
	struct choices c = { NULL, 0, 0, now };

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, now);
	if (store_each(s, st, choice_row, &c, "listing stacks", err) != 0) {
		detect_choices_free(c.v, c.n);
		return -1;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

void detect_choice_release(struct detect_choice *c)
{
	free(c->name);
	free(c->execution_state);
	free(c->holder);
	c->name = c->execution_state = c->holder = NULL;
}

void detect_choices_free(struct detect_choice *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		detect_choice_release(&v[i]);
	free(v);
}

/* "due at T UTC, in 12s", and the failure streak that put it there. */
static char *not_due(const struct detect_choice *c, int64_t now)
{
	char when[TERM_TIME_SIZE], span[TERM_TIME_SIZE];

	term_utc(c->next_run_at, when);
	term_span(c->next_run_at - now, span);
	if (c->consecutive_failures <= 0)
		return xasprintf("due at %s UTC, in %s", when, span);
	if (c->consecutive_failures == 1)
		return xasprintf("due at %s UTC, in %s, in failure backoff after 1 failed cycle",
				 when, span);
	return xasprintf("due at %s UTC, in %s, in failure backoff after %lld failed cycles"
			 " in a row", when, span, (long long)c->consecutive_failures);
}

char *detect_left_out_reason(const struct detect_choice *c, int64_t now,
			     unsigned flags)
{
	char when[TERM_TIME_SIZE];

	if (strcmp(c->execution_state, "running") != 0)
		return xasprintf("not running (%s)", strcmp(c->execution_state, "idle") == 0
				 ? "idle: never started" : c->execution_state);
	if ((flags & DETECT_FOLLOW) && c->holder) {
		term_utc(c->lease_expires_at, when);
		/* A holder here is asked, not timed: it may outlive its lease. */
		if (c->lease_expires_at > now)
			return xasprintf("a cycle is running: its lease is held by %s until %s UTC",
					 c->holder, when);
		return xasprintf("a cycle is running: its lease is held by %s, alive past"
				 " the lease's end at %s UTC", c->holder, when);
	}
	if ((flags & DETECT_FOLLOW) && c->in_flight)
		return xstrdup("handed on, waiting for orch-decide to record its cycle");
	if (!(flags & DETECT_FORCE) && !c->due)
		return not_due(c, now);
	return xstrdup("became due after the stacks were chosen");
}

static int same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int detect_choice_same(const struct detect_choice *a, const struct detect_choice *b)
{
	return a->id == b->id && same_text(a->name, b->name) &&
	       same_text(a->execution_state, b->execution_state) &&
	       a->next_run_at == b->next_run_at &&
	       a->consecutive_failures == b->consecutive_failures &&
	       a->due == b->due && same_text(a->holder, b->holder) &&
	       a->lease_expires_at == b->lease_expires_at &&
	       a->in_flight == b->in_flight;
}
