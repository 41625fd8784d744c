/*
 * exec_int.h - what the scheduler (lib/exec.c: reading graphs, claiming
 * stacks, choosing the next node, the poll() loop) and the running of
 * one node (lib/exec_node.c: its attempts, its actions applied, its
 * trace, the stack's document once its last node ends) share. Not for
 * other modules: they use exec.h.
 */
#ifndef ORCH_EXEC_INT_H
#define ORCH_EXEC_INT_H

#include <poll.h>
#include <stdint.h>
#include <jansson.h>

#include "actions.h"
#include "cycle.h"
#include "exec.h"
#include "jsonio.h"
#include "spawn.h"
#include "turns.h"

#define RETRY_DELAY_CAP_MS 60000
/* How long orch-exec waits, before it exits, for what agents left to die
 * of SIGKILL (a process in uninterruptible sleep can take longer). */
#define ORPHAN_WAIT_MS 2000
/* Stacks claimed per write transaction: enough to share its cost, few
 * enough that another pipeline waits for the lock only a few ms. */
#define CLAIM_BATCH 128

enum node_state {
	NODE_WAITING,  /* for its dependencies, its wave, or a free slot */
	NODE_BACKOFF,  /* failed; the next attempt waits until not_before */
	NODE_RUNNING,  /* its child is running */
	NODE_DONE,     /* status says how it ended */
};

struct stack;

struct node {
	struct stack *stack;     /* borrowed: the stack it belongs to */
	json_t *json;            /* borrowed from stack->graph: the node object */
	const char *agent;       /* borrowed from json */
	int agent_index;         /* in orch_agents */
	int64_t priority;        /* 0-10 */
	const char *reason;      /* borrowed from json */
	int64_t wave;            /* dependency level */
	size_t deps[ORCH_AGENT_COUNT]; /* indexes into stack->nodes */
	size_t ndeps;            /* entries used in deps */
	enum node_state state;
	const char *status;      /* static string once done: completed, failed, skipped */
	int attempts;            /* runs started */
	int64_t not_before;      /* monotonic ms; a retry waits till then */
	int64_t retry_after_ms;  /* the longest wait an attempt asked for (the
				    retry contract), -1 when none did */
	int64_t started_at;      /* wall ms of the first attempt, 0 before */
	int64_t ended_at;        /* wall ms it ended, 0 before */
	int64_t started_mono;    /* monotonic ms of the first attempt */
	int64_t ended_mono;      /* monotonic ms it ended */
	int64_t attempt_started_at; /* wall ms of the current attempt */
	int64_t attempt_started_mono; /* monotonic ms of the current attempt */
	int slot;                /* lane of the running attempt, -1 when none */
	struct child child;      /* the current attempt's process, or what
				    its in-process turn left (turns_end) */
	struct turn_job *job;    /* owned: the current attempt's in-process
				    turn while it runs, or NULL */
	int64_t job_wake;        /* monotonic ms the turn next needs a step
				    at, -1 when it waits for the pool */
	struct agent_task task;  /* what the current attempt was given */
	int charged;             /* the current attempt ran and failed by what it
				    was given, not by the world (69, 75) or by
				    orch-exec: its todo or message counts it */
	char *context;           /* owned: the context as sent, or NULL */
	char *trace_input;       /* owned: the context as recorded, or NULL */
	char *result;            /* owned: what it did, for people, or NULL */
	json_t *effects;         /* owned: actions_effects() of its output, or NULL */
	char *error;             /* owned: why it failed or was skipped, or NULL */
	int budget;              /* skipped: a token budget refused it */
};

struct stack {
	json_t *graph;           /* owned: the input, becomes the orch.execution */
	int64_t id;              /* the stack's id */
	const char *name;        /* borrowed from graph */
	struct node *nodes;      /* owned: in the graph's node order */
	size_t nnodes;           /* entries in nodes */
	int64_t nwaves;          /* 1 + the highest wave */
	int64_t wave_left[ORCH_AGENT_COUNT];    /* nodes of each wave not yet done */
	int64_t wave_open_at[ORCH_AGENT_COUNT]; /* monotonic ms each wave may start */
	struct cycle_claim claim;  /* the lease and the execution row */
	size_t finished;         /* nodes done */
	int running;             /* nodes running now */
	int max_parallel;        /* most nodes running at once */
	int64_t started_mono;    /* when its cycle began */
	int claim_tried;         /* claim_new() has looked at it */
	int twin;                /* its stack's cycle runs here already: not claimed */
	int done;                /* recorded and handed on */
	/* What pick_node last found, so it need not look at every node of
	 * every stack for each start: a node's readiness changes only when a
	 * node of its own stack changes state, or when time passes. */
	int stale;               /* a node changed state since the last look */
	struct node *ready;      /* borrowed: the best node ready then, or NULL */
	int64_t look_again_at;   /* monotonic ms a gate opens (retry, wave), or -1 */
};

struct exec {
	struct store *store;     /* borrowed */
	struct exec_config cfg;  /* copied; its pointers borrowed */
	struct stack **stacks;   /* owned: in input order; done ones are let go */
	size_t nstacks;          /* entries used */
	size_t stacks_done;      /* of them, recorded and handed on */
	size_t alloc;            /* entries allocated */
	size_t total_nodes;      /* of the stacks not done, against ORCH_MAX_NODES */
	struct json_reader in;   /* the graphs' input, when exec_run() reads one */
	int reading;             /* the input is open */
	struct orch_error input_error; /* why reading stopped early, if it did */
	struct node **running;   /* owned array of borrowed nodes now running */
	struct node **slots;     /* owned: lane i's running node, or NULL; jobs entries */
	int nrunning;            /* entries used in running */
	struct pollfd *fds;      /* owned: poll() set, room for 3 + 3 * jobs */
	int nturns;              /* of the nodes running, in-process turns */
	int unsent;              /* turns started whose first request is not
				    yet on its way (send_turns()) */
	uint64_t rng;            /* xorshift state for retry jitter */
	exec_emit_fn emit;       /* where finished stacks go */
	void *emit_arg;          /* its argument */
	struct orch_error first_error; /* the first failure to record a cycle */
	int emit_failed;         /* emit returned nonzero (or stdout's reader
				    is gone): nothing more is written; stop */
	int emit_errno;          /* errno of that failure */
	char *stop_reason;       /* owned: why the run stops (a signal, the
				    output), once it does; NULL before */
	int stop_status;         /* its exit status: 75 signal, 70 output */
	int64_t next_renew;      /* monotonic ms the held leases are renewed next */
};

/* Free what node N owns; it can be run again. */
void exec_node_release(struct node *n);

/* Every change of a node's state comes here: it is what tells the
 * scheduler that the stack's last look is out of date. */
void exec_node_set_state(struct node *n, enum node_state state);

/* N is done with STATUS (a static string) and ERROR_OWNED (taken, or
 * NULL); its stack's cycle ends with its last node. */
void exec_node_done(struct exec *e, struct node *n, const char *status,
		    char *error_owned);

/* Record ST's cycle (cycle_end), hand its document to the emitter, and
 * let what it holds go. */
void exec_finish_stack(struct exec *e, struct stack *st);

/* Start N's next attempt: its context, then its command as a child; a
 * failure to start is an attempt failed. Returns 0, or 1 when N is held
 * back, untouched: descriptors ran out while other children run, and
 * nothing more starts until one of them ends. */
int exec_start_node(struct exec *e, struct node *n);

/* N's child has ended: apply what it printed, or fail the attempt. */
void exec_attempt_ended(struct exec *e, struct node *n);

/* Mark each stack queued at FROM or later that comes earlier too, among
 * the live cycles and the new ones, a twin: not to be claimed, its
 * skip_reason set. */
void exec_skip_twins(struct exec *e, size_t from);

/* An attempt failed with MSG (taken): record it, give the builder's
 * todo back (or park it, or the communicator's message, when the attempt
 * was charged and they have failed exec.park_after times), and retry
 * after a backoff unless attempts are used up or the failure will not
 * change (FINAL). */
void exec_attempt_failed(struct exec *e, struct node *n, char *msg,
			 int exit_status, int final);

#endif
