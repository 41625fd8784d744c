/*
 * provider_caps.h - what orch-agent learned about a provider and model
 * (enum llm_cap: no json_schema, no temperature, max_completion_tokens,
 * ...; and the token limit a request may reserve), kept in the store for a
 * day so that the next process starts from it instead of paying for the
 * same refusal again.
 *
 * orch-agent needs no database: this module opens one only if it already
 * exists, never creates or migrates it, waits at most
 * PROVIDER_CAPS_BUSY_MS for a lock, and reads and writes its own table
 * only. A store that is missing, locked, read-only, or of a schema without
 * the table is an error the caller may mention once and otherwise ignore:
 * the turn runs without memory.
 */
#ifndef ORCH_PROVIDER_CAPS_H
#define ORCH_PROVIDER_CAPS_H

#include <stdint.h>

#include "error.h"
#include "llm.h"

#define PROVIDER_CAPS_TTL_MS INT64_C(86400000) /* what is learned is kept a day */
#define PROVIDER_CAPS_BUSY_MS 200              /* the longest wait for a lock */

struct provider_caps;

/*
 * The memory in the database at PATH (NULL: $ORCH_DB, else the default
 * path, as store_default_path() says), or NULL with ERR saying why there
 * is none: no such file (66), or a database that cannot be opened or holds
 * no memory yet.
 */
struct provider_caps *provider_caps_open(const char *path, struct orch_error *err);
void provider_caps_close(struct provider_caps *pc);

/*
 * Add to each provider's caps and token_limit what is remembered of its
 * base URL and model, learned after NOW - PROVIDER_CAPS_TTL_MS. 0, or -1
 * with ERR.
 */
int provider_caps_load(struct provider_caps *pc, struct llm_providers *p, int64_t now,
		       struct orch_error *err);

/*
 * Remember what a turn learned at each provider (its learned caps, and its
 * token limit when learned), as of NOW, and forget what anyone learned
 * before NOW - PROVIDER_CAPS_TTL_MS, in one transaction. Nothing is
 * written when nothing was learned. 0, or -1 with ERR (75 when the lock
 * was not had in time).
 */
int provider_caps_save(struct provider_caps *pc, const struct llm_providers *p,
		       int64_t now, struct orch_error *err);

#endif
