/*
 * orch-graph - the second stage of a cycle: from orch.work_status documents
 * to orch.graph documents (what to run, in which waves), or drawings of
 * them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph.h"
#include "jsonio.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-graph [--format json|dot|mermaid] [--now MS] [--pretty] [FILE]";

static const char help_text[] =
	"usage: orch-graph [--format json|dot|mermaid] [--now MS] [--pretty] [FILE]\n"
	"\n"
	"Read orch.work_status documents from FILE (default: standard input) and\n"
	"print one orch.graph per document: the agents with work, highest priority\n"
	"first, their dependencies and the waves they run in.\n"
	"\n"
	"  --format FORMAT   json (NDJSON, the default), dot (Graphviz) or\n"
	"                    mermaid (a flowchart); these two also draw\n"
	"                    orch.graph and orch.execution documents as they are\n"
	"  --now MS          the graphs' created_at, in ms since the epoch\n"
	"                    (default: the clock as each is made)\n"
	"  --pretty          indent the JSON output\n"
	"  FILE              the input; '-' is standard input\n"
	"  -h, --help        print this help\n"
	"  --version         print the version\n";

enum format { FORMAT_JSON, FORMAT_DOT, FORMAT_MERMAID };

struct opts {
	enum format format;  /* --format */
	int64_t now;         /* --now, else -1: the clock at each document */
	unsigned out_flags;  /* enum json_out_flags */
	const char *file;    /* borrowed from argv; NULL or "-" for stdin */
};

/* json_reader's before_wait: what was written reaches the next stage. */
static void flush_stdout(void *arg)
{
	(void)arg;
	fflush(stdout);
}

/* Draw the documents of DRAWINGS (a JSON array) as one picture. */
static int draw(const struct opts *o, const json_t *drawings, struct orch_error *err)
{
	size_t i, n = json_array_size(drawings);
	const json_t **docs = xreallocarray(NULL, n ? n : 1, sizeof(*docs));
	int rc;

	for (i = 0; i < n; i++)
		docs[i] = json_array_get(drawings, i);
	if (o->format == FORMAT_DOT)
		rc = graph_write_dot_many(stdout, docs, n, err);
	else
		rc = graph_write_mermaid_many(stdout, docs, n, err);
	free(docs);
	return rc;
}

static int is_drawing(const json_t *doc)
{
	const char *type = json_string_value(json_object_get(doc, "type"));

	return type && (strcmp(type, "orch.graph") == 0 ||
			strcmp(type, "orch.execution") == 0);
}

static int run(const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *doc, *graph, *drawings = xjson(json_array());
	struct json_reader r;
	FILE *in = stdin;
	int rc;

	if (o->file && strcmp(o->file, "-") != 0 && !(in = fopen(o->file, "r")))
		cli_die(ORCH_EX_NOINPUT, "cannot open '%s': %s", o->file, strerror(errno));
	json_reader_init(&r, in);
	/* In a long-lived pipeline, each document goes on before waiting. */
	r.before_wait = flush_stdout;
	while ((rc = json_reader_next(&r, &doc, &err)) == 1) {
		if (o->format != FORMAT_JSON && is_drawing(doc))
			graph = json_incref(doc);
		else
			graph = graph_build(doc, o->now >= 0 ? o->now : orch_now_ms(), &err);
		json_decref(doc);
		if (!graph) {
			orch_error_prefix(&err, "line %ld", r.doc_line);
			break;
		}
		/* A drawing is one picture of every document: kept till the end,
		 * each checked now, so that an error names its line. */
		if (o->format != FORMAT_JSON) {
			if ((rc = graph_check_drawing(graph, &err)) == 0)
				xjson_append(drawings, graph);
			else
				json_decref(graph);
		} else {
			rc = json_write(stdout, graph, o->out_flags);
			json_decref(graph);
		}
		if (rc != 0) {
			if (ferror(stdout))
				orch_error_release(&err);
			else
				orch_error_prefix(&err, "line %ld", r.doc_line);
			break;
		}
	}
	json_reader_release(&r);
	if (in != stdin)
		fclose(in);
	if (!err.status && json_array_size(drawings) > 0 && draw(o, drawings, &err) != 0 &&
	    ferror(stdout))
		orch_error_release(&err);
	json_decref(drawings);
	if (err.status)
		cli_die_error(&err);
	return ORCH_EX_OK;
}

int main(int argc, char **argv)
{
	static const char shortopts[] = ":h";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 256 },
		{ "format", required_argument, NULL, 257 },
		{ "now", required_argument, NULL, 258 },
		{ "pretty", no_argument, NULL, 259 },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int c, now_set = 0;

	orch_progname = "orch-graph";
	memset(&o, 0, sizeof(o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 256:
			cli_version();
		case 257:
			if (strcmp(optarg, "json") == 0)
				o.format = FORMAT_JSON;
			else if (strcmp(optarg, "dot") == 0)
				o.format = FORMAT_DOT;
			else if (strcmp(optarg, "mermaid") == 0)
				o.format = FORMAT_MERMAID;
			else
				cli_usage_error(usage_line,
						"--format: '%s' is not json, dot or mermaid",
						optarg);
			break;
		case 258:
			o.now = cli_int(usage_line, "--now", optarg, 0, INT64_MAX);
			now_set = 1;
			break;
		case 259:
			o.out_flags |= JSON_OUT_PRETTY;
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
	if (!now_set)
		o.now = -1;
	return cli_finish(run(&o));
}
