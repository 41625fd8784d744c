#include <stdlib.h>
#include <string.h>

#include "conversation.h"
#include "doc.h"
#include "escape.h"
#include "orch.h"
#include "term.h"
#include "watch.h"
#include "xalloc.h"
#include "banned.h"

#define INDENT 2      /* the text under its heading line */
#define NAME_WIDTH 40 /* a sender's or a stack's name, cut to fit */

struct messages_each {
	int (*fn)(const struct conversation_message *m, void *arg);
	void *arg;
};

static const char *text(struct stmt *st, int col)
{
	const char *t = store_column_text(st, col);

	return t ? t : "";
}

static int message_row(struct stmt *st, void *arg)
{
	struct messages_each *e = arg;
	struct conversation_message m = {
		.id = stmt_int(st, 0),
		.stack_id = stmt_int(st, 1),
		.sender = text(st, 2),
		.content = text(st, 3),
		.created_at = stmt_int(st, 4),
		.processed = stmt_int(st, 5),
		.reply = store_column_text(st, 6),
		.replied_at = stmt_int(st, 7),
		.parked_at = stmt_int(st, 8),
		.attempts = stmt_int(st, 9),
		.last_error = store_column_text(st, 10),
	};

	return e->fn(&m, e->arg);
}

#define MESSAGE_COLUMNS "id, stack_id, sender, content, created_at, processed," \
	" response, COALESCE(responded_at, 0), COALESCE(parked_at, 0), attempts," \
	" last_error FROM user_messages"

int conversation_list(struct store *s, int64_t stack_id, unsigned flags,
		      int (*fn)(const struct conversation_message *m, void *arg),
		      void *arg, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT " MESSAGE_COLUMNS
		" WHERE stack_id = ?1 AND (?2 = 0 OR response IS NULL)"
		" ORDER BY created_at, id", err);
	struct messages_each e = { fn, arg };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, (flags & CONVERSATION_UNANSWERED) != 0);
	return store_each(s, st, message_row, &e, "reading the messages", err);
}

/* Counts the rows it passes on, for conversation_message(). */
struct counted {
	struct messages_each each; /* the caller's */
	int seen;                  /* rows passed on */
};

static int counted_row(struct stmt *st, void *arg)
{
	struct counted *c = arg;

	c->seen++;
	return message_row(st, &c->each);
}

int conversation_message(struct store *s, int64_t id,
			 int (*fn)(const struct conversation_message *m, void *arg),
			 void *arg, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT " MESSAGE_COLUMNS " WHERE id = ?", err);
	struct counted c = { { fn, arg }, 0 };
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	rc = store_each(s, st, counted_row, &c, "reading the message", err);
	if (rc < 0)
		return -1;
	return c.seen > 0;
}

/* What conversation_wait_reply() looks at each time: a copy of the reply's
 * message for FN when it has one. */
struct waited {
	int replied;                                   /* it has a reply */
	int parked;                                    /* it never will */
	int64_t attempts;                              /* then: after these runs */
	int (*fn)(const struct conversation_message *m, void *arg);
	void *arg;
	int rc;                                        /* FN's return */
};

static int check_reply(const struct conversation_message *m, void *arg)
{
	struct waited *w = arg;

	if (m->reply) {
		w->replied = 1;
		w->rc = w->fn(m, w->arg);
	} else if (m->parked_at) {
		w->parked = 1;
		w->attempts = m->attempts;
	}
	return 0;
}

int conversation_wait_reply(struct store *s, int64_t id, int64_t timeout_ms,
			    int (*fn)(const struct conversation_message *m, void *arg),
			    void *arg, struct orch_error *err)
{
	struct waited w = { 0, 0, 0, fn, arg, 0 };
	struct store_watch *watch = store_watch_new(s);
	int64_t deadline = timeout_ms > 0 ? orch_mono_ms() + timeout_ms : -1, left;
	int rc;

	for (;;) {
		rc = conversation_message(s, id, check_reply, &w, err);
		if (rc == 0)
			rc = orch_error_set(err, ORCH_EX_NOINPUT, "no user message %lld",
					    (long long)id);
		if (rc < 0 || w.replied)
			break;
		if (w.parked) {
			rc = orch_error_set(err, ORCH_EX_DATAERR, "the communicator gave up on"
					    " message %lld after %lld failed runs; 'orch-stack"
					    " messages retry' gives it back", (long long)id,
					    (long long)w.attempts);
			break;
		}
		left = deadline < 0 ? -1 : deadline - orch_mono_ms();
		if (deadline >= 0 && left <= 0) {
			rc = 0;
			break;
		}
		if (store_watch_wait(watch, left, NULL, 0, err) < 0) {
			rc = -1;
			break;
		}
	}
	store_watch_free(watch);
	return rc < 0 ? -1 : w.replied;
}

/* The heading line of a message: its time, who, and NOTE (may be NULL). */
static void heading(FILE *fp, int64_t at, const char *who, const char *note)
{
	char when[TERM_TIME_SIZE];

	fprintf(fp, "%s UTC  ", term_utc(at, when));
	term_cut(fp, who, NAME_WIDTH, 0);
	if (note)
		fprintf(fp, "  %s", note);
	putc('\n', fp);
}

void conversation_write(FILE *fp, const struct conversation_message *m, int width)
{
	char *note = xasprintf("(message %lld)", (long long)m->id);

	heading(fp, m->created_at, m->sender, note);
	term_block(fp, m->content, strlen(m->content), INDENT, width);
	if (m->reply) {
		heading(fp, m->replied_at, "communicator", NULL);
		term_block(fp, m->reply, strlen(m->reply), INDENT, width);
	} else if (m->parked_at) {
		char *why = xasprintf("(no reply: parked after %lld failed runs, the last: %s)",
				      (long long)m->attempts, m->last_error ? m->last_error : "-");

		term_block(fp, why, strlen(why), INDENT, width);
		free(why);
	} else {
		fprintf(fp, "%*s%s\n", INDENT, "", m->processed
			? "(no reply: the communicator dealt with it without one)"
			: "(no reply yet: the communicator answers at a coming cycle)");
	}
	free(note);
}

json_t *conversation_json(const struct conversation_message *m, struct orch_error *err)
{
	json_t *v = xjson(json_object());
	char *what = xasprintf("user message %lld", (long long)m->id);
	int rc;

	xjson_set(v, "id", xjson(json_integer(m->id)));
	rc = doc_set_text(v, "sender", m->sender, what, err);
	if (rc == 0)
		rc = doc_set_text(v, "content", m->content, what, err);
	xjson_set(v, "created_at", xjson(json_integer(m->created_at)));
	xjson_set(v, "processed", json_boolean(m->processed));
	if (rc == 0)
		rc = doc_set_text(v, "reply", m->reply, what, err);
	xjson_set(v, "replied_at", m->reply ? xjson(json_integer(m->replied_at)) : json_null());
	xjson_set(v, "attempts", xjson(json_integer(m->attempts)));
	if (rc == 0)
		rc = doc_set_text(v, "last_error", m->last_error, what, err);
	xjson_set(v, "parked_at", m->parked_at ? xjson(json_integer(m->parked_at)) : json_null());
	free(what);
	if (rc == 0)
		return v;
	json_decref(v);
	return NULL;
}

struct stack_each {
	int (*fn)(const struct conversation_stack_message *m, void *arg);
	void *arg;
};

static int stack_message_row(struct stmt *st, void *arg)
{
	struct stack_each *e = arg;
	struct conversation_stack_message m = {
		.id = stmt_int(st, 0),
		.sent = stmt_int(st, 1),
		.from = store_column_text(st, 2),
		.to = store_column_text(st, 3),
		.content = text(st, 4),
		.created_at = stmt_int(st, 5),
		.read_at = stmt_int(st, 6),
		.readers = stmt_int(st, 7),
	};

	return e->fn(&m, e->arg);
}

int conversation_stack_list(struct store *s, int64_t stack_id,
			    int (*fn)(const struct conversation_stack_message *m, void *arg),
			    void *arg, struct orch_error *err)
{
	/* Sent: from the stack. Received: to it, or broadcast by another. */
	struct stmt *st = store_prepare(s,
		"SELECT m.id, m.from_stack_id IS NOT DISTINCT FROM ?1, f.name, t.name, m.content, m.created_at,"
		" COALESCE(CASE WHEN m.from_stack_id IS NOT DISTINCT FROM ?1"
		"   THEN (SELECT min(read_at) FROM message_reads r WHERE r.message_id = m.id)"
		"   ELSE (SELECT read_at FROM message_reads r"
		"         WHERE r.message_id = m.id AND r.stack_id = ?1) END, 0),"
		" (SELECT count(*) FROM message_reads r WHERE r.message_id = m.id)"
		" FROM messages m"
		" LEFT JOIN stacks f ON f.id = m.from_stack_id"
		" LEFT JOIN stacks t ON t.id = m.to_stack_id"
		" WHERE m.from_stack_id = ?1 OR m.to_stack_id = ?1"
		"    OR (m.to_stack_id IS NULL AND m.from_stack_id IS DISTINCT FROM ?1)"
		" ORDER BY m.created_at, m.id", err);
	struct stack_each e = { fn, arg };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	return store_each(s, st, stack_message_row, &e, "reading the messages", err);
}

void conversation_stack_write(FILE *fp, const struct conversation_stack_message *m,
			      int width)
{
	char when[TERM_TIME_SIZE], *who, *note;

	who = xasprintf("%s -> %s", m->from ? m->from : "(a deleted stack)",
			m->to ? m->to : "all stacks");
	if (m->sent && !m->to && m->readers)
		note = xasprintf("(message %lld, read by %lld stack%s)", (long long)m->id,
				 (long long)m->readers, m->readers == 1 ? "" : "s");
	else if (m->read_at)
		note = xasprintf("(message %lld, read %s UTC)", (long long)m->id,
				 term_utc(m->read_at, when));
	else
		note = xasprintf("(message %lld, unread)", (long long)m->id);
	heading(fp, m->created_at, who, note);
	term_block(fp, m->content, strlen(m->content), INDENT, width);
	free(who);
	free(note);
}

json_t *conversation_stack_json(const struct conversation_stack_message *m,
				struct orch_error *err)
{
	json_t *v = xjson(json_object());
	char *what = xasprintf("message %lld", (long long)m->id);
	int rc;

	xjson_set(v, "id", xjson(json_integer(m->id)));
	xjson_set(v, "direction", xjson(json_string(m->sent ? "sent" : "received")));
	rc = doc_set_text(v, "from", m->from, what, err);
	if (rc == 0)
		rc = doc_set_text(v, "to", m->to, what, err);
	if (rc == 0)
		rc = doc_set_text(v, "content", m->content, what, err);
	xjson_set(v, "created_at", xjson(json_integer(m->created_at)));
	xjson_set(v, "read_at", m->read_at ? xjson(json_integer(m->read_at)) : json_null());
	xjson_set(v, "readers", xjson(json_integer(m->readers)));
	free(what);
	if (rc == 0)
		return v;
	json_decref(v);
	return NULL;
}
