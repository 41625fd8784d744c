/*
 * store_pg.c - the PostgreSQL engine (libpq).
 *
 * A statement is the module's SQL with its placeholders numbered ($1 ...),
 * run when first stepped: integers as int8 in text form, text as text,
 * bytes as bytea in binary form. Every result comes back in text form and
 * whole; stepping walks its rows. The connection prepares each text once
 * (with its parameters' types) and runs it by name after: a node's
 * transactions are some fifty statements, and parsing and planning each
 * one anew was over a quarter of what the server spent on them.
 * Waiting for an answer is a poll() on the connection's socket, so that a
 * stopping program gives up STORE_STOP_WAIT_MS after it was told to (the
 * query is cancelled) and a server that went silent is bounded by the
 * TCP timeouts set at connection.
 *
 * Writes are serialised by advisory locks taken at BEGIN, as SQLite's
 * BEGIN IMMEDIATE serialises them: the modules' read-then-write
 * transactions were written for one writer at a time, and keep their
 * meaning on many hosts. A transaction that writes across stacks takes
 * the store's write lock alone; one that writes one stack's rows takes it
 * shared and that stack's own lock, so that the hosts' cycles, each on
 * stacks of its own, write at once instead of queueing on one lock (four
 * hosts spent more time waiting for it than writing). lock_timeout bounds
 * every wait for a lock (and for a row lock) by the busy timeout; the
 * wait's end is 75.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "orch.h"
#include "store_int.h"
#include "xalloc.h"
#include "banned.h"

/* The store's write lock, which every write transaction takes, alone or
 * shared (any constant: "orch"). */
#define WRITE_LOCK_KEY 0x6f726368

/* A stack's own lock: the two-key form, a key space apart from the
 * one-key form's WRITE_LOCK_KEY, class "or" and the stack's id folded to
 * 32 bits (two stacks that fold alike only wait for each other). */
#define STACK_LOCK_CLASS 0x6f72
#define STACK_LOCK_KEY(id) ((int32_t)(uint32_t)((uint64_t)(id) ^ ((uint64_t)(id) >> 32)))

/* PostgreSQL's type oids (catalog/pg_type.h is not in libpq-dev). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

/* A connection's bounds unless the URI sets its own: connecting, and
 * noticing a peer that went away (keepalives, and unacknowledged data). */
static const char *const conn_defaults[][2] = {
	{ "connect_timeout", "10" },
	{ "keepalives", "1" },
	{ "keepalives_idle", "10" },
	{ "keepalives_interval", "5" },
	{ "keepalives_count", "3" },
	{ "tcp_user_timeout", "30000" },
	{ "application_name", "orch" },
};
#define NDEFAULTS (sizeof(conn_defaults) / sizeof(conn_defaults[0]))

/* A statement this connection has prepared: its text and parameter
 * types (KEY), and the name it runs by. */
struct pg_prepared {
	uint64_t hash;          /* of key */
	char *key;              /* owned */
	size_t len;             /* of key */
};

/* At most this many prepared statements a connection: orch's texts are
 * fewer, so past it a text is run unnamed, as any unforeseen one. */
#define PREPARED_MAX 512

struct pg_conn {
	PGconn *conn;
	char sqlstate[6];       /* the last error's, "" for none */
	char *errmsg;           /* owned: the last error's message */
	int64_t changes;        /* rows the last statement changed */
	char *listening;        /* owned: the channel LISTENed to, or NULL */
	struct pg_prepared *prepared; /* owned: named "o<index>" */
	size_t nprepared;
	enum pg_lock locked;    /* the write lock the open transaction took */
};

struct pg_param {
	char *value;            /* owned: NUL-terminated text, or bytes; NULL: NULL */
	int length;
	int format;             /* 0 text, 1 binary */
	unsigned int type;      /* 0: the server infers it */
};

struct pg_stmt {
	struct store *s;        /* borrowed */
	char *sql;              /* owned: placeholders numbered */
	int nparams;
	struct pg_param *params; /* owned: nparams */
	unsigned char *used;    /* owned: 1 for each parameter the SQL names */
	PGresult *res;          /* the result, once run */
	int ran;                /* run since the last reset (even if it failed) */
	int row;                /* the current row: -1 before the first */
	unsigned char **bytes;  /* owned: decoded bytea columns, per column */
	size_t *nbytes;
};

/* --- errors --- */

static void set_error(struct pg_conn *c, const char *sqlstate, const char *msg)
{
	size_t n;

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", sqlstate ? sqlstate : "");
	free(c->errmsg);
	/* libpq's messages end in a newline and may run to several lines:
	 * one line is what a message on stderr may be. */
	n = msg ? strcspn(msg, "\n") : 0;
	c->errmsg = xstrndup(msg && n ? msg : "unknown error", msg && n ? n : 13);
}

static void set_error_from(struct pg_conn *c, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (!msg)
		msg = PQerrorMessage(c->conn);
	/* A connection that broke has no SQLSTATE: class 08 says so. */
	if (!state && PQstatus(c->conn) == CONNECTION_BAD)
		state = "08006";
	set_error(c, state, msg);
}

static int class_is(const char *state, const char *cls)
{
	return strncmp(state, cls, 2) == 0;
}

int pg_error(struct store *s, struct orch_error *err, const char *what)
{
	struct pg_conn *c = s->pg;
	const char *state = c ? c->sqlstate : "08006";
	const char *msg = c && c->errmsg ? c->errmsg : "no connection";
	int status;

	if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
		/* lock_timeout, or a wait cancelled when the program stopped:
		 * SQLite's words for the same thing. */
		msg = "database is locked";
	if (class_is(state, "40") || strcmp(state, "55P03") == 0 ||
	    strcmp(state, "57014") == 0 || class_is(state, "53"))
		status = ORCH_EX_TEMPFAIL;
	else if (class_is(state, "08") || class_is(state, "28") || class_is(state, "57"))
		status = ORCH_EX_UNAVAILABLE;
	else if (strcmp(state, "3D000") == 0 || strcmp(state, "42501") == 0 ||
		 strcmp(state, "25006") == 0)
		status = ORCH_EX_NOINPUT;
	else if (class_is(state, "22") || class_is(state, "XX"))
		status = ORCH_EX_DATAERR;
	else
		status = ORCH_EX_SOFTWARE;
	if (!what)
		return orch_error_set(err, status, "%s", msg);
	return orch_error_set(err, status, "%s: %s", what, msg);
}

int pg_is_constraint(const struct store *s)
{
	return s->pg && class_is(s->pg->sqlstate, "23");
}

/* --- waiting for an answer --- */

/*
 * The result of the query sent on S's connection, waiting in poll() so
 * that a stopping program cancels it: NULL with the error set when the
 * connection broke. The caller PQclear()s it.
 */
static PGresult *wait_result(struct store *s)
{
	struct pg_conn *c = s->pg;
	PGresult *res, *last = NULL;
	struct pollfd pfd;
	int cancelled = 0;
	int64_t now;

	for (;;) {
		while (PQisBusy(c->conn)) {
			pfd.fd = PQsocket(c->conn);
			pfd.events = POLLIN;
			if (pfd.fd < 0)
				goto broken;
			if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
				goto broken;
			if (!PQconsumeInput(c->conn))
				goto broken;
			if (cancelled || !s->stopping || !s->stopping(s->stopping_arg))
				continue;
			now = orch_mono_ms();
			if (!s->stop_deadline)
				s->stop_deadline = now + STORE_STOP_WAIT_MS;
			if (now >= s->stop_deadline) {
				PGcancel *cn = PQgetCancel(c->conn);
				char buf[256];

				if (cn) {
					PQcancel(cn, buf, (int)sizeof(buf));
					PQfreeCancel(cn);
				}
				cancelled = 1;
			}
		}
		res = PQgetResult(c->conn);
		if (!res)
			break;
		/* Keep the last (a multi-statement text gives several), or
		 * the first error. */
		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(res);
			continue;
		}
		PQclear(last);
		last = res;
	}
	if (last)
		return last;
broken:
	PQclear(last);
	set_error_from(c, NULL);
	return NULL;
}

/* Whether RES is a success, setting the error and the changes. */
static int result_ok(struct pg_conn *c, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *n;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (res)
			set_error_from(c, res);
		return 0;
	}
	n = PQcmdTuples(res);
	c->changes = n && *n ? strtoll(n, NULL, 10) : 0;
	c->sqlstate[0] = '\0';
	return 1;
}

/* Run SQL, no parameters, one or more statements: 0 or -1. */
static int run_plain(struct store *s, const char *sql)
{
	PGresult *res;
	int ok;

	if (!PQsendQuery(s->pg->conn, sql)) {
		set_error_from(s->pg, NULL);
		return -1;
	}
	res = wait_result(s);
	ok = result_ok(s->pg, res);
	PQclear(res);
	return ok ? 0 : -1;
}

int pg_exec(struct store *s, const char *sql, struct orch_error *err)
{
	if (run_plain(s, sql) != 0)
		return pg_error(s, err, NULL);
	return 0;
}

int pg_begin(struct store *s, enum pg_lock lock, int64_t stack_id, struct orch_error *err)
{
	char sql[160];
	int n;

	if (lock == PG_LOCK_ALL)
		n = snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d)",
			     WRITE_LOCK_KEY);
	else if (lock == PG_LOCK_SHARED)
		n = snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock_shared(%d)",
			     WRITE_LOCK_KEY);
	else
		n = snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock_shared(%d);"
			     " SELECT pg_advisory_xact_lock(%d, %" PRId32 ")", WRITE_LOCK_KEY,
			     STACK_LOCK_CLASS, STACK_LOCK_KEY(stack_id));
	if (n < 0 || (size_t)n >= sizeof(sql))
		return orch_error_set(err, ORCH_EX_SOFTWARE, "BEGIN: statement too long");
	if (run_plain(s, sql) != 0) {
		pg_error(s, err, NULL);
		store_rollback(s);
		return -1;
	}
	s->pg->locked = lock;
	return 0;
}

int pg_take_stack(struct store *s, int64_t stack_id, struct orch_error *err)
{
	struct stmt *st;
	int64_t taken = 0;

	/* The store's write lock alone keeps every stack's writers out. */
	if (s->pg->locked == PG_LOCK_ALL)
		return 1;
	if (!(st = store_prepare(s, "SELECT CASE WHEN pg_try_advisory_xact_lock("
				 "CAST(?1 AS INTEGER), CAST(?2 AS INTEGER)) THEN 1 ELSE 0 END", err)))
		return -1;
	stmt_bind_int(st, 1, STACK_LOCK_CLASS);
	stmt_bind_int(st, 2, STACK_LOCK_KEY(stack_id));
	if (store_query_int(s, st, &taken, "taking the stack's lock", err) < 0)
		return -1;
	return taken == 1;
}

int pg_in_transaction(struct store *s)
{
	PGTransactionStatusType t = PQtransactionStatus(s->pg->conn);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

int64_t pg_changes(struct store *s)
{
	return s->pg->changes;
}

/* --- statements --- */

/*
 * SQL with SQLite's placeholders (?, ?N) as PostgreSQL's ($N), outside
 * quotes and comments; *NPARAMS the highest number. SQLite numbers a bare
 * ? one past the highest so far.
 */
static char *number_placeholders(const char *sql, int *nparams, unsigned char **used)
{
	/* "?" (one byte) becomes at most "$999999" (seven). */
	size_t cap = strlen(sql) * 7 + 1, len = 0;
	char *out = xmalloc(cap);
	unsigned char *u = NULL;
	const char *p = sql;
	int max = 0, n;
	char quote = 0;

	while (*p) {
		if (quote) {
			if (*p == quote)
				quote = 0;
			out[len++] = *p++;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
			out[len++] = *p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				out[len++] = *p++;
		} else if (*p == '?') {
			p++;
			if (*p >= '0' && *p <= '9') {
				n = 0;
				while (*p >= '0' && *p <= '9' && n < 100000)
					n = n * 10 + (*p++ - '0');
			} else {
				n = max + 1;
			}
			if (n < 1)
				n = 1; /* ?0: SQLite refuses it; so will the server, as $1 unbound */
			if (n > max) {
				u = xreallocarray(u, (size_t)n, 1);
				memset(u + max, 0, (size_t)(n - max));
				max = n;
			}
			u[n - 1] = 1;
			len += (size_t)snprintf(out + len, cap - len, "$%d", n);
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	*nparams = max;
	*used = u ? u : xcalloc(1, 1);
	return out;
}

struct stmt *pg_prepare(struct store *s, const char *sql, struct orch_error *err)
{
	struct pg_stmt *p = xcalloc(1, sizeof(*p));
	struct stmt *st;

	(void)err; /* the server sees the SQL when it runs */
	p->s = s;
	p->sql = number_placeholders(sql, &p->nparams, &p->used);
	p->params = xcalloc((size_t)p->nparams + 1, sizeof(*p->params));
	p->row = -1;
	st = xcalloc(1, sizeof(*st));
	st->s = s;
	st->pg = p;
	return st;
}

static void clear_result(struct pg_stmt *p)
{
	int i, n;

	if (p->bytes) {
		n = PQnfields(p->res);
		for (i = 0; i < n; i++)
			free(p->bytes[i]);
		free(p->bytes);
		free(p->nbytes);
		p->bytes = NULL;
		p->nbytes = NULL;
	}
	PQclear(p->res);
	p->res = NULL;
	p->row = -1;
	p->ran = 0;
}

void pg_reset(struct pg_stmt *p)
{
	int i;

	clear_result(p);
	for (i = 0; i < p->nparams; i++) {
		free(p->params[i].value);
		memset(&p->params[i], 0, sizeof(p->params[i]));
	}
}

void pg_free(struct pg_stmt *p)
{
	if (!p)
		return;
	pg_reset(p);
	free(p->params);
	free(p->used);
	free(p->sql);
	free(p);
}

int pg_param_count(struct pg_stmt *p)
{
	return p->nparams;
}

/*
 * TEXT as PostgreSQL text can hold it: no NUL byte and valid UTF-8. Bytes
 * that are neither (an agent's raw output may hold any) become U+FFFD,
 * which SQLite would have kept: the one place the engines store different
 * bytes (README "PostgreSQL").
 */
/* The length of the UTF-8 sequence at U[0..LEN), 0 when it is not one
 * PostgreSQL takes (overlong, a surrogate, past U+10FFFF, or NUL). */
static size_t utf8_sequence(const unsigned char *u, size_t len)
{
	size_t n = u[0] < 0x80 ? 1 : (u[0] & 0xe0) == 0xc0 ? 2 : (u[0] & 0xf0) == 0xe0 ? 3
		   : (u[0] & 0xf8) == 0xf0 ? 4 : 0, k;
	unsigned cp = n == 1 ? u[0] : n == 2 ? u[0] & 0x1fu : n == 3 ? u[0] & 0x0fu : u[0] & 0x07u;

	for (k = 1; n && k < n; k++) {
		if (k >= len || (u[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (u[k] & 0x3fu);
	}
	if (n == 0 || cp == 0 || (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static char *text_for_pg(const char *v, size_t len)
{
	const unsigned char *u = (const unsigned char *)v;
	size_t i = 0, o = 0, n, bad = 0;
	char *out;

	for (i = 0; i < len; i += n ? n : 1)
		if (!(n = utf8_sequence(u + i, len - i)))
			bad++;
	/* Each bad byte, one byte, becomes three. */
	out = xmalloc(len + 2 * bad + 1);
	for (i = 0; i < len; i += n ? n : 1) {
		if (!(n = utf8_sequence(u + i, len - i))) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			continue;
		}
		memcpy(out + o, v + i, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

void pg_bind(struct pg_stmt *p, int i, int type, const void *v, size_t len)
{
	struct pg_param *pa;
	char num[24];

	if (i < 1 || i > p->nparams)
		return; /* as SQLite: a parameter the SQL does not have */
	pa = &p->params[i - 1];
	free(pa->value);
	memset(pa, 0, sizeof(*pa));
	switch (type) {
	case STMT_INTEGER:
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)v);
		pa->value = xstrdup(num);
		pa->type = OID_INT8;
		break;
	case STMT_TEXT:
		/* Typed: "?3 IS NULL OR agent = ?3" leaves an untyped
		 * parameter's type undecided. NULL is typed text too. */
		pa->value = v ? text_for_pg(v, len) : NULL;
		pa->type = OID_TEXT;
		break;
	case STMT_BLOB:
		pa->value = xmalloc(len ? len : 1);
		memcpy(pa->value, v, len);
		pa->length = (int)len;
		pa->format = 1;
		pa->type = OID_BYTEA;
		break;
	default:
		break; /* NULL */
	}
}

/* FNV-1a over LEN bytes of KEY. */
static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3u;
	}
	return h;
}

/*
 * The name SQL with the N parameter TYPES runs by on S's connection,
 * prepared now if it was not (in NAME, room for 24): 1; 0 when it is to
 * run unnamed (the connection holds PREPARED_MAX already); -1 with the
 * error set when the server refused it (the error running it would give).
 */
static int prepared_name(struct store *s, const char *sql, int n,
			 const unsigned int *types, char *name)
{
	struct pg_conn *c = s->pg;
	size_t sqllen = strlen(sql), len = sqllen + 1 + (size_t)n * sizeof(*types), i;
	char *key = xmalloc(len);
	uint64_t h;
	PGresult *res;
	int ok;

	memcpy(key, sql, sqllen + 1);
	if (n > 0)
		memcpy(key + sqllen + 1, types, (size_t)n * sizeof(*types));
	h = key_hash(key, len);
	for (i = 0; i < c->nprepared; i++)
		if (c->prepared[i].hash == h && c->prepared[i].len == len &&
		    memcmp(c->prepared[i].key, key, len) == 0) {
			free(key);
			snprintf(name, 24, "o%zu", i);
			return 1;
		}
	if (c->nprepared == PREPARED_MAX) {
		free(key);
		return 0;
	}
	snprintf(name, 24, "o%zu", c->nprepared);
	if (!PQsendPrepare(c->conn, name, sql, n, types)) {
		free(key);
		set_error_from(c, NULL);
		return -1;
	}
	res = wait_result(s);
	ok = result_ok(c, res);
	PQclear(res);
	if (!ok) {
		free(key);
		return -1;
	}
	c->prepared = xreallocarray(c->prepared, c->nprepared + 1, sizeof(*c->prepared));
	c->prepared[c->nprepared].hash = h;
	c->prepared[c->nprepared].key = key;
	c->prepared[c->nprepared].len = len;
	c->nprepared++;
	return 1;
}

/* Run P's SQL with its parameters: 0, or -1 with the error set. */
static int run(struct pg_stmt *p)
{
	struct pg_conn *c = p->s->pg;
	int n = p->nparams, i, ok = 0, named;
	const char **values = xcalloc((size_t)n + 1, sizeof(*values));
	int *lengths = xcalloc((size_t)n + 1, sizeof(*lengths));
	int *formats = xcalloc((size_t)n + 1, sizeof(*formats));
	unsigned int *types = xcalloc((size_t)n + 1, sizeof(*types));
	char name[24];

	for (i = 0; i < n; i++) {
		values[i] = p->params[i].value;
		lengths[i] = p->params[i].length;
		formats[i] = p->params[i].format;
		/* A number the SQL skips (?1 and ?4 of a shared binder) has no
		 * place to take a type from, which PostgreSQL refuses: any. */
		types[i] = p->used[i] ? p->params[i].type : OID_INT8;
		if (!p->used[i])
			values[i] = NULL;
	}
	named = prepared_name(p->s, p->sql, n, types, name);
	if (named > 0)
		ok = PQsendQueryPrepared(c->conn, name, n, values, lengths, formats, 0);
	else if (named == 0)
		ok = PQsendQueryParams(c->conn, p->sql, n, types, values, lengths, formats, 0);
	free(values);
	free(lengths);
	free(formats);
	free(types);
	if (named < 0)
		return -1;
	if (!ok) {
		set_error_from(c, NULL);
		return -1;
	}
	p->res = wait_result(p->s);
	if (!result_ok(c, p->res)) {
		PQclear(p->res);
		p->res = NULL;
		return -1;
	}
	return 0;
}

enum stmt_result pg_step(struct pg_stmt *p)
{
	if (!p->ran) {
		p->ran = 1;
		if (run(p) != 0)
			return STMT_ERROR;
	}
	if (!p->res)
		return STMT_ERROR;
	if (p->row + 1 >= PQntuples(p->res)) {
		p->row = PQntuples(p->res);
		return STMT_DONE;
	}
	p->row++;
	if (p->bytes) {
		int i, nf = PQnfields(p->res);

		for (i = 0; i < nf; i++) {
			free(p->bytes[i]);
			p->bytes[i] = NULL;
		}
	}
	return STMT_ROW;
}

static int has_value(struct pg_stmt *p, int col)
{
	return p->res && p->row >= 0 && p->row < PQntuples(p->res) && col >= 0 &&
	       col < PQnfields(p->res) && !PQgetisnull(p->res, p->row, col);
}

enum stmt_type pg_type(struct pg_stmt *p, int col)
{
	if (!has_value(p, col))
		return STMT_NULL;
	switch (PQftype(p->res, col)) {
	case OID_BOOL:
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		return STMT_INTEGER;
	case OID_NUMERIC:
		return strchr(PQgetvalue(p->res, p->row, col), '.') ? STMT_FLOAT : STMT_INTEGER;
	case OID_FLOAT4:
	case OID_FLOAT8:
		return STMT_FLOAT;
	case OID_BYTEA:
		return STMT_BLOB;
	default:
		return STMT_TEXT;
	}
}

/* Column COL of a bytea column, decoded once per row. */
static const char *bytea_value(struct pg_stmt *p, int col, size_t *len)
{
	int nf = PQnfields(p->res);

	if (!p->bytes) {
		p->bytes = xcalloc((size_t)nf, sizeof(*p->bytes));
		p->nbytes = xcalloc((size_t)nf, sizeof(*p->nbytes));
	}
	if (!p->bytes[col]) {
		unsigned char *raw = PQunescapeBytea((const unsigned char *)
						     PQgetvalue(p->res, p->row, col),
						     &p->nbytes[col]);

		if (!raw)
			xalloc_die();
		/* Followed by a NUL, as SQLite's text is: PQunescapeBytea
		 * makes no such promise. */
		p->bytes[col] = xmalloc(p->nbytes[col] + 1);
		memcpy(p->bytes[col], raw, p->nbytes[col]);
		p->bytes[col][p->nbytes[col]] = '\0';
		PQfreemem(raw);
	}
	*len = p->nbytes[col];
	return (const char *)p->bytes[col];
}

const char *pg_text(struct pg_stmt *p, int col)
{
	size_t len;

	if (!has_value(p, col))
		return NULL;
	if (PQftype(p->res, col) == OID_BYTEA)
		return bytea_value(p, col, &len);
	if (PQftype(p->res, col) == OID_BOOL)
		return PQgetvalue(p->res, p->row, col)[0] == 't' ? "1" : "0";
	return PQgetvalue(p->res, p->row, col);
}

size_t pg_bytes(struct pg_stmt *p, int col)
{
	size_t len = 0;

	if (!has_value(p, col))
		return 0;
	if (PQftype(p->res, col) == OID_BYTEA) {
		bytea_value(p, col, &len);
		return len;
	}
	if (PQftype(p->res, col) == OID_BOOL)
		return 1;
	return (size_t)PQgetlength(p->res, p->row, col);
}

int pg_column_count(struct pg_stmt *p)
{
	if (!p->ran) {
		p->ran = 1;
		if (run(p) != 0)
			return 0;
	}
	return p->res ? PQnfields(p->res) : 0;
}

const char *pg_column_name(struct pg_stmt *p, int col)
{
	return p->res ? PQfname(p->res, col) : NULL;
}

/* --- connecting --- */

/* Notices (a NOTICE from the server) are not orch's to print. */
static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * URI as it may be shown: without a password, in its user part
 * (postgresql://user:secret@host) or as a parameter (?password=secret).
 */
static char *displayed_name(const char *uri)
{
	const char *scheme = strstr(uri, "://"), *at, *colon, *slash, *pw;
	char *out;
	size_t n;

	if (!scheme)
		return xstrdup(uri);
	scheme += 3;
	slash = scheme + strcspn(scheme, "/?");
	at = memchr(scheme, '@', (size_t)(slash - scheme));
	colon = at ? memchr(scheme, ':', (size_t)(at - scheme)) : NULL;
	if (colon)
		out = xasprintf("%.*s%s", (int)(colon - uri), uri, at);
	else
		out = xstrdup(uri);
	while ((pw = strstr(out, "password=")) && (pw == out || pw[-1] == '?' || pw[-1] == '&')) {
		n = strcspn(pw + 9, "&");
		if (n == 3 && strncmp(pw + 9, "***", 3) == 0)
			break;
		{
			char *t = xasprintf("%.*s***%s", (int)(pw + 9 - out), out, pw + 9 + n);

			free(out);
			out = t;
		}
	}
	return out;
}

/*
 * Connect to URI, its own settings first and orch's bounds where it sets
 * none: 0, or -1 with ERR (69: the server cannot be reached, refuses the
 * user, or has no such database).
 */
static int connect_to(struct store *s, const char *uri, struct orch_error *err)
{
	const char *keys[NDEFAULTS + 2], *values[NDEFAULTS + 2];
	PQconninfoOption *given, *o;
	char *errmsg = NULL;
	size_t i, n = 0;
	int set;

	given = PQconninfoParse(uri, &errmsg);
	if (!given) {
		orch_error_set(err, ORCH_EX_USAGE, "database '%s': %.*s", s->path,
			       errmsg ? (int)strcspn(errmsg, "\n") : 14,
			       errmsg ? errmsg : "not a valid URI");
		PQfreemem(errmsg);
		return -1;
	}
	for (i = 0; i < NDEFAULTS; i++) {
		set = 0;
		for (o = given; o->keyword; o++)
			if (strcmp(o->keyword, conn_defaults[i][0]) == 0 && o->val)
				set = 1;
		if (!set) {
			keys[n] = conn_defaults[i][0];
			values[n++] = conn_defaults[i][1];
		}
	}
	PQconninfoFree(given);
	/* Expanded in place: what the URI says wins over the keys before it. */
	keys[n] = "dbname";
	values[n++] = uri;
	keys[n] = NULL;
	values[n] = NULL;
	s->pg->conn = PQconnectdbParams(keys, values, 1);
	if (!s->pg->conn)
		xalloc_die();
	if (PQstatus(s->pg->conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(s->pg->conn);
		/* libpq's message: "connection to server ... failed: FATAL:  ..." */
		const char *fatal = strstr(m, "FATAL:  ");
		int status = fatal && strstr(fatal, "does not exist") && strstr(fatal, "database")
			     ? ORCH_EX_NOINPUT : ORCH_EX_UNAVAILABLE;

		return orch_error_set(err, status, "cannot connect to database '%s': %.*s", s->path,
				      (int)strcspn(fatal ? fatal + 8 : m, "\n"), fatal ? fatal + 8 : m);
	}
	PQsetNoticeProcessor(s->pg->conn, ignore_notice, NULL);
	return 0;
}

/* The schema version in orch_meta: into *OUT (0: no orch schema). */
static int schema_version(struct store *s, int *out, struct orch_error *err)
{
	struct stmt *st;
	int64_t v = 0;
	int rc;

	st = store_prepare(s, "SELECT CASE WHEN to_regclass('orch_meta') IS NULL THEN 0 ELSE 1 END",
			   err);
	if (!st || (rc = store_query_int(s, st, &v, NULL, err)) < 0)
		return -1;
	*out = 0;
	if (v == 0)
		return 0;
	st = store_prepare(s, "SELECT CAST(value AS BIGINT) FROM orch_meta"
			   " WHERE key = 'schema_version'", err);
	if (!st || (rc = store_query_int(s, st, &v, NULL, err)) < 0)
		return -1;
	*out = rc == 1 ? (int)v : 0;
	return 0;
}

/* Bring the schema to this orch's version, under the write lock so two
 * programs starting at once do it once. */
static int migrate(struct store *s, unsigned flags, struct orch_error *err)
{
	int version, v;
	char *sql;

	if (schema_version(s, &version, err) != 0)
		return -1;
	if (version > STORE_SCHEMA_VERSION)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "database '%s' has schema version %d, newer than this orch"
				      " supports (%d)", s->path, version, STORE_SCHEMA_VERSION);
	if (version == STORE_SCHEMA_VERSION || (flags & STORE_SIDE))
		return 0;
	if (version == 0 && !(flags & STORE_CREATE))
		/* An empty database is none yet, as a missing file is. */
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "no database at '%s' (run 'orch-stack init')", s->path);
	if (store_begin(s, err) != 0)
		return -1;
	if (schema_version(s, &version, err) != 0)
		goto fail;
	if (version == 0) {
		if (store_exec(s, schema_pg_v12, err) != 0)
			goto fail;
		version = 12;
	}
	for (v = version; v < 12 + schema_pg_count; v++)
		if (store_exec(s, schema_pg[v - 12], err) != 0)
			goto fail;
	/* v is a number orch chose, not data. */
	sql = xasprintf("INSERT INTO orch_meta (key, value) VALUES ('schema_version', '%d')"
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value", v);
	if (store_exec(s, sql, err) != 0) {
		free(sql);
		goto fail;
	}
	free(sql);
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

int pg_open(struct store *s, const char *uri, unsigned flags, struct orch_error *err)
{
	char sql[160];
	int ms = s->busy_ms > 0 ? s->busy_ms : 1;

	s->path = displayed_name(uri);
	s->uri = xstrdup(uri);
	s->pg = xcalloc(1, sizeof(*s->pg));
	if (connect_to(s, uri, err) != 0)
		return -1;
	/* Every wait for a lock ends at the busy timeout (0 would be none);
	 * a transaction left open by a stopped program ends in 5 minutes. */
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d;"
		 " SET idle_in_transaction_session_timeout = 300000;"
		 " SET client_min_messages = warning", ms);
	if (store_exec(s, sql, err) != 0 || migrate(s, flags, err) != 0) {
		if (err && err->msg && !strstr(err->msg, s->path))
			orch_error_prefix(err, "'%s'", s->path);
		return -1;
	}
	return 0;
}

void pg_close(struct store *s)
{
	size_t i;

	if (!s->pg)
		return;
	if (s->pg->conn)
		PQfinish(s->pg->conn);
	free(s->pg->errmsg);
	free(s->pg->listening);
	for (i = 0; i < s->pg->nprepared; i++)
		free(s->pg->prepared[i].key);
	free(s->pg->prepared);
	free(s->pg);
	s->pg = NULL;
}

/* --- other connections' commits (lib/watch.c) --- */

int pg_listen(struct store *s, struct orch_error *err)
{
	struct pg_conn *c = s->pg;

	if (!c->listening) {
		if (pg_exec(s, "LISTEN orch_changed", err) != 0)
			return -1;
		c->listening = xstrdup("orch_changed");
	}
	return PQsocket(c->conn);
}

int pg_notified(struct store *s, struct orch_error *err)
{
	struct pg_conn *c = s->pg;
	int self = PQbackendPID(c->conn), other = 0;
	PGnotify *n;

	if (!PQconsumeInput(c->conn)) {
		set_error_from(c, NULL);
		return pg_error(s, err, "waiting for a change");
	}
	while ((n = PQnotifies(c->conn))) {
		/* Our own commits are not news, as SQLite's data_version
		 * moves only for other connections. */
		if (n->be_pid != self)
			other = 1;
		PQfreemem(n);
	}
	return other;
}
