/*
 * quota.h - one provider's rate limits shared by every orch-agent process
 * on a store: the agents of one orch-exec, of overlapping pipelines, of
 * several hosts on one database. A provider's limits are per key, so a
 * provider here is its base URL and its key's identity (16 hex digits of
 * the key's SHA-256; the key itself is never stored).
 *
 * Before a request a process takes its turn (quota_take): if the last
 * answers' headers say a request now would be refused (no requests left
 * before their reset, fewer tokens left than the request reserves before
 * theirs, or a 429's Retry-After not yet over) it is told how long to
 * wait; else it reserves a request and its tokens, so that processes
 * starting together do not all see the same "5 left". After each answer
 * it writes back what the headers said (quota_learn): the server's
 * numbers, less what was reserved and not yet counted by it (the lesser
 * of the two, within one window), a 429's wait as a time before which no
 * one sends.
 *
 * Nothing known yet of a provider: the first process sends alone, and the
 * others wait for its answer (at most QUOTA_UNHEARD_MS), which says the
 * limits; a provider whose answers say none is not waited for again.
 *
 * Like provider_caps.h, this opens a database only if it already exists,
 * never creates or migrates it, and touches its own table only; a store
 * that is missing, locked or of an older schema is an error the caller
 * may mention and otherwise ignore: requests go as they would without it.
 */
#ifndef ORCH_QUOTA_H
#define ORCH_QUOTA_H

#include <stdint.h>

#include "error.h"
#include "llm_answer.h"

#define QUOTA_BUSY_MS 200       /* the longest wait for the lock */
#define QUOTA_POLL_MS 100       /* the wait for an answer that says the reset */
#define QUOTA_UNHEARD_MS 30000  /* how long an answer is waited for */
#define QUOTA_MARGIN_MS 20      /* added to a reset: the server's clock rounds */

struct quota;

/*
 * The quota in the database at PATH (NULL: $ORCH_DB, else the default
 * path), or NULL with ERR saying why there is none (store_open_side()).
 */
struct quota *quota_open(const char *path, struct orch_error *err);
void quota_close(struct quota *q);

/*
 * Take a turn at the provider at BASE_URL with KEY for a request that
 * reserves TOKENS (prompt estimate and ceiling), at wall-clock NOW (ms).
 * 0 when it may send now (the request and its tokens reserved), else the
 * ms to wait before asking again; -1 with ERR when the store failed (75
 * when the lock was not had in time).
 */
int64_t quota_take(struct quota *q, const char *base_url, const char *key, int64_t tokens,
		   int64_t now, struct orch_error *err);

/*
 * Write back what an answer at NOW said of the limits, L (any of them -1:
 * not said; SAID 0 when it said none). 0, or -1 with ERR.
 */
int quota_learn(struct quota *q, const char *base_url, const char *key,
		const struct llm_limits *l, int said, int64_t now, struct orch_error *err);

#endif
