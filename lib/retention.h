/*
 * retention.h - what the store keeps and what it prunes: the one place
 * that decides it, for `orch-stack gc` and for the loop (orch-decide,
 * after each decision, at a bounded cost).
 *
 * What grows without bound is pruned: a stack's cycles (executions, with
 * their graphs and the traces of their agent runs; the full-text index
 * follows through its triggers), its artifact versions, the inter-stack
 * messages it has read and the broadcasts it sent, and the detection
 * cache rows of stacks that are gone. A cycle is pruned when it is
 * beyond the newest retain.cycles of its stack, or older than retain.age;
 * a version when it is beyond the newest retain.versions; a message to
 * one stack once that stack has read it; a broadcast once it is older
 * than retain.age. The tokens of a pruned run are kept, per stack, agent
 * and UTC day (usage_days), so `orch-stack usage` still counts them.
 *
 * Never pruned: a running cycle (an abandoned one included, until the
 * next pipeline recovers it) and its runs; a stack's latest cycle and its
 * latest artifact version, whatever their age (the next cycle and the
 * next version are numbered from them); an unread message; the received
 * messages of a stack while one of its cycles is running (an agent may
 * still mark them read); todos, user messages and memory, which belong
 * to the person (orch-stack todo rm/clear, messages clear, memory clear).
 */
#ifndef ORCH_RETENTION_H
#define ORCH_RETENTION_H

#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

/* What is kept; 0 keeps all of that kind. */
struct retention_rules {
	int64_t cycles;   /* retain.cycles: the newest cycles of a stack */
	int64_t age_ms;   /* retain.age: cycles and broadcasts younger than this */
	int64_t versions; /* retain.versions: the newest artifact versions of a stack */
};

/* How many rows of each kind the loop prunes after one decision, at
 * most: a cycle adds one of each, so a backlog shrinks by several a cycle
 * while no decision waits long (`orch-stack gc` takes a backlog at once). */
#define RETENTION_STEP 8

/* The pages of merging the full-text index (of about 1,000 bytes each)
 * after a decision that pruned runs: a prune leaves deletion markers in
 * the index until its segments are merged. */
#define RETENTION_TIDY_PAGES 64

/* What was pruned (or, in a dry run, would be). */
struct retention_counts {
	int64_t cycles;   /* executions, each with its graph */
	int64_t runs;     /* their traces: agent runs */
	int64_t versions; /* artifact versions */
	int64_t messages; /* inter-stack messages */
	int64_t cache;    /* detection cache rows of deleted stacks */
};

/* The rules C sets (retain.*), else the defaults. 0, or -1 with ERR (65). */
int retention_configure(struct retention_rules *r, const struct config *c,
			struct orch_error *err);

/*
 * Prune what R no longer keeps of stack STACK_ID at NOW, at most LIMIT
 * rows of each kind (0: all), oldest first, in one transaction; with DRY,
 * change nothing and count what would go. Adds to *COUNTS. 0, or -1 with
 * ERR (75 when the database stays locked).
 */
int retention_prune_stack(struct store *s, const struct retention_rules *r,
			  int64_t stack_id, int64_t now, int64_t limit, int dry,
			  struct retention_counts *counts, struct orch_error *err);

/*
 * The same for what belongs to no stack: broadcasts of deleted stacks
 * older than retain.age, and the detection cache rows of deleted stacks.
 */
int retention_prune_orphans(struct store *s, const struct retention_rules *r,
			    int64_t now, int64_t limit, int dry,
			    struct retention_counts *counts, struct orch_error *err);

/*
 * PAGES pages of work merging the full-text index's segments, in a
 * transaction of its own (orch-stack gc, after pruning, until the index
 * stops shrinking); *SIZE: the index's rows after it.
 */
int retention_tidy(struct store *s, int64_t pages, int64_t *size, struct orch_error *err);

/*
 * The loop's share, after stack STACK_ID's decision: RETENTION_STEP rows
 * of each kind of that stack's, and of the orphans' broadcasts, and when
 * runs went, RETENTION_TIDY_PAGES of merging the full-text index. 0, or -1
 * with ERR; a failure costs nothing but the pruning, which the next
 * decision takes up.
 */
int retention_after_decision(struct store *s, const struct retention_rules *r,
			     int64_t stack_id, int64_t now, struct orch_error *err);

#endif
