/*
 * cycle.h - one stack's cycle as the store records it: the lease that
 * keeps two pipelines off the same stack, the execution row, the executed
 * graph, and a trace per agent run.
 *
 * The lease lives in the stack's row (lease_owner, lease_host, lease_pid,
 * lease_expires_at, lease_execution_id). An owner is
 * "HOST:PID:START:BOOT:PIDNS": START the process's start time in clock
 * ticks, so a recycled pid is not mistaken for the holder; BOOT the
 * kernel's boot id and PIDNS the inode of its PID namespace, so that two
 * containers of one host name (one kernel, two PID namespaces) do not
 * read each other's pids as their own. A holder is "here" when all of
 * host, boot and namespace are this process's (the old "HOST:PID:START"
 * of orch before issue 10: when its host is). A lease is free when it is
 * empty, when its holder here is gone (crashed, or killed with SIGKILL),
 * or, held from elsewhere (another host, boot or namespace), which
 * cannot be asked, when it has expired; a live holder here keeps it
 * whatever its expiry says. Taking it over marks the abandoned cycle
 * failed, returns the stack's in_progress todos to pending, and kills
 * what its agents left running, because no agent of that stack may be
 * running any more.
 */
#ifndef ORCH_CYCLE_H
#define ORCH_CYCLE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/* This process as a lease owner: a new string "HOST:PID:START:BOOT:PIDNS",
 * HOST $ORCH_HOST when set, else the host name: hosts sharing a
 * PostgreSQL store must be named apart. */
char *cycle_owner_self(void);

/*
 * Every lease OWNER holds now lasts until EXPIRES (wall-clock ms): the
 * heartbeat of a long cycle. 0, or -1 with ERR.
 */
int cycle_renew_leases(struct store *s, const char *owner, int64_t expires,
		       struct orch_error *err);

/* "HOST:PID" of the lease owner OWNER, for people: a new string (OWNER
 * itself when it is not an owner). */
char *cycle_owner_short(const char *owner);

/*
 * Whether a lease held by HOLDER since TAKEN_AT (0: unknown) until
 * EXPIRES still keeps others out at NOW. A holder here (this host, boot
 * and PID namespace) is asked directly (alive, with the same start time),
 * whatever the expiry says: a cycle that waits long for -j slots outlives
 * its lease's estimate. Expiry decides only for a holder elsewhere, which
 * cannot be asked; a lease taken more than ORCH_CLOCK_SLACK_MS in the
 * future (its holder's clock was ahead, or ours has gone back) expires
 * later than it was meant to by as much, and counts as expired.
 */
int cycle_lease_held(const char *holder, int64_t expires, int64_t taken_at,
		     int64_t now);

/* SQL over a row of stacks: when its lease was taken, by its holder's
 * clock (the start of the cycle it holds), or 0. */
#define CYCLE_LEASE_TAKEN_SQL \
	"COALESCE((SELECT started_at FROM executions WHERE id = stacks.lease_execution_id), 0)"

struct cycle_claim {
	int claimed;            /* 1: the cycle is ours to run */
	char *skip_reason;      /* owned; why not, when claimed is 0 */
	int64_t execution_id;   /* the new execution row */
	int64_t cycle;          /* its number for this stack, from 1 */
	char *abandoned_by;     /* owned; the dead holder taken over, or NULL */
	int64_t todos_returned; /* in_progress todos put back to pending */
};

void cycle_claim_release(struct cycle_claim *c);

/*
 * Try to start a cycle of STACK_ID for OWNER, holding the lease for TTL_MS,
 * in one transaction. The start time is read once the write lock is held:
 * a time read before waiting for it could fall before the end time the
 * previous holder records, and the recorded cycles would seem to
 * overlap. Not claimed (0 with skip_reason) when the stack is gone ("stack was deleted"), not running
 * ("stack is paused"), leased by a live holder ("another pipeline holds
 * the stack (HOST:PID)"), or, with PLANNED_AT > 0 (when its graph was
 * made), when a cycle of it has started on another host since: hosts fed
 * the same due stacks would each run every one in turn. (A graph run
 * again here, a saved file, is run.) This trusts the hosts' clocks to
 * agree within the time a cycle takes. Returns 0 (see CLAIM->claimed) or -1 with ERR.
 */
int cycle_begin(struct store *s, int64_t stack_id, const char *owner,
		int64_t ttl_ms, int64_t planned_at, struct cycle_claim *claim,
		struct orch_error *err);

/*
 * cycle_begin's work inside the caller's write transaction
 * (store_begin_stacks, or store_begin), so that many stacks are claimed
 * in one: a transaction's cost is in its locks and WAL writes, not its
 * rows. It takes the stack (store_take_stack), and passes over one that
 * another transaction is writing. On -1 the caller must roll back, which
 * undoes every claim of that transaction.
 */
int cycle_claim_in(struct store *s, int64_t stack_id, const char *owner,
		   int64_t ttl_ms, int64_t planned_at, struct cycle_claim *claim,
		   struct orch_error *err);

/*
 * Recover stack STACK_ID's abandoned cycle, if it has one (a lease whose
 * holder is gone, or a cycle left running without a lease), before
 * anything reads the state it fixes: the cycle is marked failed, the
 * in_progress todos go back to pending, the lease is released. One
 * transaction. Returns 1 with *RECOVERED a new {"abandoned_by": "HOST:PID"
 * or null, "todos_returned": N}, 0 when there was nothing to recover (or
 * a live holder has it), -1 with ERR.
 */
int cycle_recover(struct store *s, int64_t stack_id, json_t **recovered,
		  struct orch_error *err);

/*
 * Of the N stacks IDS, those that may have an abandoned cycle (a lease
 * is set, or a cycle is running): *OUT a new array of *NOUT ids, for
 * cycle_recover(). 0, or -1 with ERR.
 */
int cycle_recovery_candidates(struct store *s, const int64_t *ids, size_t n,
			      int64_t **out, size_t *nout, struct orch_error *err);

/*
 * End the cycle: the execution row's STATUS ("completed" or "failed"),
 * end time (read under the write lock, as in cycle_begin), ERROR (may be
 * NULL) and SUMMARY (borrowed JSON), the executed graph as compact JSON
 * text EXECUTION_TEXT (borrowed: the caller has it for its output too), and the lease released if OWNER still holds
 * it. One transaction. 0 or -1 with ERR.
 */
int cycle_end(struct store *s, int64_t stack_id, int64_t execution_id,
	      const char *owner, const char *status, const char *error,
	      const json_t *summary, const char *execution_text,
	      struct orch_error *err);

/* What one agent run left behind, for cycle_trace(). All borrowed. */
struct cycle_trace {
	int64_t execution_id;
	int64_t stack_id;
	const char *agent;
	int attempt;            /* from 1 */
	int64_t started_at;
	int64_t ended_at;
	const char *status;     /* completed, failed */
	int exit_status;        /* -1 when it did not exit normally */
	const char *input;      /* the context document, or NULL */
	const char *output;     /* what the agent printed, or NULL */
	size_t output_len;      /* bytes in output */
	const char *error;      /* or NULL */
	const json_t *usage;    /* the actions document's usage, or NULL */
	const char *err_output; /* the end of its stderr (spawn.h), or NULL */
	size_t err_output_len;  /* bytes in err_output */
	size_t err_dropped;     /* stderr bytes before those, not kept */
};

/* Insert a trace row (in the caller's transaction, if any). 0 or -1. */
int cycle_trace(struct store *s, const struct cycle_trace *t,
		struct orch_error *err);

#endif
