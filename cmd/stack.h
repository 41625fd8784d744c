/*
 * stack.h - what the files of orch-stack share: its options, the helpers
 * of cmd/orch-stack.c, and each subcommand group's entry points, one
 * cmd/stack-GROUP.c a group. cmd/orch-stack.c holds main() and the one
 * table that dispatches to them.
 */
#ifndef ORCH_STACK_CMD_H
#define ORCH_STACK_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* The flags that belong to some subcommands only, in stack_flag_names order. */
enum sub_flags {
	F_IDEA = 1 << 0,
	F_FROM = 1 << 1,
	F_PRIORITY = 1 << 2,
	F_JSON = 1 << 3,
	F_LIMIT = 1 << 4,
	F_CYCLE = 1 << 5,
	F_SINCE = 1 << 6,
	F_CONFIG = 1 << 7,
	F_FORMAT = 1 << 8,
	F_VERSION = 1 << 9,
	F_OUTPUT = 1 << 10,
	F_UNANSWERED = 1 << 11,
	F_STACKS = 1 << 12,
	F_AGENT = 1 << 13,
	F_FAILED = 1 << 14,
	F_QUERY = 1 << 15,
	F_WAIT = 1 << 16,
	F_TIMEOUT = 1 << 17,
	F_DRY_RUN = 1 << 18,
	F_STATUS = 1 << 19,
	F_DAILY = 1 << 20,
	F_TOTAL = 1 << 21,
	F_TO = 1 << 22,
};

#define HISTORY_LIMIT 20 /* history's and log's rows unless --limit says */
#define SAY_WAIT_MS 300000 /* how long say --wait waits unless --timeout says */

struct opts {
	const char *db;         /* --db, borrowed, or NULL */
	int64_t now;            /* the clock */
	const char *idea;       /* --idea, borrowed */
	const char *from;       /* --from, borrowed */
	int64_t priority;       /* --priority, 0 when not given */
	int json;               /* --json */
	int64_t limit;          /* --limit, HISTORY_LIMIT when not given */
	int64_t cycle;          /* --cycle, 0 when not given */
	int64_t since;          /* --since, 0 when not given */
	const char *config;     /* --config, borrowed */
	const char *format;     /* --format (graph): "dot" or "mermaid" */
	int64_t version;        /* --version N (artifact), 0 for the latest */
	const char *output;     /* -o FILE, borrowed, or NULL */
	int unanswered;         /* --unanswered */
	int stacks;             /* --stacks */
	const char *agent;      /* --agent NAME, borrowed */
	int failed;             /* --failed */
	const char *query;      /* -q TEXT, borrowed */
	int wait;               /* --wait (say) */
	int64_t timeout;        /* --timeout MS (say --wait), 0 for no limit */
	int dry_run;            /* --dry-run (gc) */
	const char *status;     /* --status STATUS (todo clear), borrowed, or NULL */
	int64_t daily;          /* --daily N (budget): -1 for "default" */
	int64_t total;          /* --total N (budget): -1 for "default" */
	const char *to;         /* --to DEST (copy), borrowed, or NULL */
	unsigned given;         /* enum sub_flags: which were given */
	char **args;            /* borrowed: the operands, subcommand first */
	int nargs;              /* operands */
};

extern const char stack_usage_line[];

/* STACK's row by name or id; a missing stack is "no stack 'REF'", 66. */
void stack_get(struct store *s, const char *ref, struct stack_row *row);
/* STACK's id, as stack_get() finds it. */
int64_t stack_find(struct store *s, const char *ref);
/* A whole number operand (a cycle, a version, an id) from 1, or 64. */
int64_t stack_number(const char *what, const char *arg);
/* -o FILE opened for writing (66 when it cannot be), else stdout. */
FILE *stack_output(const struct opts *o);
/* Close what stack_output() opened; a write error is 70. */
void stack_output_close(const struct opts *o, FILE *fp);

/* stack-admin.c: what changes the store. */
int stack_init(struct store *s, const struct opts *o);
int stack_create(struct store *s, const struct opts *o);
int stack_set_state(struct store *s, const struct opts *o);
int stack_rm(struct store *s, const struct opts *o);
int stack_say(struct store *s, const struct opts *o);
int stack_todo_add(struct store *s, const struct opts *o);
int stack_todo_list(struct store *s, const struct opts *o);

/* stack-show.c: the stacks as they are now. */
int stack_list(struct store *s, const struct opts *o);
int stack_names(struct store *s, const struct opts *o);
int stack_show(struct store *s, const struct opts *o);

/* stack-history.c: what the cycles did. */
int stack_history(struct store *s, const struct opts *o);
int stack_cycle(struct store *s, const struct opts *o);
int stack_graph(struct store *s, const struct opts *o);
int stack_usage(struct store *s, const struct opts *o);
/* cmd/stack-budget.c */
int stack_budget(struct store *s, const struct opts *o);

/* stack-messages.c: the conversation. */
int stack_messages(struct store *s, const struct opts *o);

/* stack-artifact.c: what the team made. */
int stack_artifact(struct store *s, const struct opts *o);
int stack_artifact_list(struct store *s, const struct opts *o);
int stack_artifact_versions(struct store *s, const struct opts *o);
int stack_artifact_diff(struct store *s, const struct opts *o);

/* stack-log.c: what every agent did. */
int stack_log(struct store *s, const struct opts *o);
int stack_log_show(struct store *s, const struct opts *o);

/* stack-report.c: the page. */
int stack_report(struct store *s, const struct opts *o);

/* stack-clean.c: what retention prunes now, and a person removes. */
int stack_gc(struct store *s, const struct opts *o);
int stack_todo_rm(struct store *s, const struct opts *o);
int stack_todo_retry(struct store *s, const struct opts *o);
int stack_messages_retry(struct store *s, const struct opts *o);
int stack_todo_clear(struct store *s, const struct opts *o);
int stack_messages_clear(struct store *s, const struct opts *o);
int stack_memory_clear(struct store *s, const struct opts *o);

/* stack-config.c */
int stack_config(struct store *s, const struct opts *o);

/* stack-copy.c: the whole store into another, verified. */
int stack_copy(struct store *s, const struct opts *o);

#endif
