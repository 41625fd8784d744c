/*
 * orch-stack init, create, start, pause, stop, rm, say, todo: what a
 * person changes.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "conversation.h"
#include "doc.h"
#include "jsonio.h"
#include "orch.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

static void check(int rc, struct orch_error *err)
{
	if (rc != 0)
		cli_die_error(err);
}

int stack_init(struct store *s, const struct opts *o)
{
	(void)s;
	(void)o;
	return 0;
}

int stack_create(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t id;

	if (admin_check_name(o->args[1], &err) != 0)
		cli_usage_error(stack_usage_line, "%s", err.msg);
	check(admin_create(s, o->args[1], o->idea, o->now, &id, &err), &err);
	return 0;
}

int stack_set_state(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	const char *sub = o->args[0];
	const char *state = strcmp(sub, "start") == 0 ? "running"
			  : strcmp(sub, "pause") == 0 ? "paused" : "stopped";

	check(admin_set_state(s, stack_find(s, o->args[1]), state, o->now, &err), &err);
	return 0;
}

int stack_rm(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;

	check(admin_remove(s, stack_find(s, o->args[1]), &err), &err);
	return 0;
}

/* say --wait: the reply, as `orch-stack messages` prints it. */
static int print_reply(const struct conversation_message *m, void *arg)
{
	(void)arg;
	conversation_write(stdout, m, TERM_WIDTH);
	return 0;
}

int stack_say(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	int64_t id;
	int rc;

	if ((o->given & F_TIMEOUT) && !o->wait)
		cli_usage_error(stack_usage_line, "--timeout needs --wait");
	stack_get(s, o->args[1], &row);
	check(admin_add_user_message(s, row.id, o->from ? o->from : "user",
				     o->args[2], o->now, &id, &err), &err);
	if (o->wait && strcmp(row.execution_state, "running") != 0)
		cli_warn("stack '%s' is %s: no reply comes until it is started",
			 row.name, row.execution_state);
	stack_row_release(&row);
	if (!o->wait)
		return 0;
	if ((rc = conversation_wait_reply(s, id, o->timeout, print_reply, NULL, &err)) < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_TEMPFAIL, "no reply to message %lld within %lld ms;"
			" it stays for the communicator", (long long)id, (long long)o->timeout);
	return 0;
}

int stack_todo_add(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;

	check(admin_add_todo(s, stack_find(s, o->args[2]), o->args[3],
			     o->priority ? o->priority : 3, o->now, &err), &err);
	return 0;
}

static int todo_json(const struct admin_todo *t, void *arg)
{
	json_t *v = xjson(json_pack("{sIsIsssssIsosI}",
		"id", (json_int_t)t->id, "priority", (json_int_t)t->priority,
		"status", t->status, "content", t->content,
		"created_at", (json_int_t)t->created_at,
		"completed_at", t->completed_at ? json_integer(t->completed_at) : json_null(),
		"attempts", (json_int_t)t->attempts));

	doc_set_bytes(v, "last_error", t->last_error,
		      t->last_error ? strlen(t->last_error) : 0);

	(void)arg;
	json_write(stdout, v, 0);
	json_decref(v);
	return 0;
}

static int todo_line(const struct admin_todo *t, void *arg)
{
	(void)arg;
	printf("%-6lld %-3lld %-11s ", (long long)t->id, (long long)t->priority, t->status);
	term_cut(stdout, t->content, 56, 0);
	putchar('\n');
	/* Why it is parked, or why its last run failed. */
	if (t->last_error && strcmp(t->status, "completed") != 0) {
		printf("%-22s after %lld failed run%s: ", "", (long long)t->attempts,
		       t->attempts == 1 ? "" : "s");
		term_cut(stdout, t->last_error, 60, 0);
		putchar('\n');
	}
	return 0;
}

int stack_todo_list(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t id = stack_find(s, o->args[2]);

	if (!o->json)
		printf("%-6s %-3s %-11s %s\n", "ID", "PRI", "STATUS", "CONTENT");
	check(admin_list_todos(s, id, o->json ? todo_json : todo_line, NULL, &err), &err);
	return 0;
}
