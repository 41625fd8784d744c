#include <stdlib.h>
#include <string.h>

#include "orch.h"
#include "quota.h"
#include "sha256.h"
#include "store.h"
#include "store_side.h"
#include "xalloc.h"
#include "banned.h"

#define KEY_ID_LEN 16 /* hex digits of the key's SHA-256 kept */

/* The store, opened this module's way: see quota.h. */
struct quota {
	struct store *s; /* owned */
};

/* A provider's row; -1 for NULL. Index 0 is requests, 1 tokens. */
struct row {
	int found;           /* the row was there */
	int64_t limit[2];    /* in the limit's window */
	int64_t left[2];     /* left, less reservations */
	int64_t reset_at[2]; /* wall-clock ms the limit is back */
	int64_t not_before;  /* no request before this */
	int64_t heard_at;    /* the server's last numbers */
	int64_t updated_at;  /* the last reservation or numbers */
};

struct quota *quota_open(const char *path, struct orch_error *err)
{
	struct store *s = store_open_side(path, QUOTA_BUSY_MS, "provider_quota", err);
	struct quota *q;

	if (!s)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->s = s;
	return q;
}

void quota_close(struct quota *q)
{
	if (!q)
		return;
	store_close(q->s);
	free(q);
}

/* KEY's identity: limits are per key, and the key is never stored. */
static void key_id(const char *key, char out[2 * SHA256_LEN + 1])
{
	sha256_hex(key ? key : "", key ? strlen(key) : 0, out);
	out[KEY_ID_LEN] = '\0';
}

static int64_t column(struct stmt *st, int col)
{
	return stmt_type(st, col) == STMT_NULL ? -1 : stmt_int(st, col);
}

static void bind(struct stmt *st, int col, int64_t v)
{
	if (v < 0)
		stmt_bind_null(st, col);
	else
		stmt_bind_int(st, col, v);
}

/* Read the row of URL and ID into R (r->found 0 when there is none). */
static int row_read(struct quota *q, const char *url, const char *id, struct row *r,
		    struct orch_error *err)
{
	struct stmt *st = store_prepare(q->s, "SELECT requests_limit, requests_left,"
					 " requests_reset_at, tokens_limit, tokens_left,"
					 " tokens_reset_at, not_before, heard_at, updated_at"
					 " FROM provider_quota WHERE base_url = ? AND key_id = ?",
					 err);
	int rc, i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 2; i++)
		r->limit[i] = r->left[i] = r->reset_at[i] = -1;
	r->heard_at = r->updated_at = -1;
	if (!st)
		return -1;
	stmt_bind_text(st, 1, url);
	stmt_bind_text(st, 2, id);
	if ((rc = stmt_step(st)) == STMT_ROW) {
		r->found = 1;
		for (i = 0; i < 2; i++) {
			r->limit[i] = column(st, 3 * i);
			r->left[i] = column(st, 3 * i + 1);
			r->reset_at[i] = column(st, 3 * i + 2);
		}
		r->not_before = stmt_int(st, 6);
		r->heard_at = column(st, 7);
		r->updated_at = stmt_int(st, 8);
	} else if (rc != STMT_DONE) {
		store_error(q->s, err, "reading the provider's quota");
	}
	store_finish(q->s, st);
	return rc == STMT_ROW || rc == STMT_DONE ? 0 : -1;
}

static int row_write(struct quota *q, const char *url, const char *id, const struct row *r,
		     struct orch_error *err)
{
	struct stmt *st = store_prepare(q->s, "INSERT INTO provider_quota"
					 " (base_url, key_id, requests_limit, requests_left,"
					 " requests_reset_at, tokens_limit, tokens_left,"
					 " tokens_reset_at, not_before, heard_at, updated_at)"
					 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
					 " ON CONFLICT (base_url, key_id) DO UPDATE SET"
					 " requests_limit = excluded.requests_limit,"
					 " requests_left = excluded.requests_left,"
					 " requests_reset_at = excluded.requests_reset_at,"
					 " tokens_limit = excluded.tokens_limit,"
					 " tokens_left = excluded.tokens_left,"
					 " tokens_reset_at = excluded.tokens_reset_at,"
					 " not_before = excluded.not_before, heard_at = excluded.heard_at,"
					 " updated_at = excluded.updated_at", err);
	int i;

	if (!st)
		return -1;
	stmt_bind_text(st, 1, url);
	stmt_bind_text(st, 2, id);
	for (i = 0; i < 2; i++) {
		bind(st, 3 + 3 * i, r->limit[i]);
		bind(st, 4 + 3 * i, r->left[i]);
		bind(st, 5 + 3 * i, r->reset_at[i]);
	}
	stmt_bind_int(st, 9, r->not_before);
	bind(st, 10, r->heard_at);
	stmt_bind_int(st, 11, r->updated_at);
	return store_step_done(q->s, st, "writing the provider's quota", err);
}

/* A limit whose reset has come is whole again (or unknown, its size unknown). */
static void refill(struct row *r, int64_t now)
{
	int i;

	for (i = 0; i < 2; i++)
		if (r->reset_at[i] >= 0 && now >= r->reset_at[i]) {
			r->left[i] = r->limit[i];
			r->reset_at[i] = -1;
		}
}

/* Begin the transaction both calls run in, with the row of BASE_URL and
 * KEY (its identity in ID) read into R. 0, or -1 with ERR and nothing
 * begun. */
static int row_begin(struct quota *q, const char *base_url, const char *key,
		     char id[2 * SHA256_LEN + 1], struct row *r, struct orch_error *err)
{
	key_id(key, id);
	if (store_begin(q->s, err) != 0)
		return -1;
	if (row_read(q, base_url, id, r, err) != 0) {
		store_rollback(q->s);
		return -1;
	}
	return 0;
}

int64_t quota_take(struct quota *q, const char *base_url, const char *key, int64_t tokens,
		   int64_t now, struct orch_error *err)
{
	char id[2 * SHA256_LEN + 1];
	struct row r;
	int64_t wait = 0, need[2] = { 1, tokens }, w;
	int i;

	if (row_begin(q, base_url, key, id, &r, err) != 0)
		return -1;
	if (!r.found) {
		/* Nothing known: this request alone, until its answer says. */
		r.left[0] = 0;
		r.not_before = 0;
		r.updated_at = now;
		if (row_write(q, base_url, id, &r, err) != 0)
			goto fail;
		return store_commit(q->s, err) == 0 ? 0 : -1;
	}
	refill(&r, now);
	if (now < r.not_before)
		wait = r.not_before - now;
	for (i = 0; i < 2; i++) {
		/* More than the whole limit: the server says so, not a wait. */
		if (r.limit[i] >= 0 && need[i] > r.limit[i])
			need[i] = r.limit[i];
		if (r.left[i] < 0 || r.left[i] >= need[i])
			continue;
		if (r.reset_at[i] >= 0)
			w = r.reset_at[i] - now + QUOTA_MARGIN_MS;
		else if (now - r.updated_at < QUOTA_UNHEARD_MS)
			w = QUOTA_POLL_MS; /* the answer in flight says when */
		else
			w = 0, r.left[i] = -1; /* it never came: not known */
		if (w > wait)
			wait = w;
	}
	if (wait > 0) {
		store_rollback(q->s);
		return wait;
	}
	for (i = 0; i < 2; i++)
		if (r.left[i] >= 0)
			r.left[i] -= need[i];
	r.updated_at = now;
	if (row_write(q, base_url, id, &r, err) != 0)
		goto fail;
	return store_commit(q->s, err) == 0 ? 0 : -1;
fail:
	store_rollback(q->s);
	return -1;
}

int quota_learn(struct quota *q, const char *base_url, const char *key,
		const struct llm_limits *l, int said, int64_t now, struct orch_error *err)
{
	const int64_t limit[2] = { l->requests_limit, l->tokens_limit };
	const int64_t left[2] = { l->requests_left, l->tokens_left };
	const int64_t reset[2] = { l->requests_reset_ms, l->tokens_reset_ms };
	char id[2 * SHA256_LEN + 1];
	struct row r;
	int i;

	if (row_begin(q, base_url, key, id, &r, err) != 0)
		return -1;
	refill(&r, now);
	if (!said) {
		/* A server that says no limits is not waited for. */
		if (r.found && (r.limit[0] >= 0 || r.limit[1] >= 0)) {
			store_rollback(q->s);
			return 0;
		}
		r.left[0] = r.left[1] = -1;
	}
	for (i = 0; said && i < 2; i++) {
		if (left[i] >= 0) {
			/* Within a window, the lesser: what was reserved and not
			 * yet counted by the server stays reserved. */
			if (r.limit[i] < 0 || r.left[i] < 0 || left[i] < r.left[i])
				r.left[i] = left[i];
		}
		if (limit[i] >= 0)
			r.limit[i] = limit[i];
		if (reset[i] >= 0 && now + reset[i] > r.reset_at[i])
			r.reset_at[i] = now + reset[i];
	}
	if (l->retry_after_ms >= 0 && now + l->retry_after_ms > r.not_before)
		r.not_before = now + l->retry_after_ms;
	if (said)
		r.heard_at = now;
	r.updated_at = now;
	if (row_write(q, base_url, id, &r, err) != 0)
		goto fail;
	return store_commit(q->s, err);
fail:
	store_rollback(q->s);
	return -1;
}
