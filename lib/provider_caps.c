#include <stdlib.h>
#include <string.h>

#include "orch.h"
#include "provider_caps.h"
#include "store.h"
#include "store_side.h"
#include "xalloc.h"
#include "banned.h"

#define TOKEN_LIMIT "token_limit" /* the capability a limit is kept under */

/* The store, opened this module's way: see provider_caps.h. */
struct provider_caps {
	struct store *s; /* owned; its db opened here, closed by store_close */
};

struct provider_caps *provider_caps_open(const char *path, struct orch_error *err)
{
	struct store *s = store_open_side(path, PROVIDER_CAPS_BUSY_MS, "provider_caps", err);
	struct provider_caps *pc;

	if (!s)
		return NULL;
	pc = xcalloc(1, sizeof(*pc));
	pc->s = s;
	return pc;
}

void provider_caps_close(struct provider_caps *pc)
{
	if (!pc)
		return;
	store_close(pc->s);
	free(pc);
}

/* Add to PV what is remembered of it. */
static int load(struct provider_caps *pc, struct llm_provider *pv, int64_t now,
		struct orch_error *err)
{
	struct stmt *st = store_prepare(pc->s, "SELECT capability, value FROM provider_caps"
					 " WHERE base_url = ? AND model = ? AND learned_at > ?",
					 err);
	const char *name;
	int rc;

	if (!st)
		return -1;
	stmt_bind_text(st, 1, pv->base_url);
	stmt_bind_text(st, 2, pv->model);
	stmt_bind_int(st, 3, now - PROVIDER_CAPS_TTL_MS);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		name = stmt_text(st, 0);
		if (!name)
			continue;
		if (strcmp(name, TOKEN_LIMIT) == 0 && stmt_int(st, 1) > 0)
			pv->token_limit = stmt_int(st, 1);
		else if (stmt_int(st, 1))
			pv->caps |= llm_cap_of(name);
	}
	if (rc != STMT_DONE)
		store_error(pc->s, err, "reading what was learned");
	store_finish(pc->s, st);
	return rc == STMT_DONE ? 0 : -1;
}

/* Remember NAME = VALUE for PV as of NOW, inside the caller's transaction. */
static int remember(struct provider_caps *pc, const struct llm_provider *pv,
		    const char *name, int64_t value, int64_t now, struct orch_error *err)
{
	struct stmt *st = store_prepare(pc->s, "INSERT INTO provider_caps"
					 " (base_url, model, capability, value, learned_at)"
					 " VALUES (?, ?, ?, ?, ?)"
					 " ON CONFLICT (base_url, model, capability) DO UPDATE"
					 " SET value = excluded.value, learned_at = excluded.learned_at",
					 err);

	if (!st)
		return -1;
	stmt_bind_text(st, 1, pv->base_url);
	stmt_bind_text(st, 2, pv->model);
	stmt_bind_text(st, 3, name);
	stmt_bind_int(st, 4, value);
	stmt_bind_int(st, 5, now);
	return store_step_done(pc->s, st, "remembering what was learned", err);
}

int provider_caps_load(struct provider_caps *pc, struct llm_providers *p, int64_t now,
		       struct orch_error *err)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (load(pc, &p->v[i], now, err) != 0)
			return -1;
	return 0;
}

int provider_caps_save(struct provider_caps *pc, const struct llm_providers *p,
		       int64_t now, struct orch_error *err)
{
	const struct llm_provider *pv;
	struct stmt *st;
	unsigned bit;
	size_t i;
	int rc = 0, any = 0;

	for (i = 0; i < p->n; i++)
		any |= p->v[i].learned || p->v[i].limit_learned;
	if (!any)
		return 0;
	if (store_begin(pc->s, err) != 0)
		return -1;
	for (i = 0; rc == 0 && i < p->n; i++) {
		pv = &p->v[i];
		for (bit = 1; rc == 0 && bit < 1u << LLM_CAP_COUNT; bit <<= 1)
			if (pv->learned & bit)
				rc = remember(pc, pv, llm_cap_name(bit), 1, now, err);
		if (rc == 0 && pv->limit_learned)
			rc = remember(pc, pv, TOKEN_LIMIT, pv->token_limit, now, err);
	}
	if (rc == 0 && (st = store_prepare(pc->s, "DELETE FROM provider_caps"
					   " WHERE learned_at <= ?", err))) {
		stmt_bind_int(st, 1, now - PROVIDER_CAPS_TTL_MS);
		rc = store_step_done(pc->s, st, "forgetting what is a day old", err);
	} else if (rc == 0) {
		rc = -1;
	}
	if (rc != 0) {
		store_rollback(pc->s);
		return -1;
	}
	return store_commit(pc->s, err);
}
