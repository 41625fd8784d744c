/*
 * orch-stack - administer stacks: how a person drives the store.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "jsonio.h"
#include "orch.h"
#include "snapshot.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]";

static const char help_text[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]\n"
	"\n"
	"  init                            create the database\n"
	"  create NAME [--idea TEXT]       a new idle stack\n"
	"  list [--json]                   every stack\n"
	"  names                           every stack's name, one a line\n"
	"  show --json STACK               the stack's orch.snapshot document\n"
	"  start STACK                     run it from the next cycle on\n"
	"  pause STACK                     stop running it, for now\n"
	"  stop STACK                      stop running it\n"
	"  rm STACK                        delete it and all it holds\n"
	"  say STACK TEXT [--from SENDER]  a user message to the stack\n"
	"  todo add STACK TEXT [--priority 1-5]\n"
	"  todo list STACK [--json]\n"
	"\n"
	"STACK is a name or an id.\n"
	"  --db PATH     the database (default $ORCH_DB, else\n"
	"                ~/.local/share/orch/orch.db)\n"
	"  --now MS      the clock, in ms since the epoch\n"
	"  -h, --help    print this help\n"
	"  --version     print the version\n";

struct opts {
	const char *db;     /* borrowed from argv, or NULL */
	int64_t now;        /* the clock */
	const char *idea;   /* --idea, borrowed */
	const char *from;   /* --from, borrowed */
	int64_t priority;   /* --priority, 0 when not given */
	int json;           /* --json */
	char **args;        /* borrowed: the operands, subcommand first */
	int nargs;          /* operands */
};

static struct store *open_store(const struct opts *o, unsigned flags)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct store *s;
	char *path;

	if (!(path = store_default_path(o->db, &err)) ||
	    !(s = store_open(path, flags, &err)))
		cli_die_error(&err);
	free(path);
	return s;
}

static int64_t find_stack(struct store *s, const char *ref)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	int64_t id;
	int rc = store_find_stack(s, ref, &row, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no stack '%s'", ref);
	id = row.id;
	stack_row_release(&row);
	return id;
}

static void need_args(const struct opts *o, int n, const char *usage)
{
	if (o->nargs < n)
		cli_usage_error(usage_line, "usage: orch-stack %s", usage);
	if (o->nargs > n)
		cli_usage_error(usage_line, "unexpected argument '%s'", o->args[n]);
}

static void check(int rc, struct orch_error *err)
{
	if (rc != 0)
		cli_die_error(err);
}

static sqlite3_stmt *prepare(struct store *s, const char *sql)
{
	struct orch_error err = ORCH_ERROR_INIT;
	sqlite3_stmt *st = store_prepare(s, sql, &err);

	if (!st)
		cli_die_error(&err);
	return st;
}

static const char *text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

/* Print at most WIDTH bytes of S, ending in "..." when it is cut. */
static void print_cut(const char *s, int width)
{
	int n = (int)strlen(s);

	if (n <= width)
		printf("%-*s", width, s);
	else
		printf("%.*s...", width - 3, s);
}

static void stack_list(struct store *s, const struct opts *o)
{
	sqlite3_stmt *st = prepare(s,
		"SELECT id, name, execution_state, phase, total_cycles, next_run_at, created_at,"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id AND t.status = 'pending'),"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id),"
		" (SELECT count(*) FROM user_messages m WHERE m.stack_id = s.id AND m.processed = 0)"
		" FROM stacks s ORDER BY id");
	int rc;

	if (!o->json)
		printf("%-5s %-20s %-8s %-12s %6s %9s %8s\n", "ID", "NAME", "STATE",
		       "PHASE", "CYCLES", "TODOS", "MESSAGES");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			json_t *v = xjson(json_pack("{sIsssssssIsIsIsIsIsI}",
				"id", (json_int_t)sqlite3_column_int64(st, 0),
				"name", text(st, 1), "execution_state", text(st, 2),
				"phase", text(st, 3),
				"total_cycles", (json_int_t)sqlite3_column_int64(st, 4),
				"next_run_at", (json_int_t)sqlite3_column_int64(st, 5),
				"created_at", (json_int_t)sqlite3_column_int64(st, 6),
				"pending_todos", (json_int_t)sqlite3_column_int64(st, 7),
				"todos", (json_int_t)sqlite3_column_int64(st, 8),
				"unprocessed_messages", (json_int_t)sqlite3_column_int64(st, 9)));
			json_write(stdout, v, 0);
			json_decref(v);
			continue;
		}
		char todos[48];
		int n = snprintf(todos, sizeof(todos), "%lld/%lld",
				 (long long)sqlite3_column_int64(st, 7),
				 (long long)sqlite3_column_int64(st, 8));

		if (n < 0 || (size_t)n >= sizeof(todos))
			cli_die(ORCH_EX_SOFTWARE, "todo count too long");
		printf("%-5lld ", (long long)sqlite3_column_int64(st, 0));
		print_cut(text(st, 1), 20);
		printf(" %-8s ", text(st, 2));
		print_cut(text(st, 3), 12);
		printf(" %6lld %9s %8lld\n", (long long)sqlite3_column_int64(st, 4), todos,
		       (long long)sqlite3_column_int64(st, 9));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		cli_die(ORCH_EX_SOFTWARE, "listing stacks: %s", sqlite3_errmsg(s->db));
}

static void stack_names(struct store *s)
{
	sqlite3_stmt *st = prepare(s, "SELECT name FROM stacks ORDER BY name");

	while (sqlite3_step(st) == SQLITE_ROW)
		printf("%s\n", text(st, 0));
	sqlite3_finalize(st);
}

static void todo_list(struct store *s, int64_t id, const struct opts *o)
{
	sqlite3_stmt *st = prepare(s, "SELECT id, priority, status, content, created_at,"
				   " completed_at FROM todos WHERE stack_id = ? ORDER BY id");

	sqlite3_bind_int64(st, 1, id);
	if (!o->json)
		printf("%-6s %-3s %-11s %s\n", "ID", "PRI", "STATUS", "CONTENT");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (o->json) {
			json_t *v = xjson(json_pack("{sIsIsssssIso}",
				"id", (json_int_t)sqlite3_column_int64(st, 0),
				"priority", (json_int_t)sqlite3_column_int64(st, 1),
				"status", text(st, 2), "content", text(st, 3),
				"created_at", (json_int_t)sqlite3_column_int64(st, 4),
				"completed_at", sqlite3_column_type(st, 5) == SQLITE_NULL
					? json_null()
					: json_integer(sqlite3_column_int64(st, 5))));
			json_write(stdout, v, 0);
			json_decref(v);
			continue;
		}
		printf("%-6lld %-3lld %-11s ", (long long)sqlite3_column_int64(st, 0),
		       (long long)sqlite3_column_int64(st, 1), text(st, 2));
		print_cut(text(st, 3), 56);
		printf("\n");
	}
	sqlite3_finalize(st);
}

static int run(const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	const char *sub = o->args[0];
	struct store *s;
	int64_t id;

	if (strcmp(sub, "init") == 0) {
		need_args(o, 1, "init");
		store_close(open_store(o, STORE_CREATE));
		return 0;
	}
	s = open_store(o, 0);
	if (strcmp(sub, "create") == 0) {
		need_args(o, 2, "create NAME [--idea TEXT]");
		if (admin_check_name(o->args[1], &err) != 0)
			cli_usage_error(usage_line, "%s", err.msg);
		check(admin_create(s, o->args[1], o->idea, o->now, &id, &err), &err);
	} else if (strcmp(sub, "list") == 0) {
		need_args(o, 1, "list [--json]");
		stack_list(s, o);
	} else if (strcmp(sub, "names") == 0) {
		need_args(o, 1, "names");
		stack_names(s);
	} else if (strcmp(sub, "show") == 0) {
		json_t *snap;

		need_args(o, 2, "show --json STACK");
		if (!o->json)
			cli_usage_error(usage_line, "show needs --json");
		if (!(snap = snapshot_load(s, find_stack(s, o->args[1]), &err)))
			cli_die_error(&err);
		json_write(stdout, snap, JSON_OUT_PRETTY);
		json_decref(snap);
	} else if (strcmp(sub, "start") == 0 || strcmp(sub, "pause") == 0 ||
		   strcmp(sub, "stop") == 0) {
		const char *state = strcmp(sub, "start") == 0 ? "running"
				  : strcmp(sub, "pause") == 0 ? "paused" : "stopped";

		if (o->nargs != 2)
			cli_usage_error(usage_line, "usage: orch-stack %s STACK", sub);
		check(admin_set_state(s, find_stack(s, o->args[1]), state, o->now, &err), &err);
	} else if (strcmp(sub, "rm") == 0) {
		need_args(o, 2, "rm STACK");
		check(admin_remove(s, find_stack(s, o->args[1]), &err), &err);
	} else if (strcmp(sub, "say") == 0) {
		need_args(o, 3, "say STACK TEXT [--from SENDER]");
		check(admin_add_user_message(s, find_stack(s, o->args[1]),
					     o->from ? o->from : "user", o->args[2],
					     o->now, &err), &err);
	} else if (strcmp(sub, "todo") == 0 && o->nargs > 1 && strcmp(o->args[1], "add") == 0) {
		need_args(o, 4, "todo add STACK TEXT [--priority 1-5]");
		check(admin_add_todo(s, find_stack(s, o->args[2]), o->args[3],
				     o->priority ? o->priority : 3, o->now, &err), &err);
	} else if (strcmp(sub, "todo") == 0 && o->nargs > 1 && strcmp(o->args[1], "list") == 0) {
		need_args(o, 3, "todo list STACK [--json]");
		todo_list(s, find_stack(s, o->args[2]), o);
	} else if (strcmp(sub, "todo") == 0) {
		cli_usage_error(usage_line, "usage: orch-stack todo add|list STACK ...");
	} else {
		cli_usage_error(usage_line, "unknown subcommand '%s'", sub);
	}
	store_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":h";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ "now", required_argument, NULL, 258 },
		{ "idea", required_argument, NULL, 259 },
		{ "from", required_argument, NULL, 260 },
		{ "priority", required_argument, NULL, 261 },
		{ "json", no_argument, NULL, 262 },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int c, now_set = 0;

	orch_progname = "orch-stack";
	memset(&o, 0, sizeof(o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 256:
			cli_version();
		case 257:
			o.db = optarg;
			break;
		case 258:
			o.now = cli_int(usage_line, "--now", optarg, 0, INT64_MAX / 2);
			now_set = 1;
			break;
		case 259:
			o.idea = optarg;
			break;
		case 260:
			o.from = optarg;
			break;
		case 261:
			o.priority = cli_int(usage_line, "--priority", optarg, 1, 5);
			break;
		case 262:
			o.json = 1;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		cli_usage_error(usage_line, "no subcommand given");
	o.args = argv + optind;
	o.nargs = argc - optind;
	if (!now_set)
		o.now = orch_now_ms();
	return cli_finish(run(&o));
}
