/*
 * orch-stack messages: the conversation, user messages with their
 * replies, or the messages between stacks.
 */
#include <stdio.h>

#include "cli.h"
#include "conversation.h"
#include "jsonio.h"
#include "stack.h"
#include "term.h"
#include "banned.h"

/* Where the messages go, and whether one was written before. */
struct printer {
	int json;   /* --json: one object a line */
	int count;  /* messages written */
};

static void put_json(json_t *v, struct orch_error *err)
{
	if (!v)
		cli_die_error(err);
	json_write(stdout, v, 0);
	json_decref(v);
}

static int user_message(const struct conversation_message *m, void *arg)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct printer *p = arg;

	if (p->json) {
		put_json(conversation_json(m, &err), &err);
	} else {
		if (p->count)
			putchar('\n');
		conversation_write(stdout, m, TERM_WIDTH);
	}
	p->count++;
	return 0;
}

static int stack_message(const struct conversation_stack_message *m, void *arg)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct printer *p = arg;

	if (p->json) {
		put_json(conversation_stack_json(m, &err), &err);
	} else {
		if (p->count)
			putchar('\n');
		conversation_stack_write(stdout, m, TERM_WIDTH);
	}
	p->count++;
	return 0;
}

int stack_messages(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct printer p = { o->json, 0 };
	int64_t id = stack_find(s, o->args[1]);
	int rc;

	if (o->stacks && o->unanswered)
		cli_usage_error(stack_usage_line, "--unanswered and --stacks do not go together");
	if (o->stacks)
		rc = conversation_stack_list(s, id, stack_message, &p, &err);
	else
		rc = conversation_list(s, id, o->unanswered ? CONVERSATION_UNANSWERED : 0,
				       user_message, &p, &err);
	if (rc != 0)
		cli_die_error(&err);
	return 0;
}
