/*
 * usage.h - what orch-agent spent, request by request, kept in the store
 * (the llm_requests table) by orch-agent itself, so that a run that fails,
 * and so prints no actions document with its usage, is counted all the
 * same. `orch-stack usage` and the budgets (budget.h) read it through
 * history_usage() (history.h).
 *
 * A run is known by the orch.context orch-agent was given: its snapshot's
 * stack id, its agent, its execution_id and cycle, and its "now", which
 * orch-exec stamps with the attempt's start, the started_at of the
 * attempt's trace: that is how a request finds its run. A context with no
 * stack (one written by hand) is a run with nothing to record.
 *
 * The store is opened as store_side.h says (never created or migrated,
 * USAGE_BUSY_MS at most for a lock); a request the store cannot take is
 * lost, and the caller says so.
 */
#ifndef ORCH_USAGE_H
#define ORCH_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "llm.h"
#include "store.h"

#define USAGE_BUSY_MS 2000 /* the longest wait for a lock */

/* The run a context is for. */
struct usage_run {
	int64_t stack_id;     /* from snapshot.stack.id */
	int64_t execution_id; /* 0: none */
	int64_t cycle;        /* 0: none */
	char *agent;          /* owned */
	int64_t run_at;       /* the context's "now" */
};

/* The requests of a turn, as llm.h records them. */
struct usage_requests {
	struct llm_request_record *v; /* owned, and each one's strings (const
					 cast away by usage_requests_release) */
	size_t n;
	size_t alloc;
};

#define USAGE_REQUESTS_INIT { NULL, 0, 0 }

/*
 * RUN for the orch.context CTX: 1, or 0 when CTX names no stack (nothing
 * to record; RUN untouched). Release with usage_run_release().
 */
int usage_run_of(const json_t *ctx, struct usage_run *run);
void usage_run_release(struct usage_run *run);

/* Keep a copy of R in RQ: an llm_request_fn (ARG is RQ). */
void usage_requests_add(void *arg, const struct llm_request_record *r);
void usage_requests_release(struct usage_requests *rq);

/*
 * Record RQ's requests of RUN, the turn having ended with a valid document
 * (RUN_OK 1) or not, in one transaction, in the store at PATH (NULL:
 * $ORCH_DB, else the default). A stack no longer there takes nothing.
 * Returns the requests written, or -1 with ERR: 66 when there is no
 * database or it has no llm_requests table, 75 when the lock was not had
 * in time.
 */
int usage_record(const char *path, const struct usage_run *run,
		 const struct usage_requests *rq, int run_ok, struct orch_error *err);

/* The same in the open store S: orch-exec's own, for its in-process
 * turns (turns.h). */
int usage_record_in(struct store *s, const struct usage_run *run,
		    const struct usage_requests *rq, int run_ok, struct orch_error *err);

#endif
