/*
 * exec.h - running execution graphs: the scheduler behind orch-exec.
 *
 * Every graph added is one stack's cycle. exec_run() claims each stack's
 * lease (cycle.h), then runs the nodes of all graphs from one poll() loop:
 * a node starts as soon as the nodes it depends on have completed and a
 * slot is free (at most `jobs` children at once, across all stacks),
 * highest priority first. Each node is one agent run (or several, with
 * retries): context_build(), the command as a child (spawn.h), or the
 * built-in agent's turn in this process (turns.h), then its actions
 * validated and applied in one transaction (actions.h). A node
 * whose dependency did not complete is skipped; a failure never stops a
 * sibling. When a stack's last node ends, its orch.execution document is
 * recorded (cycle_end) and handed to the caller.
 */
#ifndef ORCH_EXEC_H
#define ORCH_EXEC_H

#include <stdint.h>
#include <jansson.h>

#include "budget.h"
#include "error.h"
#include "orch.h"
#include "store.h"

/* What an observer is told: every attempt that ran a child, as it starts
 * and as it ends. All pointers are borrowed for the call only. */
enum exec_event_kind {
	EXEC_STACK_QUEUED,       /* a graph was read: only .stack is set */
	EXEC_ATTEMPT_STARTED,
	EXEC_ATTEMPT_ENDED,
};

struct exec_event {
	enum exec_event_kind kind;
	const char *stack;       /* the stack's name */
	const char *agent;       /* the node's agent */
	int slot;                /* its lane: 0 to jobs - 1, free again once ended */
	int attempt;             /* from 1 */
	int64_t started_mono;    /* monotonic ms the attempt started */
	int64_t ended_mono;      /* monotonic ms it ended; 0 on STARTED */
	const char *status;      /* on ENDED: "completed" or "failed" */
	const char *detail;      /* on ENDED: the result, or the error */
	int final;               /* on ENDED: no further attempt follows */
};

typedef void (*exec_observe_fn)(const struct exec_event *ev, void *arg);

struct exec_config {
	char **argv[ORCH_AGENT_COUNT]; /* borrowed: each agent's command words */
	char **env[ORCH_AGENT_COUNT];  /* borrowed: each agent's environment, or
					  NULL for this process's */
	int jobs;                /* children running at once, all stacks: 1 or more */
	int64_t timeout_ms;      /* per attempt; 0 for none */
	int64_t kill_after_ms;   /* from SIGTERM to SIGKILL on a timeout */
	int retries;             /* further attempts after a failed one */
	int park_after;          /* failed runs on one todo or message before
				    it is parked; 0 for never */
	int64_t retry_delay_ms;  /* first backoff; doubled per retry, with jitter */
	int barrier;             /* a wave starts when the last one has ended */
	int64_t wave_delay_ms;   /* and this long after it (implies barrier) */
	const char *owner;       /* borrowed: the lease owner, cycle_owner_self() */
	int64_t lease_ms;        /* how long a lease lasts unrenewed; 0: as long
				    as the longest cycle the flags allow. Held
				    leases are renewed every third of it */
	exec_observe_fn observe; /* or NULL: told of each attempt (progress, traces) */
	int watch_stdout;        /* stop as on SIGTERM when standard output is a
				    pipe whose reader has gone */
	void *observe_arg;       /* borrowed; handed to observe */
	struct budget_config *budget; /* borrowed, or NULL: the token
					       budgets each run must fit */
	struct turns *turns;     /* borrowed, or NULL: the built-in agent's
				    turns in this process (turns.h), for the
				    agents in_process says */
	int in_process[ORCH_AGENT_COUNT]; /* 1: the agent is the built-in one,
					     run through turns, not argv */
};

/* Called with each stack's orch.execution document (borrowed) as soon as
 * the stack's cycle ends, and the same as compact JSON text (borrowed;
 * NULL when memory ran out), which the store was given too; a nonzero
 * return stops the run (a write error). */
typedef int (*exec_emit_fn)(const json_t *execution, const char *compact,
			    void *arg);

struct exec;

struct exec *exec_new(struct store *s, const struct exec_config *cfg);
void exec_free(struct exec *e);

/*
 * Check GRAPH (an orch.graph document; STOLEN, also on failure) and queue
 * it. Error 65 names the field: "nodes[1]: 'deps' names 'reviewer', which
 * is not an earlier node". More than ORCH_MAX_NODES nodes in all is 65 too.
 */
int exec_add(struct exec *e, json_t *graph, struct orch_error *err);

/*
 * Run everything queued, and with IN_FD >= 0 every graph read from IN_FD
 * as it comes (an NDJSON stream, read without ever waiting for more while
 * agents run), calling EMIT for each stack as its cycle ends. A stack
 * whose cycle is running here already is not run twice: its document
 * comes back not run. Returns once the input has ended and every cycle is
 * recorded: 0 when all went well (agents may have failed: that is data),
 * or -1 with ERR: a document that is not a graph (65, "line N: ..."; the
 * stacks read with it that had not started are dropped, the others run
 * to their end), a store error recording a cycle (the other stacks still
 * ran), or a stop: SIGINT, SIGTERM, SIGHUP or another process's SIGPIPE
 * (75), EMIT's failure or, with watch_stdout, standard output's reader
 * gone (70). On a stop, running agents are killed, nodes not run
 * skipped, stacks not claimed left unclaimed, and every cycle recorded
 * as failed, each wait for the write lock cut to STORE_STOP_WAIT_MS in
 * all (a cycle it cannot record is recovered by the next pipeline).
 */
int exec_run(struct exec *e, int in_fd, exec_emit_fn emit, void *arg,
	     struct orch_error *err);

/*
 * orch-exec --dry-run: read every graph from IN_FD (a document that is
 * not a graph is 65, and nothing is emitted), then for each stack build
 * what a run would, in one write transaction that is rolled back: its
 * claim (a stack paused, deleted, held by another pipeline or twice in
 * the input is not run), each node's context in the order the scheduler
 * would start them, the builder's todo claimed so the nodes after it see
 * what they would. Nothing is committed, no agent runs, no trace is
 * written: the store is left as it was. EMIT is called with each stack's
 * orch.estimate document (README.md): per node its prompt size (the
 * context's bytes, estimate_prompt_tokens()), the completion tokens and
 * duration its history expects (estimate_expect()), and per stack the
 * totals and the critical path (estimate_schedule()) under the config's
 * jobs, barrier and wave delay. The context is the stack as it is now:
 * what an earlier wave would change (the planner's new todos) is not in
 * it. 0, or -1 with ERR (65 input, a store error, 70 EMIT failed).
 */
int exec_dry_run(struct exec *e, int in_fd, exec_emit_fn emit, void *arg,
		 struct orch_error *err);

#endif
