/*
 * orch-stack - administer stacks: how a person drives the store. main(),
 * the options and the table of subcommands; each group of subcommands is
 * a cmd/stack-GROUP.c (stack.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "budget.h"
#include "cli.h"
#include "orch.h"
#include "stack.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

const char stack_usage_line[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]";

static const char help_text[] =
	"usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]\n"
	"\n"
	"  init                            create the database\n"
	"  create NAME [--idea TEXT]       a new idle stack\n"
	"  list [--json]                   every stack\n"
	"  names                           every stack's name, one a line\n"
	"  show [--json] STACK             a summary, or the orch.snapshot document\n"
	"  start STACK                     run it from the next cycle on\n"
	"  pause STACK                     stop running it, for now\n"
	"  stop STACK                      stop running it\n"
	"  rm STACK                        delete it and all it holds\n"
	"  say STACK TEXT [--from SENDER] [--wait [--timeout MS]]\n"
	"                                  a user message to the stack; with --wait,\n"
	"                                  print the reply when it comes (default\n"
	"                                  at most 300000 ms; 0: no limit)\n"
	"  messages STACK [--unanswered | --stacks] [--json]\n"
	"                                  the user messages and the replies, oldest\n"
	"                                  first; or the messages between stacks\n"
	"  todo add STACK TEXT [--priority 1-5]\n"
	"  todo list STACK [--json]\n"
	"  todo rm STACK ID\n"
	"  todo clear STACK [--status STATUS]\n"
	"                                  remove its todos of STATUS (default the\n"
	"                                  completed and cancelled ones)\n"
	"  todo retry STACK ID             give a parked todo back to the builder\n"
	"  messages clear STACK [--unanswered | --stacks]\n"
	"                                  remove its answered messages (or the\n"
	"                                  waiting ones, or those from other stacks)\n"
	"  messages retry STACK [ID]       give its parked messages (or one) back to\n"
	"                                  the communicator\n"
	"  memory clear STACK [AGENT]      forget what its agents (or one) remembered\n"
	"  gc [STACK] [--config FILE] [--dry-run] [--json]\n"
	"                                  prune the cycles, artifact versions and\n"
	"                                  messages retention no longer keeps\n"
	"  artifact STACK [--version N] [-o FILE]\n"
	"                                  the artifact's content (default the latest)\n"
	"  artifact list STACK [--json]    its versions, and the cycle and todo of each\n"
	"  artifact diff STACK A B         how version B differs from A, by diff -u\n"
	"  artifact versions STACK         its version numbers, one a line\n"
	"  history STACK [--limit N] [--json]\n"
	"                                  the latest cycles (default 20), newest first\n"
	"  cycle STACK N                   the orch.execution cycle N recorded\n"
	"  graph STACK [--cycle N] [--format dot|mermaid]\n"
	"                                  a cycle's executed graph, drawn (default the\n"
	"                                  latest recorded, as Graphviz DOT)\n"
	"  log STACK [--cycle N] [--agent NAME] [--failed] [--since MS] [--limit N]\n"
	"  log STACK [-q TEXT] [--json]    every agent run, newest first (default 20)\n"
	"  log show ID [--json]            one agent run whole: context, output, stderr\n"
	"  usage [STACK] [--json] [--since MS]\n"
	"                                  tokens per agent and UTC day\n"
	"  budget STACK [--daily N|default] [--total N|default] [--config FILE] [--json]\n"
	"                                  its token budgets and what is left; set its\n"
	"                                  own (0: none; default: the configuration's)\n"
	"  report STACK [-o FILE]          the stack on one HTML page, for a browser\n"
	"  config [--config FILE] [--json] every setting, its value and its origin\n"
	"  copy --to DEST [--json]         the whole store into DEST, an empty SQLite\n"
	"                                  file or PostgreSQL database, verified\n"
	"\n"
	"STACK is a name or an id.\n"
	"  --db PATH     the database (default $ORCH_DB, else\n"
	"                ~/.local/share/orch/orch.db)\n"
	"  --now MS      the clock, in ms since the epoch\n"
	"  -h, --help    print this help\n"
	"  --version     print the version\n";

static const char *const flag_names[] = {
	"--idea", "--from", "--priority", "--json", "--limit", "--cycle",
	"--since", "--config", "--format", "--version", "-o", "--unanswered",
	"--stacks", "--agent", "--failed", "-q", "--wait", "--timeout", "--dry-run",
	"--status", "--daily", "--total", "--to",
};

/* Which database a subcommand needs. */
enum stack_db {
	DB_NONE,   /* none: config */
	DB_CREATE, /* created if missing: init */
	DB_OPEN,   /* an existing one: the rest */
};

/* One subcommand. */
struct stack_command {
	const char *name;   /* the first word: "todo" */
	const char *sub;    /* the second, "add", or NULL */
	int nargs;          /* operands, the subcommand's words included */
	const char *usage;  /* as the help writes it, without "orch-stack " */
	unsigned flags;     /* enum sub_flags it takes */
	enum stack_db db;   /* the database it needs */
	int (*run)(struct store *s, const struct opts *o);
	int optional;       /* of the operands, how many may be left out */
};

/* The dispatch table: the one place a subcommand is declared. */
static const struct stack_command commands[] = {
	{ "init", NULL, 1, "init", 0, DB_CREATE, stack_init, 0 },
	{ "create", NULL, 2, "create NAME [--idea TEXT]", F_IDEA, DB_OPEN, stack_create, 0 },
	{ "list", NULL, 1, "list [--json]", F_JSON, DB_OPEN, stack_list, 0 },
	{ "names", NULL, 1, "names", 0, DB_OPEN, stack_names, 0 },
	{ "show", NULL, 2, "show [--json] STACK", F_JSON, DB_OPEN, stack_show, 0 },
	{ "start", NULL, 2, "start STACK", 0, DB_OPEN, stack_set_state, 0 },
	{ "pause", NULL, 2, "pause STACK", 0, DB_OPEN, stack_set_state, 0 },
	{ "stop", NULL, 2, "stop STACK", 0, DB_OPEN, stack_set_state, 0 },
	{ "rm", NULL, 2, "rm STACK", 0, DB_OPEN, stack_rm, 0 },
	{ "say", NULL, 3, "say STACK TEXT [--from SENDER] [--wait [--timeout MS]]",
	  F_FROM | F_WAIT | F_TIMEOUT, DB_OPEN, stack_say, 0 },
	{ "messages", NULL, 2, "messages STACK [--unanswered | --stacks] [--json]",
	  F_UNANSWERED | F_STACKS | F_JSON, DB_OPEN, stack_messages, 0 },
	{ "todo", "add", 4, "todo add STACK TEXT [--priority 1-5]", F_PRIORITY, DB_OPEN,
	  stack_todo_add, 0 },
	{ "todo", "list", 3, "todo list STACK [--json]", F_JSON, DB_OPEN, stack_todo_list, 0 },
	{ "todo", "rm", 4, "todo rm STACK ID", 0, DB_OPEN, stack_todo_rm, 0 },
	{ "todo", "clear", 3, "todo clear STACK [--status STATUS]", F_STATUS, DB_OPEN,
	  stack_todo_clear, 0 },
	{ "todo", "retry", 4, "todo retry STACK ID", 0, DB_OPEN, stack_todo_retry, 0 },
	{ "messages", "retry", 4, "messages retry STACK [ID]", 0, DB_OPEN,
	  stack_messages_retry, 1 },
	{ "messages", "clear", 3, "messages clear STACK [--unanswered | --stacks]",
	  F_UNANSWERED | F_STACKS, DB_OPEN, stack_messages_clear, 0 },
	{ "memory", "clear", 4, "memory clear STACK [AGENT]", 0, DB_OPEN, stack_memory_clear, 1 },
	{ "gc", NULL, 2, "gc [STACK] [--config FILE] [--dry-run] [--json]", F_DRY_RUN | F_JSON | F_CONFIG,
	  DB_OPEN, stack_gc, 1 },
	{ "artifact", NULL, 2, "artifact STACK [--version N] [-o FILE]", F_VERSION | F_OUTPUT,
	  DB_OPEN, stack_artifact, 0 },
	{ "artifact", "list", 3, "artifact list STACK [--json]", F_JSON, DB_OPEN,
	  stack_artifact_list, 0 },
	{ "artifact", "diff", 5, "artifact diff STACK A B", 0, DB_OPEN, stack_artifact_diff, 0 },
	{ "artifact", "versions", 3, "artifact versions STACK", 0, DB_OPEN,
	  stack_artifact_versions, 0 },
	{ "history", NULL, 2, "history STACK [--limit N] [--json]", F_LIMIT | F_JSON, DB_OPEN,
	  stack_history, 0 },
	{ "cycle", NULL, 3, "cycle STACK N", 0, DB_OPEN, stack_cycle, 0 },
	{ "log", NULL, 2, "log STACK [--cycle N] [--agent NAME] [--failed] [--since MS] "
	  "[--limit N] [-q TEXT] [--json]", F_CYCLE | F_AGENT | F_FAILED | F_SINCE | F_LIMIT |
	  F_QUERY | F_JSON, DB_OPEN, stack_log, 0 },
	{ "log", "show", 3, "log show ID [--json]", F_JSON, DB_OPEN, stack_log_show, 0 },
	{ "graph", NULL, 2, "graph STACK [--cycle N] [--format dot|mermaid]", F_CYCLE | F_FORMAT,
	  DB_OPEN, stack_graph, 0 },
	{ "usage", NULL, 2, "usage [STACK] [--json] [--since MS]", F_JSON | F_SINCE, DB_OPEN,
	  stack_usage, 1 },
	{ "budget", NULL, 2, "budget STACK [--daily N|default] [--total N|default] "
	  "[--config FILE] [--json]", F_DAILY | F_TOTAL | F_CONFIG | F_JSON, DB_OPEN,
	  stack_budget, 0 },
	{ "report", NULL, 2, "report STACK [-o FILE]", F_OUTPUT, DB_OPEN, stack_report, 0 },
	{ "config", NULL, 1, "config [--config FILE] [--json]", F_CONFIG | F_JSON, DB_NONE,
	  stack_config, 0 },
	{ "copy", NULL, 1, "copy --to DEST [--json]", F_TO | F_JSON, DB_OPEN, stack_copy, 0 },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

void stack_get(struct store *s, const char *ref, struct stack_row *row)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int rc = store_find_stack(s, ref, row, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no stack '%s'", ref);
}

int64_t stack_find(struct store *s, const char *ref)
{
	struct stack_row row;
	int64_t id;

	stack_get(s, ref, &row);
	id = row.id;
	stack_row_release(&row);
	return id;
}

int64_t stack_number(const char *what, const char *arg)
{
	return cli_int(stack_usage_line, what, arg, 1, INT64_MAX);
}

FILE *stack_output(const struct opts *o)
{
	FILE *fp;

	if (!o->output || strcmp(o->output, "-") == 0)
		return stdout;
	if (!(fp = fopen(o->output, "w")))
		cli_die(ORCH_EX_NOINPUT, "cannot create '%s': %s", o->output, strerror(errno));
	return fp;
}

void stack_output_close(const struct opts *o, FILE *fp)
{
	int bad;

	if (fp == stdout)
		return;
	bad = ferror(fp);
	if (fclose(fp) != 0 || bad)
		cli_die(ORCH_EX_SOFTWARE, "write error on '%s'", o->output);
}

static void need_args(const struct opts *o, int n, int optional, const char *usage)
{
	if (o->nargs < n - optional)
		cli_usage_error(stack_usage_line, "usage: orch-stack %s", usage);
	if (o->nargs > n)
		cli_usage_error(stack_usage_line, "unexpected argument '%s'", o->args[n]);
}

/* Refuse the subcommand-only flags that SUB does not take. */
static void allow(const struct opts *o, const char *sub, unsigned ok)
{
	size_t i;

	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (o->given & ~ok & (1u << i))
			cli_usage_error(stack_usage_line, "option '%s' does not apply to '%s'",
					flag_names[i], sub);
}

/*
 * The command O names: the entry whose second word is O's second operand,
 * else the group's entry without one. A group without such an entry
 * ("todo") needs its second word.
 */
static const struct stack_command *find_command(const struct opts *o)
{
	/* Static: still reachable when cli_usage_error() exits. */
	static char *words;
	const struct stack_command *plain = NULL, *any = NULL;
	const char *name = o->args[0];
	char *more;
	size_t i;

	for (i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		any = &commands[i];
		if (!commands[i].sub)
			plain = &commands[i];
		else if (o->nargs > 1 && strcmp(commands[i].sub, o->args[1]) == 0)
			return &commands[i];
	}
	if (!any)
		cli_usage_error(stack_usage_line, "unknown subcommand '%s'", name);
	if (plain)
		return plain;
	for (i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		more = xasprintf("%s%s%s", words ? words : "", words ? "|" : "", commands[i].sub);
		free(words);
		words = more;
	}
	cli_usage_error(stack_usage_line, "usage: orch-stack %s %s STACK ...", name, words);
}

static int run(const struct opts *o)
{
	const struct stack_command *c = find_command(o);
	struct store *s = NULL;
	char *what;
	int status;

	need_args(o, c->nargs, c->optional, c->usage);
	what = c->sub ? xasprintf("%s %s", c->name, c->sub) : xstrdup(c->name);
	allow(o, what, c->flags);
	free(what);
	if (c->db != DB_NONE)
		s = cli_open_store(o->db, c->db == DB_CREATE ? STORE_CREATE : 0);
	status = c->run(s, o);
	store_close(s);
	return status;
}

/* ARG, a todo status for --status, or a usage error listing them. */
static const char *todo_status(const char *arg)
{
	static char *all; /* static: still reachable when cli_usage_error() exits */
	char *more;
	size_t i;

	for (i = 0; admin_todo_statuses[i]; i++)
		if (strcmp(admin_todo_statuses[i], arg) == 0)
			return arg;
	for (i = 0; admin_todo_statuses[i]; i++) {
		more = xasprintf("%s%s%s", all ? all : "",
				 !all ? "" : admin_todo_statuses[i + 1] ? ", " : " or ",
				 admin_todo_statuses[i]);
		free(all);
		all = more;
	}
	cli_usage_error(stack_usage_line, "--status: '%s' is not %s", arg, all);
}

/* A budget's limit: a whole number of tokens (0 for none), or "default"
 * (-1) for the configuration's. */
static int64_t budget_limit(const char *flag, const char *arg)
{
	if (strcmp(arg, "default") == 0)
		return -1;
	return cli_int(stack_usage_line, flag, arg, 0, BUDGET_MAX_TOKENS);
}

/*
 * Parse ARGV from OPTIND on with getopt_long, into O. IN_ARTIFACT: the
 * subcommand is artifact, where --version takes a number; everywhere else
 * it prints the version.
 */
static void parse(int argc, char **argv, struct opts *o, int *now_set, int posix,
		  int in_artifact)
{
	struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", in_artifact ? required_argument : no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ "now", required_argument, NULL, 258 },
		{ "idea", required_argument, NULL, 259 },
		{ "from", required_argument, NULL, 260 },
		{ "priority", required_argument, NULL, 261 },
		{ "json", no_argument, NULL, 262 },
		{ "limit", required_argument, NULL, 263 },
		{ "cycle", required_argument, NULL, 264 },
		{ "since", required_argument, NULL, 265 },
		{ "config", required_argument, NULL, 266 },
		{ "format", required_argument, NULL, 267 },
		{ "output", required_argument, NULL, 'o' },
		{ "unanswered", no_argument, NULL, 268 },
		{ "stacks", no_argument, NULL, 269 },
		{ "agent", required_argument, NULL, 270 },
		{ "failed", no_argument, NULL, 271 },
		{ "query", required_argument, NULL, 'q' },
		{ "wait", no_argument, NULL, 272 },
		{ "timeout", required_argument, NULL, 273 },
		{ "dry-run", no_argument, NULL, 274 },
		{ "status", required_argument, NULL, 275 },
		{ "daily", required_argument, NULL, 276 },
		{ "total", required_argument, NULL, 277 },
		{ "to", required_argument, NULL, 278 },
		{ NULL, 0, NULL, 0 },
	};
	const char *shortopts = posix ? "+:ho:q:" : ":ho:q:";
	int c;

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 256:
			if (!in_artifact)
				cli_version();
			o->version = cli_int(stack_usage_line, "--version", optarg, 1, INT64_MAX);
			o->given |= F_VERSION;
			break;
		case 257:
			o->db = optarg;
			break;
		case 258:
			o->now = cli_int(stack_usage_line, "--now", optarg, 0, INT64_MAX / 2);
			*now_set = 1;
			break;
		case 259:
			o->idea = optarg;
			o->given |= F_IDEA;
			break;
		case 260:
			o->from = optarg;
			o->given |= F_FROM;
			break;
		case 261:
			o->priority = cli_int(stack_usage_line, "--priority", optarg, 1, 5);
			o->given |= F_PRIORITY;
			break;
		case 262:
			o->json = 1;
			o->given |= F_JSON;
			break;
		case 263:
			o->limit = cli_int(stack_usage_line, "--limit", optarg, 1, 100000);
			o->given |= F_LIMIT;
			break;
		case 264:
			o->cycle = cli_int(stack_usage_line, "--cycle", optarg, 1, INT64_MAX);
			o->given |= F_CYCLE;
			break;
		case 265:
			o->since = cli_int(stack_usage_line, "--since", optarg, 0, INT64_MAX);
			o->given |= F_SINCE;
			break;
		case 266:
			o->config = optarg;
			o->given |= F_CONFIG;
			break;
		case 267:
			if (strcmp(optarg, "dot") != 0 && strcmp(optarg, "mermaid") != 0)
				cli_usage_error(stack_usage_line,
						"--format: '%s' is not dot or mermaid", optarg);
			o->format = optarg;
			o->given |= F_FORMAT;
			break;
		case 'o':
			o->output = optarg;
			o->given |= F_OUTPUT;
			break;
		case 268:
			o->unanswered = 1;
			o->given |= F_UNANSWERED;
			break;
		case 269:
			o->stacks = 1;
			o->given |= F_STACKS;
			break;
		case 270:
			if (orch_agent_index(optarg) < 0)
				cli_usage_error(stack_usage_line,
						"--agent: '%s' is not planner, builder, communicator or reviewer",
						optarg);
			o->agent = optarg;
			o->given |= F_AGENT;
			break;
		case 271:
			o->failed = 1;
			o->given |= F_FAILED;
			break;
		case 'q':
			o->query = optarg;
			o->given |= F_QUERY;
			break;
		case 272:
			o->wait = 1;
			o->given |= F_WAIT;
			break;
		case 273:
			o->timeout = cli_int(stack_usage_line, "--timeout", optarg, 0, INT64_MAX / 2);
			o->given |= F_TIMEOUT;
			break;
		case 274:
			o->dry_run = 1;
			o->given |= F_DRY_RUN;
			break;
		case 275:
			o->status = todo_status(optarg);
			o->given |= F_STATUS;
			break;
		case 276:
			o->daily = budget_limit("--daily", optarg);
			o->given |= F_DAILY;
			break;
		case 277:
			o->total = budget_limit("--total", optarg);
			o->given |= F_TOTAL;
			break;
		case 278:
			o->to = optarg;
			o->given |= F_TO;
			break;
		case ':':
			cli_usage_error(stack_usage_line, "option '%s' needs a value",
					argv[optind - 1]);
		default:
			cli_usage_error(stack_usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	int now_set = 0, sub;

	orch_progname = "orch-stack";
	memset(&o, 0, sizeof(o));
	o.limit = HISTORY_LIMIT;
	o.timeout = SAY_WAIT_MS;
	o.format = "dot";
	opterr = 0;
	/* The options before the subcommand, then the subcommand's own: only
	 * then is it known whether --version takes a value. */
	parse(argc, argv, &o, &now_set, 1, 0);
	if (optind >= argc)
		cli_usage_error(stack_usage_line, "no subcommand given");
	sub = optind;
	optind = 0;
	parse(argc - sub, argv + sub, &o, &now_set, 0, strcmp(argv[sub], "artifact") == 0);
	/* The operands, subcommand first: getopt_long moved them to the end. */
	argv[sub + optind - 1] = argv[sub];
	o.args = argv + sub + optind - 1;
	o.nargs = argc - sub - optind + 1;
	if (!now_set)
		o.now = orch_now_ms();
	return cli_finish(run(&o));
}
