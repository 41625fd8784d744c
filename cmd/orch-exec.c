/*
 * orch-exec - the third stage of a cycle: run each stack's graph of
 * agents as child processes and apply what they answer.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_env.h"
#include "budget.h"
#include "cli.h"
#include "config.h"
#include "cycle.h"
#include "escape.h"
#include "exec.h"
#include "jsonio.h"
#include "orch.h"
#include "store.h"
#include "turns.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-exec [--db PATH] [--config FILE] [--agent NAME=COMMAND] [-j N] "
	"[--timeout MS] [--kill-after MS] [--retries N] [--retry-delay MS] "
	"[--park-after N] [--barrier] [--wave-delay MS] [--trace FILE] "
	"[--progress | --no-progress] "
	"[-n] [-q] [-v] [--pretty] [FILE]";

static const char help_text[] =
	"usage: orch-exec [--db PATH] [--config FILE] [--agent NAME=COMMAND] [-j N] "
	"[--timeout MS] [--kill-after MS] [--retries N] [--retry-delay MS] "
	"[--park-after N] [--barrier] [--wave-delay MS] [--trace FILE] "
	"[--progress | --no-progress] "
	"[-n] [-q] [-v] [--pretty] [FILE]\n"
	"\n"
	"Read orch.graph documents (from FILE or standard input), run each\n"
	"stack's agents as child processes, apply the actions they print, and\n"
	"print one orch.execution document per stack as its cycle ends.\n"
	"With --dry-run, run nothing and change nothing: print one\n"
	"orch.estimate document per stack, what would run and what the\n"
	"stack's history expects it to cost in tokens and time.\n"
	"\n"
	"  --db PATH              the database (default $ORCH_DB, else\n"
	"                         ~/.local/share/orch/orch.db)\n"
	"  --config FILE          the configuration file (default\n"
	"                         ~/.config/orch/config, if it exists)\n"
	"  --agent NAME=COMMAND   run COMMAND for agent NAME (repeatable);\n"
	"                         default 'orch-agent --role NAME'\n"
	"  -j, --jobs N           agents running at once, all stacks (default 8)\n"
	"  --timeout MS           per attempt, 0 for none (default 600000)\n"
	"  --kill-after MS        SIGKILL this long after SIGTERM (default 5000)\n"
	"  --retries N            further attempts after a failure (default 1)\n"
	"  --retry-delay MS       first backoff, doubled per retry (default 1000)\n"
	"  --park-after N         park a todo or message after N failed runs on\n"
	"                         it, 0 for never (default 5)\n"
	"  --barrier              start a wave only when the last one has ended\n"
	"  --wave-delay MS        and this long after it (implies --barrier)\n"
	"  --trace FILE           write a Chrome trace of the run (Perfetto,\n"
	"                         chrome://tracing): one lane per running agent\n"
	"  --progress             show progress on stderr (default: when it is\n"
	"                         a terminal); --no-progress: never\n"
	"  -n, --dry-run          estimate, run nothing (not with --trace)\n"
	"  -q, --quiet            no progress\n"
	"  -v, --verbose          a line on stderr per agent run\n"
	"  --pretty               indent the output\n"
	"  -h, --help             print this help\n"
	"  --version              print the version\n";

struct opts {
	const char *db;                      /* borrowed from argv, or NULL */
	const char *trace;                   /* --trace FILE, borrowed, or NULL */
	int progress;                        /* 1 --progress, 0 --no-progress, -1 auto */
	int quiet;                           /* -q */
	int verbose;                         /* -v */
	int dry_run;                         /* -n: estimate, run nothing */
	const char *config;                  /* borrowed from argv, or NULL */
	const char *file;                    /* borrowed from argv, or NULL for stdin */
	const char *agent[ORCH_AGENT_COUNT]; /* borrowed: --agent commands */
	unsigned out_flags;                  /* enum json_out_flags */
};

/* A number from the flags, else the configuration, else its default
 * (lib/config.c's table of known settings says which, and the range). */
struct setting {
	const char *flag;  /* "--timeout" */
	const char *key;   /* "exec.timeout" */
	int64_t value;     /* the result */
	int set;           /* given as a flag */
};

enum {
	S_JOBS, S_TIMEOUT, S_KILL_AFTER, S_RETRIES, S_RETRY_DELAY, S_WAVE_DELAY,
	S_PARK_AFTER, S_COUNT
};

static struct setting settings[S_COUNT] = {
	[S_JOBS] = { "--jobs", "exec.jobs", 0, 0 },
	[S_TIMEOUT] = { "--timeout", "exec.timeout", 0, 0 },
	[S_KILL_AFTER] = { "--kill-after", "exec.kill_after", 0, 0 },
	[S_RETRIES] = { "--retries", "exec.retries", 0, 0 },
	[S_RETRY_DELAY] = { "--retry-delay", "exec.retry_delay", 0, 0 },
	[S_WAVE_DELAY] = { "--wave-delay", "exec.wave_delay", 0, 0 },
	[S_PARK_AFTER] = { "--park-after", "exec.park_after", 0, 0 },
};

static void set_flag(int which, const char *arg)
{
	struct setting *s = &settings[which];
	const struct config_known *k = config_known_find(s->key);

	s->value = cli_int(usage_line, s->flag, arg, k->min, k->max);
	s->set = 1;
}

static void agent_flag(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *name;
	int i;

	if (!eq)
		cli_usage_error(usage_line, "--agent: expected NAME=COMMAND, not '%s'", arg);
	name = xstrndup(arg, (size_t)(eq - arg));
	i = orch_agent_index(name);
	if (i < 0)
		cli_usage_error(usage_line,
				"--agent: unknown agent '%s' (planner, builder, communicator or reviewer)",
				name);
	free(name);
	o->agent[i] = eq + 1;
}

static void load_config(const struct opts *o, struct config *c,
			struct budget_config *budget)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int i;

	if (config_load(c, o->config, &err) != 0 ||
	    budget_configure(budget, c, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < S_COUNT; i++)
		if (!settings[i].set &&
		    config_number(c, settings[i].key, &settings[i].value, &err) != 0)
			cli_die_error(&err);
}

/*
 * The default agent: orch-agent beside this program when it is there (so
 * an uninstalled build runs its own), else orch-agent from PATH.
 */
static char *default_agent_command(const char *agent)
{
	char self[4096], *slash, *sibling;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0 && (size_t)n < sizeof(self) - 1) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			sibling = xasprintf("%s/orch-agent", self);
			if (access(sibling, X_OK) == 0 && !strchr(sibling, '\'')) {
				char *cmd = xasprintf("'%s' --role %s", sibling, agent);

				free(sibling);
				return cmd;
			}
			free(sibling);
		}
	}
	return xasprintf("orch-agent --role %s", agent);
}

/* Each agent's command words: --agent, else agent.NAME, else the default. */
static void agent_commands(const struct opts *o, const struct config *c,
			   char **argv[ORCH_AGENT_COUNT])
{
	struct orch_error err = ORCH_ERROR_INIT;
	int i;

	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		char *key = xasprintf("agent.%s", orch_agents[i]);
		const char *cmd = o->agent[i] ? o->agent[i] : config_get(c, key);
		char *def = cmd ? NULL : default_agent_command(orch_agents[i]);

		argv[i] = words_split(cmd ? cmd : def, &err);
		if (!argv[i]) {
			if (o->agent[i])
				cli_usage_error(usage_line, "--agent %s: %s", orch_agents[i], err.msg);
			cli_die(err.status, "%s (%s): %s", key,
				cmd ? config_origin(c, key) : "default", err.msg);
		}
		free(key);
		free(def);
	}
}

/*
 * The built-in agent's turns in this process, for the agents whose
 * command is plainly it (exec.in_process = 1, the default), marked in
 * CFG: NULL when none is.
 */
static struct turns *in_process_turns(const struct config *c, struct store *s,
				      struct exec_config *cfg)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t on;
	int i, any = 0;

	if (config_number(c, "exec.in_process", &on, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		any |= cfg->in_process[i] = on &&
			agent_env_is_plain_builtin(cfg->argv[i], orch_agents[i]);
	return any ? cfg->turns = turns_new(c, s) : NULL;
}

/* What the observer keeps: counts for the progress line, trace events. */
struct watch {
	const struct opts *o;  /* borrowed */
	int64_t start_mono;    /* the trace's time 0 */
	size_t stacks;         /* stacks in the input */
	size_t stacks_done;    /* stacks whose cycle has ended */
	size_t running;        /* agents running now */
	size_t failed;         /* nodes failed so far */
	int show_progress;     /* draw the progress line */
	int tty;               /* stderr is a terminal: redraw in place */
	int colour;            /* colour the status words */
	json_t *events;        /* owned: trace events, or NULL without --trace */
};

static void progress_clear(const struct watch *w)
{
	if (w->show_progress && w->tty)
		fputs("\r\033[K", stderr);
}

static void progress_draw(const struct watch *w)
{
	if (!w->show_progress)
		return;
	fprintf(stderr, "%sorch-exec: %zu/%zu stacks done, %zu agent%s running, %zu failed%s",
		w->tty ? "\r\033[K" : "", w->stacks_done, w->stacks, w->running,
		w->running == 1 ? "" : "s", w->failed, w->tty ? "" : "\n");
	fflush(stderr);
}

/* S as escape_term() shows it (new string): a stack's name, an agent's
 * result or error are text to read, never sequences to obey. */
static char *term_text(const char *s)
{
	return escape_term_dup(s, strlen(s), 0);
}

static void trace_event(struct watch *w, const struct exec_event *ev)
{
	json_t *span = xjson(json_object()), *args;

	xjson_set(span, "name", xjson(json_sprintf("%s/%s", ev->stack, ev->agent)));
	xjson_set(span, "cat", xjson(json_string(ev->status)));
	xjson_set(span, "ph", xjson(json_string("X")));
	/* The format counts microseconds. */
	xjson_set(span, "ts", xjson(json_integer((ev->started_mono - w->start_mono) * 1000)));
	xjson_set(span, "dur", xjson(json_integer((ev->ended_mono - ev->started_mono) * 1000)));
	xjson_set(span, "pid", xjson(json_integer(1)));
	xjson_set(span, "tid", xjson(json_integer(ev->slot)));
	args = xjson(json_pack("{sssssiss}", "stack", ev->stack, "agent", ev->agent,
			       "attempt", ev->attempt, "status", ev->status));
	if (ev->detail)
		xjson_set(args, "detail", xjson(json_string(ev->detail)));
	xjson_set(span, "args", args);
	xjson_append(w->events, span);
}

static void observe(const struct exec_event *ev, void *arg)
{
	struct watch *w = arg;
	char *stack, *agent, *detail, retry[64];
	int ok;

	if (ev->kind == EXEC_STACK_QUEUED) {
		w->stacks++;
		progress_draw(w);
		return;
	}
	if (ev->kind == EXEC_ATTEMPT_STARTED) {
		w->running++;
		progress_draw(w);
		return;
	}
	w->running--;
	ok = strcmp(ev->status, "completed") == 0;
	if (ev->final)
		w->failed += !ok;
	if (w->events)
		trace_event(w, ev);
	if (w->o->verbose && !w->o->quiet) {
		progress_clear(w);
		stack = term_text(ev->stack);
		agent = term_text(ev->agent);
		detail = ev->detail ? term_text(ev->detail) : NULL;
		if (ev->final)
			retry[0] = '\0';
		else
			snprintf(retry, sizeof(retry), " (attempt %d, retrying)", ev->attempt);
		/* One call: stderr is unbuffered, and the line is one write. */
		fprintf(stderr, "orch-exec: %s/%s: %s%s%s%s in %lld ms%s%s\n", stack, agent,
			w->colour ? (ok ? "\033[32m" : "\033[31m") : "", ev->status,
			w->colour ? "\033[0m" : "", retry,
			(long long)(ev->ended_mono - ev->started_mono),
			detail ? ": " : "", detail ? detail : "");
		free(stack);
		free(agent);
		free(detail);
	}
	progress_draw(w);
}

/* Lane names, then the spans, as the Trace Event Format has them.
 * Closes FP; 0, or -1 on a write error. */
static int write_trace(FILE *fp, struct watch *w, int jobs)
{
	json_t *doc = xjson(json_object()), *events = xjson(json_array());
	int i, rc = 0;

	xjson_append(events, xjson(json_pack("{sssssisis{ss}}", "name", "process_name",
		"ph", "M", "pid", 1, "tid", 0, "args", "name", "orch-exec")));
	for (i = 0; i < jobs; i++) {
		json_t *m = xjson(json_pack("{sssssisi}", "name", "thread_name", "ph", "M",
					    "pid", 1, "tid", i));

		xjson_set(m, "args", xjson(json_pack("{so}", "name",
			xjson(json_sprintf("slot %d", i)))));
		xjson_append(events, m);
	}
	if (json_array_extend(events, w->events) != 0)
		cli_die(ORCH_EX_SOFTWARE, "out of memory");
	xjson_set(doc, "traceEvents", events);
	xjson_set(doc, "displayTimeUnit", xjson(json_string("ms")));
	if (json_write(fp, doc, 0) != 0)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	json_decref(doc);
	return rc;
}

static int emit(const json_t *execution, const char *compact, void *arg)
{
	struct watch *w = arg;
	int rc;

	if (compact && !(w->o->out_flags & JSON_OUT_PRETTY))
		rc = fputs(compact, stdout) == EOF || putchar('\n') == EOF;
	else
		rc = json_write(stdout, execution, w->o->out_flags);
	/* Flushed per stack, so orch-decide records each as it ends. */
	if (rc != 0 || fflush(stdout) != 0)
		return -1;
	w->stacks_done++;
	progress_draw(w);
	return 0;
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":hj:nqv";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ "config", required_argument, NULL, 258 },
		{ "agent", required_argument, NULL, 259 },
		{ "timeout", required_argument, NULL, 260 },
		{ "kill-after", required_argument, NULL, 261 },
		{ "retries", required_argument, NULL, 262 },
		{ "retry-delay", required_argument, NULL, 263 },
		{ "barrier", no_argument, NULL, 264 },
		{ "wave-delay", required_argument, NULL, 265 },
		{ "pretty", no_argument, NULL, 266 },
		{ "trace", required_argument, NULL, 267 },
		{ "progress", no_argument, NULL, 268 },
		{ "no-progress", no_argument, NULL, 269 },
		{ "park-after", required_argument, NULL, 280 },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct agent_env env = AGENT_ENV_INIT;
	struct exec_config cfg;
	struct budget_config budget;
	struct store *store = NULL;
	struct turns *turns = NULL;
	struct exec *e;
	struct watch w;
	struct opts o;
	FILE *in = stdin, *trace_fp = NULL;
	char *owner;
	int c, i, barrier = 0;

	orch_progname = "orch-exec";
	memset(&o, 0, sizeof(o));
	memset(&cfg, 0, sizeof(cfg));
	memset(&w, 0, sizeof(w));
	o.progress = -1;
	w.start_mono = orch_mono_ms();
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 'j':
			set_flag(S_JOBS, optarg);
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 256:
			cli_version();
		case 257:
			o.db = optarg;
			break;
		case 258:
			o.config = optarg;
			break;
		case 259:
			agent_flag(&o, optarg);
			break;
		case 260:
			set_flag(S_TIMEOUT, optarg);
			break;
		case 261:
			set_flag(S_KILL_AFTER, optarg);
			break;
		case 262:
			set_flag(S_RETRIES, optarg);
			break;
		case 280:
			set_flag(S_PARK_AFTER, optarg);
			break;
		case 263:
			set_flag(S_RETRY_DELAY, optarg);
			break;
		case 264:
			barrier = 1;
			break;
		case 265:
			set_flag(S_WAVE_DELAY, optarg);
			break;
		case 266:
			o.out_flags |= JSON_OUT_PRETTY;
			break;
		case 267:
			o.trace = optarg;
			break;
		case 268:
			o.progress = 1;
			break;
		case 269:
			o.progress = 0;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		o.file = argv[optind++];
	if (optind < argc)
		cli_usage_error(usage_line, "unexpected argument '%s'", argv[optind]);
	if (o.dry_run && o.trace)
		cli_usage_error(usage_line, "--trace: a dry run runs no agent to trace");

	load_config(&o, &conf, &budget);
	agent_commands(&o, &conf, cfg.argv);
	cfg.budget = &budget;
	cfg.jobs = (int)settings[S_JOBS].value;
	cfg.timeout_ms = settings[S_TIMEOUT].value;
	cfg.kill_after_ms = settings[S_KILL_AFTER].value;
	cfg.retries = (int)settings[S_RETRIES].value;
	cfg.park_after = (int)settings[S_PARK_AFTER].value;
	cfg.retry_delay_ms = settings[S_RETRY_DELAY].value;
	cfg.wave_delay_ms = settings[S_WAVE_DELAY].value;
	cfg.barrier = barrier;
	if (config_number(&conf, "exec.lease", &cfg.lease_ms, &err) != 0)
		cli_die_error(&err);
	if (cfg.lease_ms > 0 && cfg.lease_ms < 1000)
		cli_die(ORCH_EX_USAGE, "exec.lease: %lld ms is too short (0, or 1000 and more)",
			(long long)cfg.lease_ms);
	cfg.owner = owner = cycle_owner_self();
	w.o = &o;
	w.tty = isatty(STDERR_FILENO);
	w.show_progress = !o.quiet && !o.dry_run && (o.progress == 1 || (o.progress < 0 && w.tty));
	w.colour = w.tty && !getenv("NO_COLOR");
	/* Created before any agent runs, so a bad path costs nothing. */
	if (o.trace) {
		if (!(trace_fp = fopen(o.trace, "w")))
			cli_die(ORCH_EX_NOINPUT, "cannot create '%s': %s", o.trace,
				strerror(errno));
		w.events = xjson(json_array());
	}
	cfg.observe = observe;
	cfg.observe_arg = &w;
	cfg.watch_stdout = 1;

	if (o.file && strcmp(o.file, "-") != 0 && !(in = fopen(o.file, "r")))
		cli_die(ORCH_EX_NOINPUT, "cannot open '%s': %s", o.file, strerror(errno));
	store = cli_open_store(o.db, 0);
	if (agent_env_build(&env, environ, &conf, store_location(store), o.config, owner, &err) != 0)
		cli_die_error(&err);
	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		cfg.env[i] = agent_env_is_builtin(cfg.argv[i]) ? env.builtin : env.command;
	if (!o.dry_run)
		turns = in_process_turns(&conf, store, &cfg);

	/* Graphs are run as they come, so a long-lived pipeline (orch-detect
	 * --follow) cycles each stack at its own pace. A dry run has nothing
	 * to show progress of. */
	if (o.dry_run) {
		cfg.observe = NULL;
		e = exec_new(store, &cfg);
		exec_dry_run(e, fileno(in), emit, &w, &err);
	} else {
		e = exec_new(store, &cfg);
		exec_run(e, fileno(in), emit, &w, &err);
	}
	progress_clear(&w);
	if (in != stdin)
		fclose(in);
	/* A trace of a run cut short by a signal is still worth having. */
	if (trace_fp && write_trace(trace_fp, &w, cfg.jobs) != 0 && !err.status)
		orch_error_set(&err, ORCH_EX_SOFTWARE, "write error on '%s'", o.trace);
	json_decref(w.events);

	exec_free(e);
	turns_free(turns);
	store_close(store);
	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		words_free(cfg.argv[i]);
	agent_env_release(&env);
	config_release(&conf);
	free(owner);
	if (err.status)
		cli_die_error(&err);
	return cli_finish(0);
}
