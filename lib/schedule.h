/*
 * schedule.h - when each stack runs next, as the store keeps it:
 * stacks.next_run_at, which orch-decide records after each cycle and
 * which a write that gives a stack work (a user's message, a todo, a
 * start, a message from another stack) pulls forward to now.
 *
 * A wake also stamps stacks.wake_at, so that a decision recorded for a
 * cycle that was already running when the write came does not push the
 * stack back out: orch-decide honours any wake later than the moment the
 * cycle's work was detected ("woken" in README.md's decision rules).
 */
#ifndef ORCH_SCHEDULE_H
#define ORCH_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "orch.h"
#include "store.h"

#define SCHEDULE_TEXT(x) SCHEDULE_TEXT_(x)
#define SCHEDULE_TEXT_(x) #x

/*
 * SQL: whether a row of stacks is due at the parameter NOW ("?1"). Its
 * next run has come; or it lies further ahead than any pause may be
 * (ORCH_MAX_PAUSE_MS); or the decision that set it was stamped more than
 * ORCH_CLOCK_SLACK_MS in the future (last_executed_at), so its next run
 * lies further ahead than the pause that decision gave: in both the
 * clock was ahead when it was set and has been put back since, and the
 * stack would otherwise wait for the wrong time to come round. A
 * decision's pause is at most the configured caps (pause.idle_cap,
 * pause.failure_cap, ...), so every next run more than the longest
 * configured pause ahead is due.
 */
#define SCHEDULE_DUE_SQL(now)                                                   \
	"(next_run_at <= " now                                                  \
	" OR next_run_at > " now " + " SCHEDULE_TEXT(ORCH_MAX_PAUSE_MS)         \
	" OR COALESCE(last_executed_at, 0) > " now " + " SCHEDULE_TEXT(ORCH_CLOCK_SLACK_MS) ")"

/*
 * Make running stack STACK_ID due at NOW, unless it is due sooner. Inside
 * the caller's transaction when there is one. A stack that is not running
 * is left alone (starting it makes it due). 0, or -1 with ERR.
 */
int schedule_wake(struct store *s, int64_t stack_id, int64_t now,
		  struct orch_error *err);

/* The same for every running stack but EXCEPT (a broadcast's sender). */
int schedule_wake_all(struct store *s, int64_t except, int64_t now,
		      struct orch_error *err);

/* What orch-decide records after deciding a cycle. */
struct schedule_decision {
	int64_t stack_id;
	int64_t execution_id;  /* 0: no cycle row to annotate */
	const char *action;    /* continue, pause, stop */
	const char *rule;      /* the rule that fired */
	const char *reason;
	int64_t pause_ms;
	int64_t next_at;       /* when the stack runs next */
	int64_t detected_at;   /* 0 when unknown: then no wake is honoured */
	int failed;            /* the failure streak grows, else it ends */
	int floor;             /* next_at is a floor (the retry contract): a
				  wake during the cycle does not bring it sooner */
	int stop;              /* a total token budget is reached: the stack
				  is stopped, as `orch-stack stop` would */
	int64_t now;           /* last_executed_at */
};

/*
 * Record D in one transaction: the cycle's decision, and the stack's next
 * run (the sooner of D->next_at and any wake after D->detected_at, unless
 * D->floor),
 * cycle count and failure streak. Error 65, with nothing recorded, for a
 * document with no execution id, for an execution that is not a cycle of
 * the stack (its id reused, say), and for one decided already (a
 * replay): one document's fault, which the caller reports and goes past.
 * 0, or -1 with ERR.
 */
int schedule_record(struct store *s, const struct schedule_decision *d,
		    struct orch_error *err);

/*
 * The earliest next_run_at of a running stack into *AT, -1 when no stack
 * is running; a stack due by the clock's mistake (SCHEDULE_DUE_SQL)
 * counts as due now. 0, or -1 with ERR.
 */
int schedule_earliest(struct store *s, int64_t *at, struct orch_error *err);

/* A running stack as orch-detect --follow sees it. */
struct schedule_entry {
	int64_t id;
	int64_t next_run_at;
	int64_t total_cycles;  /* moves when orch-decide records a cycle */
	int held;              /* a live pipeline holds its lease */
	int due;               /* due at the scan's NOW (SCHEDULE_DUE_SQL) */
};

/*
 * Every running stack at NOW, by id: *OUT a new array of *N entries
 * (NULL when none). 0, or -1 with ERR.
 */
int schedule_running(struct store *s, int64_t now, struct schedule_entry **out,
		     size_t *n, struct orch_error *err);

#endif
