/*
 * conversation.h - what people and stacks said to a stack, and what it
 * answered: the user messages with the communicator's replies, and the
 * inter-stack messages it sent and received (read ones included).
 *
 * The list functions call the caller's FN for each message, oldest first,
 * until FN returns nonzero; they return 0, FN's nonzero return, or -1
 * with ERR. A message's strings are borrowed for the call.
 *
 * conversation_write() is how orch prints a user message with its reply
 * for a person: `orch-stack messages`, and anything that waits for a
 * reply (say --wait) prints it the same way:
 *
 *   rc = conversation_message(s, id, print_it, stdout, &err);
 *   ... where print_it calls conversation_write(stdout, m, TERM_WIDTH)
 */
#ifndef ORCH_CONVERSATION_H
#define ORCH_CONVERSATION_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/* A user message and the communicator's reply. */
struct conversation_message {
	int64_t id;
	int64_t stack_id;
	const char *sender;       /* who sent it: `say --from`, "user" by default */
	const char *content;
	int64_t created_at;
	int processed;            /* the communicator has dealt with it */
	const char *reply;        /* its answer, or NULL */
	int64_t replied_at;       /* 0 without a reply */
	int64_t parked_at;        /* 0 unless the communicator gave up on it */
	int64_t attempts;         /* its failed communicator runs */
	const char *last_error;   /* the last one's error, or NULL */
};

enum conversation_flags {
	CONVERSATION_UNANSWERED = 1 << 0, /* only the messages without a reply */
};

/* STACK_ID's user messages, oldest first; FLAGS from enum conversation_flags. */
int conversation_list(struct store *s, int64_t stack_id, unsigned flags,
		      int (*fn)(const struct conversation_message *m, void *arg),
		      void *arg, struct orch_error *err);

/* User message ID: FN called once; 1 when it exists, 0 when not, -1 with ERR. */
int conversation_message(struct store *s, int64_t id,
			 int (*fn)(const struct conversation_message *m, void *arg),
			 void *arg, struct orch_error *err);

/*
 * Wait until user message ID has a reply, at most TIMEOUT_MS (0: no
 * limit), sleeping on the store's watch (lib/watch.h) in between, then
 * call FN with it. 1 when it came, 0 when the time ran out (FN not
 * called), -1 with ERR (66 when there is no such message).
 */
int conversation_wait_reply(struct store *s, int64_t id, int64_t timeout_ms,
			    int (*fn)(const struct conversation_message *m, void *arg),
			    void *arg, struct orch_error *err);

/*
 * Write M for a person, in WIDTH columns: a line with its time (UTC), its
 * sender and its number, its text indented and wrapped, then the reply's
 * time and text the same way, or why there is none yet. Everything the
 * user or the agent wrote goes through escape_term(). The caller checks
 * ferror(FP).
 */
void conversation_write(FILE *fp, const struct conversation_message *m, int width);

/*
 * M as `orch-stack messages --json` prints it, a new reference:
 * {"id","sender","content","created_at","processed","reply","replied_at"}.
 * NULL with ERR (65) when its text is not UTF-8.
 */
json_t *conversation_json(const struct conversation_message *m, struct orch_error *err);

/* An inter-stack message a stack sent or received. */
struct conversation_stack_message {
	int64_t id;
	int sent;                 /* 1: the stack sent it; 0: it received it */
	const char *from;         /* the sender's name; NULL when it was deleted */
	const char *to;           /* the receiver's name; NULL for a broadcast */
	const char *content;
	int64_t created_at;
	int64_t read_at;          /* received: when the stack read it; sent: when
				     the first receiver did; 0 while unread */
	int64_t readers;          /* the stacks that have read it */
};

/* The inter-stack messages STACK_ID sent or received, oldest first. */
int conversation_stack_list(struct store *s, int64_t stack_id,
			    int (*fn)(const struct conversation_stack_message *m, void *arg),
			    void *arg, struct orch_error *err);

/* M for a person, as conversation_write() writes a user message. */
void conversation_stack_write(FILE *fp, const struct conversation_stack_message *m,
			      int width);

/*
 * M as `orch-stack messages --stacks --json` prints it, a new reference:
 * {"id","direction","from","to","content","created_at","read_at",
 * "readers"}, direction "sent" or "received", from and to null for a
 * deleted stack and a broadcast. NULL with ERR (65) as conversation_json().
 */
json_t *conversation_stack_json(const struct conversation_stack_message *m,
				struct orch_error *err);

#endif
