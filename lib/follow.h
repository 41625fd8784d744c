/*
 * follow.h - which running stacks orch-detect --follow hands on next, and
 * when it must look again.
 *
 * A long-lived pipeline (orch-detect --all --follow | orch-graph |
 * orch-exec | orch-decide) lets each stack cycle at its own pace: a stack
 * is handed on when it is due, and not again while its cycle is in
 * flight, that is until orch-decide has recorded a decision for it
 * (stacks.total_cycles moves), it stops running, or its lease shows
 * another pipeline has it. A stack handed on whose document never reaches
 * orch-decide (a stage refused it) is handed on again FOLLOW_LOST_MS after
 * its lease was last seen held, or after it was handed on.
 */
#ifndef ORCH_FOLLOW_H
#define ORCH_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define FOLLOW_LOST_MS 30000

struct follow;

struct follow *follow_new(void);
void follow_free(struct follow *f);

/*
 * Look at the store at NOW (wall ms): *DUE gets a new array of the *NDUE
 * stacks to hand on now, by id (NULL when none): running, due, held by
 * no pipeline, not in flight. *WAIT_MS is how long nothing can change
 * without a write to the store: until the next stack is due or a lost
 * document's time is up (-1: only a write can). 0, or -1 with ERR.
 */
int follow_scan(struct follow *f, struct store *s, int64_t now, int64_t **due,
		size_t *ndue, int64_t *wait_ms, struct orch_error *err);

/* The N stacks IDS, from the last follow_scan(), were handed on. */
void follow_sent(struct follow *f, const int64_t *ids, size_t n);

/* How many stacks are in flight. */
size_t follow_in_flight(const struct follow *f);

/* Whether stack ID is in flight after the last follow_scan(): handed on,
 * its cycle not decided yet, its document not given up for lost. */
int follow_is_in_flight(const struct follow *f, int64_t id);

#endif
