/*
 * detect.h - which agents of a stack have work, and how urgently
 * (README.md, "orch.work_status").
 *
 * Two halves. The rules (detect.c) are pure functions from an orch.snapshot
 * document and a clock to an orch.work_status document: no database, no
 * clock of their own, so tests and `orch-detect -` feed them any state.
 * The store half (detect_cache.c) picks the stacks due for a cycle and
 * keeps the detection cache: a status is served again only while it is
 * younger than the time to live AND the stack's state_version (bumped by
 * triggers on everything detection reads, see store.c) has not moved AND
 * it was computed under the same rules.
 */
#ifndef ORCH_DETECT_H
#define ORCH_DETECT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"
#include "orch.h"
#include "store.h"

/*
 * The thresholds and priorities of the rules, from detect_rules_configure():
 * the detect.* and priority.* keys of lib/config.c's table.
 * Every "more than" is strict: exactly the interval is not yet work.
 */
struct detect_rules {
	int64_t planning_interval_ms; /* planner: more than this since last planning */
	int64_t review_interval_ms;   /* reviewer: more than this since last review */
	int64_t strategic_length;     /* a user message longer than this many code points is strategic */
	const char *const *keywords;  /* any as a substring (ASCII case folded) makes a message strategic */
	size_t nkeywords;             /* entries in keywords */
	char **keywords_owned;        /* the configured keywords, when keywords points here */
	char **done_phases;           /* owned: phases in which the plan is done (the planner's
					 no-todos rule holds off), NULL-terminated */
	size_t ndone_phases;          /* entries in done_phases */
	int64_t fingerprint;          /* of every value above, from detect_rules_configure() */
	int64_t high_priority;        /* builder: a pending todo at or above this is high priority */
	int64_t review_min_completed; /* reviewer: this many todos completed since the last review */
	int64_t unchanged_interval_ms; /* planner, reviewer: rerun on an unchanged stack after this; 0 never */
	struct {
		int no_project;       /* no project idea */
		int no_todos;         /* no pending todos */
		int recommendations;  /* reviewer recommendations waiting */
		int strategic;        /* a strategic user message */
		int stale;            /* planning interval passed */
	} planner;                    /* priorities of the planner's rules */
	struct {
		int high;             /* a high-priority pending todo */
		int normal;           /* pending todos, none high priority */
	} builder;                    /* priorities of the builder's rules */
	struct {
		int user_message;     /* an unprocessed user message */
		int stack_message;    /* an unread inter-stack message */
	} communicator;               /* priorities of the communicator's rules */
	struct {
		int completed;        /* enough todos completed since the last review */
		int artifact;         /* a new artifact since the last review */
		int stale;            /* review interval passed */
	} reviewer;                   /* priorities of the reviewer's rules */
};

/*
 * The rules of configuration C (lib/config.h) into *R: each key C sets
 * replaces its default, and an empty C gives the documented rules (the
 * defaults live in lib/config.c's table alone). 0, or -1 with ERR (65)
 * naming the key and where it was set. Release R with
 * detect_rules_release(), also after a failure.
 *
 * R->fingerprint sums up every threshold, keyword and priority: the cache
 * files a status under the rules that computed it and serves it only to
 * the same rules, so a changed configuration takes effect at once.
 */
int detect_rules_configure(struct detect_rules *r, const struct config *c,
			   struct orch_error *err);
void detect_rules_release(struct detect_rules *r);


/*
 * The orch.work_status of SNAPSHOT (an orch.snapshot document, borrowed) at
 * NOW (ms since the epoch): a NEW reference with "computed_at": NOW and
 * "cached": false, or NULL with ERR set to 65 and a message naming the
 * field at fault ("'todos[2].priority' must be an integer"). Every member
 * the rules read is checked; members they do not read are not.
 */
json_t *detect_work_status(const json_t *snapshot, int64_t now,
			   const struct detect_rules *rules, struct orch_error *err);

/*
 * What the rules read of one stack: detect_work_status() gathers it from a
 * snapshot (checking every member on the way), detect_stacks() from a few
 * set-based queries over the store. Counts are of the whole stack.
 */
struct detect_facts {
	int64_t now;                  /* the clock the rules run at */
	int64_t created_at;           /* stack.created_at */
	int has_project;              /* project is an object */
	int plan_done;                /* the stack's phase is one of done_phases */
	size_t pending;               /* todos with status pending */
	size_t pending_positive;      /* ... of those, priority > 0 */
	size_t pending_high;          /* ... of those, priority >= high_priority */
	size_t completed_since_review; /* completed todos, completed_at > last_review_time */
	int has_completed;            /* some todo is completed */
	size_t recommendations;       /* memory.planner.reviewer_recommendations */
	size_t user_messages;         /* unprocessed user messages */
	size_t strategic;             /* strategic user messages created after
					 last_planning_time, answered or not */
	size_t stack_messages;        /* unread inter-stack messages */
	int has_artifact;             /* artifact is an object */
	int64_t artifact_created_at;  /* artifact.created_at when there is one */
	int64_t last_planning_time;   /* memory.planner, 0 when never */
	int64_t last_review_time;     /* memory.reviewer, 0 when never */
	int64_t content_version;      /* content_version, -1 when unknown */
	int64_t seen_version[ORCH_AGENT_COUNT]; /* last_runs.AGENT.seen_version, -1 when none */
	int64_t seen_cycle[ORCH_AGENT_COUNT];   /* last_runs.AGENT.cycle, 0 when none */
};

/* Facts with nothing known: no version, no agent's last run. */
void detect_facts_init(struct detect_facts *f, int64_t now);

/*
 * The orch.work_status of facts F under RULES, computed_at F->now, with
 * HEADER (the five-member stack header; STOLEN) as its stack. A NEW
 * reference; the facts are trusted, so this cannot fail.
 */
json_t *detect_status_from_facts(json_t *header, const struct detect_facts *f,
				 const struct detect_rules *rules);

/* Whether PHASE is one in which RULES call the plan done. */
int detect_plan_done(const char *phase, const struct detect_rules *rules);

/*
 * The orch.work_status of a stack whose stored state the rules cannot
 * read (a text that is not UTF-8, a memory row that is not JSON): no
 * agent has work, and "error" says why, so the fault stays that stack's
 * (orch-exec records it as the stack's failed cycle, orch-decide backs
 * off) instead of stopping the pipeline. HEADER is stolen. A NEW
 * reference.
 */
json_t *detect_error_status(json_t *header, int64_t now, const char *error);

/* Code points in the UTF-8 string S of LEN bytes. */
size_t detect_utf8_length(const char *s, size_t len);

/*
 * Whether the user message TEXT (LEN bytes, UTF-8) is strategic under
 * RULES: it holds a keyword in any case (ASCII letters folded; an empty
 * keyword matches nothing), or is longer than strategic_length code points.
 */
int detect_is_strategic(const char *text, size_t len,
			const struct detect_rules *rules);

/* --- the store half (detect_cache.c) --- */

enum detect_due_flags {
	DETECT_FORCE = 1 << 0, /* every running stack, whatever its next_run_at */
	DETECT_FOLLOW = 1 << 1, /* detect_left_out_reason(): as --follow chooses,
				   where a held or in-flight stack waits */
};

/*
 * The ids of the stacks due for a cycle at NOW: execution_state 'running'
 * and due (SCHEDULE_DUE_SQL: next_run_at <= NOW, or set by a clock that
 * has gone back since; any next_run_at with DETECT_FORCE), ordered by
 * id. *IDS is a new array of *N ids (NULL when none). 0, or -1 with ERR set.
 */
int detect_due_stacks(struct store *s, int64_t now, unsigned flags,
		      int64_t **ids, size_t *n, struct orch_error *err);

/* A cache time to live that turns the cache off: neither read nor written. */
#define DETECT_NO_CACHE (-1)

/*
 * The work status of stack STACK_ID at NOW into *OUT (a NEW reference);
 * a stack whose stored state the rules cannot read gets
 * detect_error_status().
 * With TTL >= 0 a cached status is served, with "cached": true and its
 * own computed_at, when 0 <= computed_at <= NOW < computed_at + TTL and
 * its state_version is the stack's current one; otherwise the status is
 * computed from one snapshot_load(), and *VERSION is set to the
 * state_version the snapshot was read at (read in the same transaction,
 * so a status is never filed under a newer state than it saw) for
 * detect_cache_put(). A cached row that does not parse is a miss.
 * Returns 1 with *OUT, 0 when there is no such stack, -1 with ERR set
 * (a store error).
 */
int detect_stack(struct store *s, int64_t stack_id, int64_t now,
		 const struct detect_rules *rules, int64_t ttl, json_t **out,
		 int64_t *version, struct orch_error *err);

/*
 * The work statuses of the N stacks IDS (ascending, no duplicates) at NOW,
 * exactly as detect_stack() would give them one by one, from a fixed
 * number of set-based queries over the store's indexes in one read
 * transaction (not a query loop per stack): the stacks and their cache
 * entries, then counts of todos, user messages and unread inter-stack
 * messages grouped by stack for the ones not served from the cache. A
 * stack whose stored state the rules could not read (a value of the wrong
 * type) goes through detect_stack(), which gives its error status.
 * OUT[i] is a NEW reference (NULL when there is no stack IDS[i]) and
 * VERSIONS[i] as detect_stack() sets it. Returns 0; or -1 with ERR, OUT[0]
 * to OUT[*DONE - 1] filled (the caller owns them) and the rest NULL.
 */
int detect_stacks(struct store *s, const int64_t *ids, size_t n, int64_t now,
		  const struct detect_rules *rules, int64_t ttl, json_t **out,
		  int64_t *versions, size_t *done, struct orch_error *err);

/*
 * File STATUS (an orch.work_status, borrowed; its computed_at is the
 * entry's) as stack STACK_ID's cache entry at state VERSION under the
 * rules of fingerprint RULES (detect_rules.fingerprint), replacing any
 * older one. The caller holds the write transaction (store_begin), so
 * many entries cost one commit. 0, or -1 with ERR set.
 */
int detect_cache_put(struct store *s, int64_t stack_id, int64_t version,
		     int64_t rules, const json_t *status, struct orch_error *err);

/* --- why --all leaves a stack out (detect_explain.c) --- */

/*
 * A stack as --all sees it when it chooses: the facts each condition of
 * detect_due_stacks() (and of follow_scan() with --follow) reads, for
 * orch-detect --explain.
 */
struct detect_choice {
	int64_t id;                   /* the stack */
	char *name;                   /* owned */
	char *execution_state;        /* owned: idle, running, paused, stopped */
	int64_t next_run_at;          /* 0: due since it started */
	int64_t consecutive_failures; /* the failure streak orch-decide backs off for */
	int due;                      /* SCHEDULE_DUE_SQL at the NOW it was read at */
	char *holder;                 /* owned: "HOST:PID" of a live lease holder, or NULL */
	int64_t lease_expires_at;     /* the holder's lease's end, when holder is set */
	int in_flight;                /* the caller's: --follow handed it on, its
					 cycle not decided yet (follow.h) */
};

/*
 * Every stack at NOW, by id: *OUT a new array of *N choices (NULL when
 * none), in_flight 0. Free with detect_choices_free(). 0, or -1 with ERR.
 */
int detect_choices(struct store *s, int64_t now, struct detect_choice **out,
		   size_t *n, struct orch_error *err);
/* Free what C owns, not C. */
void detect_choice_release(struct detect_choice *c);
/* Release the N choices V, and free V. */
void detect_choices_free(struct detect_choice *v, size_t n);

/*
 * Why --all, with FLAGS (DETECT_FORCE, DETECT_FOLLOW), leaves stack C out
 * at NOW, the first of its conditions C fails, in their order: "not
 * running (paused)", "not running (idle: never started)", with --follow
 * "a cycle is running: its lease is held by HOST:PID until T UTC" and
 * "handed on, waiting for orch-decide to record its cycle", then "due at
 * T UTC, in 12s" (", in failure backoff after 3 failed cycles in a row"
 * when it has failed). A stack that meets them all became due after the
 * stacks were chosen, and says so. A new string, unescaped: the name and
 * the holder are the store's.
 */
char *detect_left_out_reason(const struct detect_choice *c, int64_t now,
			     unsigned flags);

/* Whether A and B, the same stack at two times, would be explained alike
 * but for the clock. */
int detect_choice_same(const struct detect_choice *a, const struct detect_choice *b);

#endif
