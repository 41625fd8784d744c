/*
 * orch-agent - the built-in LLM agent: an orch.context on stdin, an
 * actions document on stdout, over an OpenAI-compatible chat API.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cassette.h"
#include "cli.h"
#include "config.h"
#include "faults.h"
#include "jsonio.h"
#include "llm.h"
#include "orch.h"
#include "provider_caps.h"
#include "quota.h"
#include "usage.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-agent --role ROLE [--prompt FILE] [--model MODEL] [--base-url URL]"
	" [--timeout MS] [--deadline MS] [--retries N] [--backoff MS] [--cacert FILE]"
	" [--config FILE] [-v]";

static const char help_text[] =
	"usage: orch-agent --role ROLE [--prompt FILE] [--model MODEL] [--base-url URL]"
	" [--timeout MS] [--deadline MS] [--retries N] [--backoff MS] [--cacert FILE]"
	" [--config FILE] [-v]\n"
	"\n"
	"Read one orch.context document on standard input, ask an OpenAI-compatible\n"
	"chat API for the agent's turn, and print the validated actions document,\n"
	"with its token usage, on standard output.\n"
	"\n"
	"  --role ROLE     planner, builder, communicator or reviewer\n"
	"  --prompt FILE   the system prompt (default $ORCH_PROMPTS_DIR/ROLE.md,\n"
	"                  else the installed prompts/ROLE.md)\n"
	"  --model MODEL   default $ORCH_LLM_MODEL, else llm.ROLE.model or llm.model\n"
	"                  of the configuration, else llama-3.3-70b-versatile\n"
	"  --base-url URL  default $ORCH_LLM_BASE_URL, else llm.base_url, else\n"
	"                  https://api.groq.com/openai/v1\n"
	"  --timeout MS    one request (default $ORCH_LLM_TIMEOUT_MS, else\n"
	"                  llm.timeout, else 120000)\n"
	"  --deadline MS   the whole turn (default $ORCH_LLM_DEADLINE_MS, else\n"
	"                  llm.deadline, else 300000)\n"
	"  --retries N     retries per provider (default $ORCH_LLM_RETRIES, else\n"
	"                  llm.retries, else 3)\n"
	"  --backoff MS    first backoff, doubled each retry (default\n"
	"                  $ORCH_LLM_BACKOFF_MS, else llm.backoff, else 1000)\n"
	"  --cacert FILE   trust the CA certificates in FILE (PEM) instead of the\n"
	"                  system's (default $ORCH_LLM_CA_BUNDLE)\n"
	"  --config FILE   the configuration file (default ~/.config/orch/config)\n"
	"  -v, --verbose   trace requests on stderr (keys are never shown)\n"
	"  -h, --help      print this help\n"
	"  --version       print the version\n"
	"\n"
	"The key comes from $ORCH_LLM_API_KEY, else $GROQ_API_KEY; fallback\n"
	"providers from $ORCH_LLM_FALLBACKS, else llm.fallbacks (\"URL|MODEL|KEYVAR;...\").\n"
	"Sampling per role: llm.ROLE.temperature and llm.ROLE.max_tokens.\n";

static void on_log(void *arg, enum llm_log_level level, const char *line)
{
	const int *verbose = arg;

	if (level == LLM_LOG_WARN || *verbose)
		cli_warn("%s", line);
}

/*
 * The capability memory for P, recalled: NULL when there is none, said
 * once with -v, never a failure.
 */
static struct provider_caps *recall(struct llm_providers *p, int verbose)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct provider_caps *pc = provider_caps_open(NULL, &err);

	if (pc && provider_caps_load(pc, p, orch_now_ms(), &err) != 0) {
		provider_caps_close(pc);
		pc = NULL;
	}
	if (!pc && verbose)
		cli_warn("what providers refuse is not remembered: %s", err.msg);
	orch_error_release(&err);
	return pc;
}

/* Keep what the turn learned at P, when there is a memory. */
static void keep(struct provider_caps *pc, const struct llm_providers *p, int verbose)
{
	struct orch_error err = ORCH_ERROR_INIT;

	if (pc && provider_caps_save(pc, p, orch_now_ms(), &err) != 0 && verbose)
		cli_warn("what providers refuse is not remembered: %s", err.msg);
	orch_error_release(&err);
	provider_caps_close(pc);
}

/*
 * The rate limits shared through the store, when O asks for them and
 * requests go to the providers (not replayed): NULL when there is no
 * store, said with -v.
 */
static struct quota *share(const struct llm_options *o, int verbose)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct quota *q;

	if (!o->shared_quota || (o->cassette && o->cassette->mode == CASSETTE_REPLAY))
		return NULL;
	if (!(q = quota_open(NULL, &err)) && verbose)
		cli_warn("rate limits are not shared: %s", err.msg);
	orch_error_release(&err);
	return q;
}

/*
 * Record what the turn of RUN (when its context named one) cost, each
 * request of RQ, the turn having succeeded or not. A database that is not
 * there, or too old, is said with -v only (orch-agent runs without one);
 * one that is there and did not take them is said always: the spending is
 * not counted.
 */
static void account(struct usage_run *run, int has_run, struct usage_requests *rq,
		    int ok, int verbose)
{
	struct orch_error err = ORCH_ERROR_INIT;

	if (has_run && rq->n && usage_record(NULL, run, rq, ok, &err) < 0 &&
	    (verbose || err.status != ORCH_EX_NOINPUT))
		cli_warn("%zu request%s not counted in usage: %s", rq->n, rq->n == 1 ? "" : "s",
			 err.msg);
	orch_error_release(&err);
	if (has_run)
		usage_run_release(run);
	usage_requests_release(rq);
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":hv";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 256 },
		{ "role", required_argument, NULL, 257 },
		{ "prompt", required_argument, NULL, 258 },
		{ "model", required_argument, NULL, 259 },
		{ "base-url", required_argument, NULL, 260 },
		{ "timeout", required_argument, NULL, 261 },
		{ "deadline", required_argument, NULL, 262 },
		{ "retries", required_argument, NULL, 263 },
		{ "backoff", required_argument, NULL, 264 },
		{ "cacert", required_argument, NULL, 265 },
		{ "config", required_argument, NULL, 266 },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct provider_caps *pc;
	struct cassette *cassette = NULL;
	struct faults *faults = NULL;
	struct usage_requests rq = USAGE_REQUESTS_INIT;
	struct usage_run run;
	struct llm_providers providers;
	struct llm_options o;
	struct llm_flags f;
	struct json_reader r;
	const char *prompt_file = NULL, *config_file = NULL;
	char *prompt, *prompt_path;
	json_t *ctx = NULL, *extra = NULL, *doc;
	int64_t wait;
	int c, rc, verbose = 0, has_run;

	orch_progname = "orch-agent";
	memset(&o, 0, sizeof(o));
	memset(&f, 0, sizeof(f));
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 'v':
			verbose = 1;
			break;
		case 256:
			cli_version();
		case 257:
			o.role = optarg;
			break;
		case 258:
			prompt_file = optarg;
			break;
		case 259:
			f.model = optarg;
			break;
		case 260:
			f.base_url = optarg;
			break;
		case 261:
			f.timeout = optarg;
			break;
		case 262:
			f.deadline = optarg;
			break;
		case 263:
			f.retries = optarg;
			break;
		case 264:
			f.backoff = optarg;
			break;
		case 265:
			o.ca_file = optarg;
			break;
		case 266:
			config_file = optarg;
			break;
		case ':':
			cli_usage_error(usage_line, "option '%s' needs a value", argv[optind - 1]);
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cli_usage_error(usage_line, "unexpected argument '%s'", argv[optind]);
	if (!o.role)
		cli_usage_error(usage_line, "--role is required");
	if (orch_agent_index(o.role) < 0)
		cli_usage_error(usage_line, "--role: '%s' is not planner, builder,"
				" communicator or reviewer", o.role);
	if (config_load(&conf, config_file, &err) != 0)
		cli_die_error(&err);
	if (llm_configure(&o, &providers, o.role, &f, &conf, &err) != 0) {
		if (err.status == ORCH_EX_USAGE)
			cli_usage_error(usage_line, "%s", err.msg);
		cli_die_error(&err);
	}
	config_release(&conf);
	if (faults_from_env(&faults, &err) != 0 || cassette_from_env(&cassette, &err) != 0)
		cli_die_error(&err);
	o.cassette = cassette;
	o.faults = faults;
	o.log = on_log;
	o.log_arg = &verbose;
	if (!(prompt = llm_prompt_load(o.role, prompt_file, &prompt_path, &err)))
		cli_die_error(&err);
	if (verbose)
		cli_warn("prompt: %s", prompt_path);
	o.system_prompt = prompt;

	json_reader_init(&r, stdin);
	if ((rc = json_reader_next(&r, &ctx, &err)) == 1 &&
	    (rc = json_reader_next(&r, &extra, &err)) == 1) {
		orch_error_set(&err, ORCH_EX_DATAERR, "line %ld: expected one orch.context"
			       " document, found another", r.doc_line);
		rc = -1;
	} else if (rc == 0 && !ctx) {
		orch_error_set(&err, ORCH_EX_DATAERR,
			       "no input: expected an orch.context document");
		rc = -1;
	}
	json_reader_release(&r);
	json_decref(extra);
	if (rc < 0 || llm_context_check(ctx, o.role, &err) != 0)
		cli_die_error(&err);

	has_run = usage_run_of(ctx, &run);
	o.on_request = usage_requests_add;
	o.request_arg = &rq;
	pc = recall(&providers, verbose);
	o.quota = share(&o, verbose);
	doc = llm_run(&o, &providers, ctx, &err);
	quota_close(o.quota);
	keep(pc, &providers, verbose);
	wait = llm_providers_wait(&providers);
	account(&run, has_run, &rq, doc != NULL, verbose);
	cassette_free(cassette);
	free(faults);
	json_decref(ctx);
	llm_providers_release(&providers);
	free(prompt);
	free(prompt_path);
	if (!doc && err.status == ORCH_EX_TEMPFAIL && wait >= 0) {
		/* The retry contract (orch-exec(1)): the error, then the wait. */
		cli_warn("%s", err.msg);
		fprintf(stderr, "retry-after-ms: %lld\n", (long long)wait);
		orch_error_release(&err);
		return cli_finish(ORCH_EX_TEMPFAIL);
	}
	if (!doc)
		cli_die_error(&err);
	orch_error_release(&err);
	rc = json_write(stdout, doc, 0);
	json_decref(doc);
	return cli_finish(rc == 0 ? ORCH_EX_OK : ORCH_EX_SOFTWARE);
}
