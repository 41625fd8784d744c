#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "escape.h"
#include "graph.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

#define MAX_PRIORITY 10

/* One agent of an orch.work_status, as read. */
struct agent_in {
	int has_work;                /* has_work */
	int64_t priority;            /* priority, 0 to MAX_PRIORITY */
	const char *reason;          /* borrowed from the document */
	int deps[ORCH_AGENT_COUNT];  /* depends_on as agent indices, no repeats */
	size_t ndeps;                /* entries in deps */
};

/* "'PATH' must be WHAT", status 65. */
static int bad(struct orch_error *err, const char *path, const char *what)
{
	return orch_error_set(err, ORCH_EX_DATAERR, "'%s' must be %s", path, what);
}

static void add_dep(int *deps, size_t *n, int agent)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (deps[i] == agent)
			return;
	deps[(*n)++] = agent;
}

static int read_agent(const json_t *a, const char *name, struct agent_in *in,
		      struct orch_error *err)
{
	const json_t *v, *dep;
	char *path = NULL;
	size_t i;
	int rc = -1, d;

	path = xasprintf("agents.%s", name);
	if (!json_is_object(a)) {
		bad(err, path, "an object");
		goto out;
	}
	v = json_object_get(a, "has_work");
	if (!json_is_boolean(v)) {
		orch_error_set(err, ORCH_EX_DATAERR, "'%s.has_work' must be true or false", path);
		goto out;
	}
	in->has_work = json_is_true(v);
	v = json_object_get(a, "priority");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > MAX_PRIORITY) {
		orch_error_set(err, ORCH_EX_DATAERR,
			       "'%s.priority' must be an integer from 0 to %d", path,
			       MAX_PRIORITY);
		goto out;
	}
	in->priority = json_integer_value(v);
	v = json_object_get(a, "reason");
	if (!json_is_string(v)) {
		orch_error_set(err, ORCH_EX_DATAERR, "'%s.reason' must be a string", path);
		goto out;
	}
	in->reason = json_string_value(v);
	v = json_object_get(a, "depends_on");
	if (!json_is_array(v)) {
		orch_error_set(err, ORCH_EX_DATAERR, "'%s.depends_on' must be an array", path);
		goto out;
	}
	in->ndeps = 0;
	json_array_foreach(v, i, dep) {
		if (!json_is_string(dep)) {
			orch_error_set(err, ORCH_EX_DATAERR,
				       "'%s.depends_on[%zu]' must be a string", path, i);
			goto out;
		}
		d = orch_agent_index(json_string_value(dep));
		if (d < 0) {
			orch_error_set(err, ORCH_EX_DATAERR,
				       "unknown agent '%s' in '%s.depends_on'",
				       json_string_value(dep), path);
			goto out;
		}
		add_dep(in->deps, &in->ndeps, d);
	}
	rc = 0;
out:
	free(path);
	return rc;
}

static int read_agents(const json_t *ws, struct agent_in *in, struct orch_error *err)
{
	const char *key;
	json_t *agents, *a;
	int i;

	if (doc_object(ws, "agents", &agents, err) != 0)
		return -1;
	json_object_foreach(agents, key, a) {
		if (orch_agent_index(key) < 0)
			return orch_error_set(err, ORCH_EX_DATAERR, "unknown agent '%s'", key);
	}
	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		if (read_agent(json_object_get(agents, orch_agents[i]), orch_agents[i],
			       &in[i], err) != 0)
			return -1;
	return 0;
}

/*
 * Depth-first search from agent A along depends_on. COLOR: 0 unvisited,
 * 1 on the current path (PATH[0..depth-1]), 2 done. A dep on the path
 * closes a cycle, reported from that dep round to itself.
 */
static int find_cycle(const struct agent_in *in, int a, int *color, int *path,
		      size_t depth, struct orch_error *err)
{
	size_t i, j;
	char *msg, *longer;
	int d;

	color[a] = 1;
	path[depth++] = a;
	for (i = 0; i < in[a].ndeps; i++) {
		d = in[a].deps[i];
		if (color[d] == 2)
			continue;
		if (color[d] == 0) {
			if (find_cycle(in, d, color, path, depth, err) != 0)
				return -1;
			continue;
		}
		for (j = 0; path[j] != d; j++)
			;
		msg = xstrdup(orch_agents[d]);
		for (j++; j < depth; j++) {
			longer = xasprintf("%s -> %s", msg, orch_agents[path[j]]);
			free(msg);
			msg = longer;
		}
		orch_error_set(err, ORCH_EX_DATAERR, "dependency cycle: %s -> %s", msg,
			       orch_agents[d]);
		free(msg);
		return -1;
	}
	color[a] = 2;
	return 0;
}

static int check_cycles(const struct agent_in *in, struct orch_error *err)
{
	int color[ORCH_AGENT_COUNT] = { 0 }, path[ORCH_AGENT_COUNT], i;

	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		if (color[i] == 0 && find_cycle(in, i, color, path, 0, err) != 0)
			return -1;
	return 0;
}

/* The wave of agent A over node deps; WAVE holds -1 where not yet known. */
static int64_t wave_of(int a, int deps[][ORCH_AGENT_COUNT], const size_t *ndeps,
		       int64_t *wave)
{
	int64_t w;
	size_t i;

	if (wave[a] >= 0)
		return wave[a];
	wave[a] = 0;
	for (i = 0; i < ndeps[a]; i++) {
		w = wave_of(deps[a][i], deps, ndeps, wave) + 1;
		if (w > wave[a])
			wave[a] = w;
	}
	return wave[a];
}

json_t *graph_build(const json_t *work_status, int64_t now, struct orch_error *err)
{
	struct agent_in in[ORCH_AGENT_COUNT];
	int order[ORCH_AGENT_COUNT], deps[ORCH_AGENT_COUNT][ORCH_AGENT_COUNT];
	size_t ndeps[ORCH_AGENT_COUNT], nnodes = 0, i, j;
	int64_t wave[ORCH_AGENT_COUNT], max_priority = 0, w, max_wave = -1;
	json_t *stack, *nodes, *waves, *node, *arr, *graph, *v;
	const char *name;
	int a, d;

	if (doc_check_type(work_status, "orch.work_status", err) != 0)
		return NULL;
	if (doc_object(work_status, "stack", &stack, err) != 0)
		return NULL;
	if (!json_is_integer(json_object_get(stack, "id")) ||
	    json_integer_value(json_object_get(stack, "id")) < 1) {
		bad(err, "stack.id", "a positive integer");
		return NULL;
	}
	if (!json_is_string(json_object_get(stack, "name"))) {
		bad(err, "stack.name", "a string");
		return NULL;
	}
	name = json_string_value(json_object_get(stack, "name"));
	if (read_agents(work_status, in, err) != 0 || check_cycles(in, err) != 0)
		return NULL;

	/* Nodes: insertion by priority keeps the tie-break order of orch_agents. */
	for (a = 0; a < ORCH_AGENT_COUNT; a++) {
		if (in[a].priority > max_priority)
			max_priority = in[a].priority;
		if (!in[a].has_work)
			continue;
		for (i = nnodes; i > 0 && in[order[i - 1]].priority < in[a].priority; i--)
			order[i] = order[i - 1];
		order[i] = a;
		nnodes++;
	}
	for (a = 0; a < ORCH_AGENT_COUNT; a++) {
		wave[a] = -1;
		ndeps[a] = 0;
		for (i = 0; i < in[a].ndeps; i++) {
			d = in[a].deps[i];
			if (in[a].has_work && in[d].has_work)
				deps[a][ndeps[a]++] = d;
		}
	}

	nodes = xjson(json_array());
	for (i = 0; i < nnodes; i++) {
		a = order[i];
		w = wave_of(a, deps, ndeps, wave);
		if (w > max_wave)
			max_wave = w;
		arr = xjson(json_array());
		for (j = 0; j < ndeps[a]; j++)
			xjson_append(arr, xjson(json_string(orch_agents[deps[a][j]])));
		node = xjson(json_object());
		xjson_set(node, "id", xjson(json_sprintf("%s/%s", name, orch_agents[a])));
		xjson_set(node, "agent", xjson(json_string(orch_agents[a])));
		xjson_set(node, "priority", xjson(json_integer(in[a].priority)));
		xjson_set(node, "reason", xjson(json_string(in[a].reason)));
		xjson_set(node, "deps", arr);
		xjson_set(node, "wave", xjson(json_integer(w)));
		xjson_append(nodes, node);
	}
	waves = xjson(json_array());
	for (w = 0; w <= max_wave; w++) {
		arr = xjson(json_array());
		for (i = 0; i < nnodes; i++)
			if (wave[order[i]] == w)
				xjson_append(arr, xjson(json_string(orch_agents[order[i]])));
		xjson_append(waves, arr);
	}

	graph = xjson(json_pack("{sssisosI}", "type", "orch.graph", "version", 1,
				"stack", xjson(json_deep_copy(stack)),
				"created_at", (json_int_t)now));
	/* Carried on for orch-decide: when the work was detected (a wake
	 * after it makes the stack due again), the next periodic check, and
	 * the recovery of an abandoned cycle detection did first. */
	if (json_is_integer(v = json_object_get(work_status, "computed_at")) &&
	    json_integer_value(v) >= 0)
		xjson_set(graph, "detected_at", json_incref(v));
	xjson_set(graph, "max_priority", xjson(json_integer(max_priority)));
	xjson_set(graph, "nodes", nodes);
	xjson_set(graph, "waves", waves);
	if (json_is_integer(v = json_object_get(work_status, "next_check_at")) &&
	    json_integer_value(v) >= 0)
		xjson_set(graph, "next_check_at", json_incref(v));
	if (json_is_object(v = json_object_get(work_status, "recovered")))
		xjson_set(graph, "recovered", xjson(json_deep_copy(v)));
	if (json_is_string(v = json_object_get(work_status, "error")))
		xjson_set(graph, "error", json_incref(v));
	return graph;
}

/* --- drawing --- */

/* A node to draw, read from an orch.graph or orch.execution document. */
struct draw_node {
	int agent;                   /* index in orch_agents */
	int64_t priority;            /* priority */
	const char *reason;          /* borrowed from the document */
	int64_t wave;                /* dependency level */
	int deps[ORCH_AGENT_COUNT];  /* agent indices of deps */
	size_t ndeps;                /* entries in deps */
	const char *status;          /* borrowed; NULL when the node has none */
	int64_t duration_ms;         /* -1 when absent */
	int64_t attempts;            /* -1 when absent */
	const char *error;           /* borrowed; why it failed or was skipped, or NULL */
};

struct drawing {
	const char *name;                        /* borrowed stack name */
	struct draw_node nodes[ORCH_AGENT_COUNT]; /* in document order */
	size_t nnodes;                           /* entries in nodes */
	int64_t max_wave;                        /* highest wave, -1 without nodes */
	int has_status;                          /* some node has a status */
};

enum draw_style { DRAW_DOT, DRAW_MERMAID };

static int elem_bad(struct orch_error *err, size_t i, const char *key, const char *what)
{
	return orch_error_set(err, ORCH_EX_DATAERR, "'nodes[%zu].%s' must be %s", i,
			      key, what);
}

/* An optional non-negative integer: absent or null is -1. */
static int opt_count(const json_t *node, size_t i, const char *key, int64_t *out,
		     struct orch_error *err)
{
	const json_t *v = json_object_get(node, key);

	*out = -1;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return elem_bad(err, i, key, "a non-negative integer");
	*out = json_integer_value(v);
	return 0;
}

static int read_node(const json_t *node, size_t i, struct draw_node *n,
		     struct orch_error *err)
{
	const json_t *v, *dep;
	size_t j;
	int d;

	if (!json_is_object(node))
		return orch_error_set(err, ORCH_EX_DATAERR, "'nodes[%zu]' must be an object", i);
	v = json_object_get(node, "agent");
	if (!json_is_string(v))
		return elem_bad(err, i, "agent", "a string");
	if ((n->agent = orch_agent_index(json_string_value(v))) < 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "unknown agent '%s'",
				      json_string_value(v));
	v = json_object_get(node, "priority");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > MAX_PRIORITY)
		return elem_bad(err, i, "priority", "an integer from 0 to 10");
	n->priority = json_integer_value(v);
	v = json_object_get(node, "reason");
	if (!json_is_string(v))
		return elem_bad(err, i, "reason", "a string");
	n->reason = json_string_value(v);
	v = json_object_get(node, "wave");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) >= ORCH_AGENT_COUNT)
		return elem_bad(err, i, "wave", "an integer from 0 to 3");
	n->wave = json_integer_value(v);
	v = json_object_get(node, "deps");
	if (!json_is_array(v))
		return elem_bad(err, i, "deps", "an array");
	n->ndeps = 0;
	json_array_foreach(v, j, dep) {
		if (!json_is_string(dep))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'nodes[%zu].deps[%zu]' must be a string", i, j);
		if ((d = orch_agent_index(json_string_value(dep))) < 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "unknown agent '%s' in 'nodes[%zu].deps'",
					      json_string_value(dep), i);
		add_dep(n->deps, &n->ndeps, d);
	}
	v = json_object_get(node, "status");
	n->status = NULL;
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return elem_bad(err, i, "status", "a string");
		n->status = json_string_value(v);
	}
	if (opt_count(node, i, "duration_ms", &n->duration_ms, err) != 0 ||
	    opt_count(node, i, "attempts", &n->attempts, err) != 0)
		return -1;
	v = json_object_get(node, "error");
	n->error = NULL;
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return elem_bad(err, i, "error", "a string or null");
		n->error = json_string_value(v);
	}
	return 0;
}

static const struct draw_node *find_node(const struct drawing *g, int agent)
{
	size_t i;

	for (i = 0; i < g->nnodes; i++)
		if (g->nodes[i].agent == agent)
			return &g->nodes[i];
	return NULL;
}

static int read_drawing(const json_t *doc, struct drawing *g, struct orch_error *err)
{
	const json_t *t = json_object_get(doc, "type"), *stack, *name;
	json_t *nodes, *node;
	size_t i, j;

	memset(g, 0, sizeof(*g));
	g->max_wave = -1;
	if (json_is_string(t) && strcmp(json_string_value(t), "orch.execution") == 0) {
		if (doc_check_type(doc, "orch.execution", err) != 0)
			return -1;
	} else if (doc_check_type(doc, "orch.graph", err) != 0) {
		return -1;
	}
	stack = json_object_get(doc, "stack");
	if (!json_is_object(stack))
		return bad(err, "stack", "an object");
	name = json_object_get(stack, "name");
	if (!json_is_string(name))
		return bad(err, "stack.name", "a string");
	g->name = json_string_value(name);
	if (doc_array(doc, "nodes", &nodes, err) != 0)
		return -1;
	json_array_foreach(nodes, i, node) {
		if (i >= ORCH_AGENT_COUNT)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'nodes' must have at most %d entries",
					      ORCH_AGENT_COUNT);
		if (read_node(node, i, &g->nodes[i], err) != 0)
			return -1;
		if (find_node(g, g->nodes[i].agent))
			return orch_error_set(err, ORCH_EX_DATAERR, "duplicate node '%s'",
					      orch_agents[g->nodes[i].agent]);
		g->nnodes++;
		if (g->nodes[i].wave > g->max_wave)
			g->max_wave = g->nodes[i].wave;
		if (g->nodes[i].status)
			g->has_status = 1;
	}
	for (i = 0; i < g->nnodes; i++)
		for (j = 0; j < g->nodes[i].ndeps; j++)
			if (!find_node(g, g->nodes[i].deps[j]))
				return orch_error_set(err, ORCH_EX_DATAERR,
						      "node '%s' depends on '%s', which is not in the graph",
						      orch_agents[g->nodes[i].agent],
						      orch_agents[g->nodes[i].deps[j]]);
	return 0;
}

/* S escaped for STYLE's labels (escape.h). */
static void put_text(FILE *fp, const char *s, enum draw_style style)
{
	if (style == DRAW_DOT)
		escape_dot(fp, s);
	else
		escape_mermaid(fp, s);
}

/* The fill colour of an outcome, or NULL for none. */
static const char *outcome_class(const char *status)
{
	static const char *const known[] = { "completed", "failed", "skipped" };
	size_t i;

	for (i = 0; status && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(status, known[i]) == 0)
			return known[i];
	return NULL;
}

static const char *dot_fill(const char *cls)
{
	if (!cls)
		return NULL;
	if (strcmp(cls, "completed") == 0)
		return "palegreen";
	if (strcmp(cls, "failed") == 0)
		return "lightcoral";
	return "lightgrey";
}

/* The most characters of an error a label shows; longer ones end in "...". */
#define LABEL_ERROR_MAX 60

/* Write the first LABEL_ERROR_MAX characters of S escaped for STYLE. */
static void put_cut(FILE *fp, const char *s, enum draw_style style)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), chars = 0;
	char *cut;
	int n;

	while (left > 0 && chars < LABEL_ERROR_MAX - 3) {
		n = escape_utf8_len(p, left);
		p += n ? n : 1;
		left -= n ? (size_t)n : 1;
		chars++;
	}
	if (left == 0 || escape_utf8_len(p, left) == (int)left) {
		put_text(fp, s, style);
		return;
	}
	cut = xasprintf("%.*s...", (int)((const char *)p - s), s);
	put_text(fp, cut, style);
	free(cut);
}

/* The label's lines: agent, priority, reason, the outcome if any, and why
 * a node failed or was skipped. */
static void put_label(FILE *fp, const struct draw_node *n, enum draw_style style)
{
	const char *br = style == DRAW_DOT ? "\\n" : "<br>";

	fprintf(fp, "%s%spriority %lld%s", orch_agents[n->agent], br,
		(long long)n->priority, br);
	put_text(fp, n->reason, style);
	if (!n->status)
		return;
	fputs(br, fp);
	put_text(fp, n->status, style);
	if (n->duration_ms >= 0)
		fprintf(fp, " in %lld ms", (long long)n->duration_ms);
	if (n->attempts > 1)
		fprintf(fp, ", %lld attempts", (long long)n->attempts);
	if (n->error && *n->error && strcmp(n->status, "completed") != 0) {
		fputs(br, fp);
		put_cut(fp, n->error, style);
	}
}

static int finish(FILE *fp, struct orch_error *err)
{
	if (ferror(fp))
		return orch_error_set(err, ORCH_EX_SOFTWARE, "write error");
	return 0;
}

/* Drawing I of N's node names are its agents after this prefix: "" for a
 * drawing alone, "s0_", "s1_", ... for the stacks of one picture. */
static const char *prefix_of(char buf[32], size_t i, size_t n)
{
	if (n == 1)
		return "";
	snprintf(buf, 32, "s%zu_", i);
	return buf;
}

static void dot_nodes(FILE *fp, const struct drawing *g, const char *prefix,
		      const char *indent)
{
	const struct draw_node *n;
	const char *fill;
	size_t i, j;
	int64_t w;

	for (i = 0; i < g->nnodes; i++) {
		n = &g->nodes[i];
		fprintf(fp, "%s%s%s [label=\"", indent, prefix, orch_agents[n->agent]);
		put_label(fp, n, DRAW_DOT);
		fputc('"', fp);
		if ((fill = dot_fill(outcome_class(n->status))))
			fprintf(fp, ", style=\"rounded,filled\", fillcolor=%s", fill);
		fputs("];\n", fp);
	}
	for (w = 0; w <= g->max_wave; w++) {
		fprintf(fp, "%s{ rank=same;", indent);
		for (i = 0; i < g->nnodes; i++)
			if (g->nodes[i].wave == w)
				fprintf(fp, " %s%s;", prefix, orch_agents[g->nodes[i].agent]);
		fputs(" }\n", fp);
	}
	for (i = 0; i < g->nnodes; i++)
		for (j = 0; j < g->nodes[i].ndeps; j++)
			fprintf(fp, "%s%s%s -> %s%s;\n", indent, prefix,
				orch_agents[g->nodes[i].deps[j]], prefix,
				orch_agents[g->nodes[i].agent]);
}

/* Read each document of GRAPHS (N of them) into a new array of drawings. */
static struct drawing *read_all(const json_t *const *graphs, size_t n,
				struct orch_error *err)
{
	struct drawing *g = xreallocarray(NULL, n ? n : 1, sizeof(*g));
	size_t i;

	for (i = 0; i < n; i++) {
		if (read_drawing(graphs[i], &g[i], err) == 0)
			continue;
		if (n > 1)
			orch_error_prefix(err, "drawing %zu", i + 1);
		free(g);
		return NULL;
	}
	return g;
}

int graph_check_drawing(const json_t *graph, struct orch_error *err)
{
	struct drawing g;

	return read_drawing(graph, &g, err);
}

int graph_write_dot_many(FILE *fp, const json_t *const *graphs, size_t n,
			 struct orch_error *err)
{
	struct drawing *g = read_all(graphs, n, err);
	char buf[32];
	const char *prefix;
	size_t i;

	if (!g)
		return -1;
	if (n == 1) {
		fputs("digraph \"", fp);
		escape_dot(fp, g[0].name);
		fputs("\" {\n\tgraph [label=\"", fp);
		escape_dot(fp, g[0].name);
		fputs("\", labelloc=t, rankdir=LR];\n", fp);
		fputs("\tnode [shape=box, style=rounded];\n", fp);
		dot_nodes(fp, &g[0], "", "\t");
	} else {
		fprintf(fp, "digraph \"orch\" {\n\tgraph [label=\"%zu stacks\", labelloc=t,"
			" rankdir=LR];\n\tnode [shape=box, style=rounded];\n", n);
	}
	for (i = 0; n > 1 && i < n; i++) {
		prefix = prefix_of(buf, i, n);
		fprintf(fp, "\tsubgraph \"cluster_%zu\" {\n\t\tgraph [label=\"", i);
		escape_dot(fp, g[i].name);
		fputs("\", style=rounded];\n", fp);
		if (g[i].nnodes == 0)
			fprintf(fp, "\t\t%snone [label=\"no work\", shape=plaintext];\n", prefix);
		dot_nodes(fp, &g[i], prefix, "\t\t");
		fputs("\t}\n", fp);
	}
	fputs("}\n", fp);
	free(g);
	return finish(fp, err);
}

int graph_write_dot(FILE *fp, const json_t *graph, struct orch_error *err)
{
	return graph_write_dot_many(fp, &graph, 1, err);
}

/* One stack's waves as Mermaid subgraphs, each with its nodes. */
static void mermaid_nodes(FILE *fp, const struct drawing *g, const char *prefix,
			  const char *indent)
{
	const struct draw_node *n;
	size_t i;
	int64_t w;

	for (w = 0; w <= g->max_wave; w++) {
		fprintf(fp, "%ssubgraph %swave%lld [\"wave %lld\"]\n", indent, prefix,
			(long long)w, (long long)w);
		for (i = 0; i < g->nnodes; i++) {
			n = &g->nodes[i];
			if (n->wave != w)
				continue;
			fprintf(fp, "%s\t%s%s[\"", indent, prefix, orch_agents[n->agent]);
			put_label(fp, n, DRAW_MERMAID);
			fputs("\"]\n", fp);
		}
		fprintf(fp, "%send\n", indent);
	}
}

static void mermaid_edges(FILE *fp, const struct drawing *g, const char *prefix)
{
	size_t i, j;

	for (i = 0; i < g->nnodes; i++)
		for (j = 0; j < g->nodes[i].ndeps; j++)
			fprintf(fp, "\t%s%s --> %s%s\n", prefix, orch_agents[g->nodes[i].deps[j]],
				prefix, orch_agents[g->nodes[i].agent]);
}

static void mermaid_classes(FILE *fp, const struct drawing *g, const char *prefix)
{
	const char *cls;
	size_t i;

	for (i = 0; i < g->nnodes; i++)
		if ((cls = outcome_class(g->nodes[i].status)))
			fprintf(fp, "\tclass %s%s %s\n", prefix, orch_agents[g->nodes[i].agent], cls);
}

int graph_write_mermaid_many(FILE *fp, const json_t *const *graphs, size_t n,
			     struct orch_error *err)
{
	struct drawing *g = read_all(graphs, n, err);
	char buf[32], *title;
	const char *prefix;
	size_t i;
	int has_status = 0;

	if (!g)
		return -1;
	title = n == 1 ? xstrdup(g[0].name) : xasprintf("%zu stacks", n);
	fputs("---\ntitle: ", fp);
	escape_mermaid_title(fp, title);
	fputs("\n---\nflowchart LR\n", fp);
	free(title);
	for (i = 0; i < n; i++) {
		has_status |= g[i].has_status;
		if (n == 1) {
			mermaid_nodes(fp, &g[i], "", "\t");
			continue;
		}
		prefix = prefix_of(buf, i, n);
		fprintf(fp, "\tsubgraph s%zu [\"", i);
		escape_mermaid(fp, g[i].name);
		fputs("\"]\n", fp);
		if (g[i].nnodes == 0)
			fprintf(fp, "\t\t%snone[\"no work\"]\n", prefix);
		mermaid_nodes(fp, &g[i], prefix, "\t\t");
		fputs("\tend\n", fp);
	}
	for (i = 0; i < n; i++)
		mermaid_edges(fp, &g[i], prefix_of(buf, i, n));
	if (has_status) {
		fputs("\tclassDef completed fill:#98fb98,stroke:#2e7d32\n"
		      "\tclassDef failed fill:#f08080,stroke:#b71c1c\n"
		      "\tclassDef skipped fill:#d3d3d3,stroke:#616161\n", fp);
		for (i = 0; i < n; i++)
			mermaid_classes(fp, &g[i], prefix_of(buf, i, n));
	}
	free(g);
	return finish(fp, err);
}

int graph_write_mermaid(FILE *fp, const json_t *graph, struct orch_error *err)
{
	return graph_write_mermaid_many(fp, &graph, 1, err);
}

/* --- SVG, for an HTML page --- */

#define SVG_BOX_W 170   /* a node's box */
#define SVG_BOX_H 54
#define SVG_GAP_X 60    /* between waves */
#define SVG_GAP_Y 16    /* between the nodes of a wave */
#define SVG_MARGIN 10

/* Where node N (index I of G) is drawn: its wave's column, its row in it. */
static void svg_place(const struct drawing *g, size_t i, int *x, int *y)
{
	size_t j, row = 0;

	for (j = 0; j < i; j++)
		if (g->nodes[j].wave == g->nodes[i].wave)
			row++;
	*x = SVG_MARGIN + (int)g->nodes[i].wave * (SVG_BOX_W + SVG_GAP_X);
	*y = SVG_MARGIN + (int)row * (SVG_BOX_H + SVG_GAP_Y);
}

static void svg_text(FILE *fp, const char *s)
{
	escape_html(fp, s, strlen(s));
}

int graph_write_svg(FILE *fp, const json_t *graph, struct orch_error *err)
{
	struct drawing g;
	const struct draw_node *n;
	int x, y, dx, dy, width, height, rows[ORCH_AGENT_COUNT] = { 0 }, most = 1;
	const char *cls;
	size_t i, j;

	if (read_drawing(graph, &g, err) != 0)
		return -1;
	for (i = 0; i < g.nnodes; i++)
		if (++rows[g.nodes[i].wave] > most)
			most = rows[g.nodes[i].wave];
	width = 2 * SVG_MARGIN + (int)(g.max_wave + 1) * (SVG_BOX_W + SVG_GAP_X) - SVG_GAP_X;
	height = 2 * SVG_MARGIN + most * (SVG_BOX_H + SVG_GAP_Y) - SVG_GAP_Y;
	if (g.nnodes == 0) {
		width = 2 * SVG_MARGIN + SVG_BOX_W;
		height = 2 * SVG_MARGIN + SVG_BOX_H;
	}
	fprintf(fp, "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\""
		" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", width, height, width, height);
	fputs("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\""
	      " markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\">"
	      "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n", fp);
	if (g.nnodes == 0)
		fprintf(fp, "<text x=\"%d\" y=\"%d\">no work</text>\n", SVG_MARGIN,
			SVG_MARGIN + SVG_BOX_H / 2);
	for (i = 0; i < g.nnodes; i++)
		for (j = 0; j < g.nodes[i].ndeps; j++) {
			const struct draw_node *d = find_node(&g, g.nodes[i].deps[j]);

			svg_place(&g, (size_t)(d - g.nodes), &dx, &dy);
			svg_place(&g, i, &x, &y);
			fprintf(fp, "<line class=\"edge\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\""
				" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\n", dx + SVG_BOX_W,
				dy + SVG_BOX_H / 2, x, y + SVG_BOX_H / 2);
		}
	for (i = 0; i < g.nnodes; i++) {
		n = &g.nodes[i];
		cls = outcome_class(n->status);
		svg_place(&g, i, &x, &y);
		fprintf(fp, "<g class=\"node %s\" data-agent=\"%s\"><title>", cls ? cls : "planned",
			orch_agents[n->agent]);
		fprintf(fp, "%s, priority %lld: ", orch_agents[n->agent], (long long)n->priority);
		svg_text(fp, n->reason);
		if (n->error && *n->error) {
			fputs("\n", fp);
			svg_text(fp, n->error);
		}
		fprintf(fp, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"8\"/>",
			x, y, SVG_BOX_W, SVG_BOX_H);
		fprintf(fp, "<text x=\"%d\" y=\"%d\" class=\"agent\">%s</text>", x + 10, y + 21,
			orch_agents[n->agent]);
		fprintf(fp, "<text x=\"%d\" y=\"%d\">", x + 10, y + 40);
		if (n->status)
			svg_text(fp, n->status);
		else
			fprintf(fp, "priority %lld", (long long)n->priority);
		if (n->duration_ms >= 0)
			fprintf(fp, " in %lld ms", (long long)n->duration_ms);
		fputs("</text></g>\n", fp);
	}
	fputs("</svg>\n", fp);
	return finish(fp, err);
}
