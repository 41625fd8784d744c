#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "artifact.h"
#include "conversation.h"
#include "escape.h"
#include "graph.h"
#include "history.h"
#include "orch.h"
#include "report.h"
#include "snapshot.h"
#include "term.h"
#include "traces.h"
#include "xalloc.h"
#include "banned.h"

/* No request leaves the page or its frame: no network, from file://. */
#define CSP "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline';" \
	" img-src data:"

static const char style[] =
	"body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}"
	"header{background:#263238;color:#fff;padding:14px 24px}"
	"header h1{margin:0;font-size:24px}header p{margin:4px 0 0;color:#cfd8dc}"
	"main{padding:8px 24px 24px;display:grid;gap:16px;"
	"grid-template-columns:repeat(auto-fit,minmax(440px,1fr))}"
	"section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;"
	"overflow:auto}section.wide{grid-column:1/-1}"
	"h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:0 0 6px}"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}"
	"dt{color:#666}dd{margin:0}"
	".problem{border-left:4px solid #e53935;background:#fdecea;padding:6px 12px;margin-top:10px}"
	".text{white-space:pre-wrap;overflow-wrap:anywhere}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #eee}"
	"th{color:#666;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	".muted{color:#888}.t{white-space:nowrap}"
	".artifact-view{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}"
	"iframe.artifact{flex:3 1 480px;min-height:440px;border:1px solid #ccc;border-radius:6px;"
	"background:#fff}table.versions{flex:2 1 420px;width:auto}"
	"table.versions td:last-child{min-width:180px}"
	".board{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}"
	".column ul{list-style:none;margin:0;padding:0}"
	".todo{background:#fafafa;border:1px solid #e0e0e0;border-radius:6px;padding:6px 8px;"
	"margin-bottom:6px}.todo .pri{color:#888;font-size:12px}"
	".bar{display:inline-block;height:10px;background:#5c6bc0;border-radius:2px}"
	"svg text{font:12px system-ui,sans-serif;fill:#333}svg text.agent{font-weight:600}"
	".attempt.completed,.node.completed rect{fill:#66bb6a}"
	".attempt.failed,.node.failed rect{fill:#ef5350}"
	".attempt.skipped,.node.skipped rect{fill:#bdbdbd}"
	".node.planned rect{fill:#e3f2fd}.node rect{stroke:#555}"
	"footer{padding:0 24px 24px;color:#888;font-size:13px}";

/* What every section needs. */
struct page {
	FILE *fp;                    /* borrowed: where the page goes */
	struct store *s;             /* borrowed */
	const struct stack_row *stack; /* borrowed */
	int64_t now;                 /* the report's time */
	int64_t count;               /* the current section's rows so far */
	int64_t skip;                /* rows to pass over before writing */
	int64_t most;                /* the largest value a section scales to */
	const char *status;          /* the todo status of the current column */
};

/* Text an agent or a user wrote, or any text at all: escaped, always. */
static void h(FILE *fp, const char *s)
{
	if (s)
		escape_html(fp, s, strlen(s));
}

static void when(FILE *fp, int64_t ms)
{
	char buf[TERM_TIME_SIZE];

	fprintf(fp, "<span class=\"t\">%s UTC</span>", term_utc(ms, buf));
}

static void dt(FILE *fp, const char *label)
{
	fprintf(fp, "<dt>%s</dt><dd>", label);
}

/* ---- state ---------------------------------------------------------- */

static int64_t member_int(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static void time_or_never(FILE *fp, int64_t ms)
{
	if (ms)
		when(fp, ms);
	else
		fputs("never", fp);
}

static int section_state(struct page *p, struct orch_error *err)
{
	const struct stack_row *row = p->stack;
	struct history_diagnosis d;
	json_t *snap, *project, *memory, *todo;
	int64_t counts[4] = { 0, 0, 0, 0 };
	static const char *const statuses[] = { "pending", "in_progress", "completed",
						 "cancelled" };
	FILE *fp = p->fp;
	size_t i, j;
	int rc;

	if (!(snap = snapshot_load(p->s, row->id, err)))
		return -1;
	project = json_object_get(snap, "project");
	memory = json_object_get(snap, "memory");
	json_array_foreach(json_object_get(snap, "todos"), i, todo)
		for (j = 0; j < 4; j++)
			if (json_is_string(json_object_get(todo, "status")) &&
			    strcmp(json_string_value(json_object_get(todo, "status")),
				   statuses[j]) == 0)
				counts[j]++;
	fputs("<section id=\"state\"><h2>State</h2><dl>", fp);
	dt(fp, "state");
	h(fp, row->execution_state);
	fputs("</dd>", fp);
	dt(fp, "phase");
	h(fp, row->phase);
	fputs("</dd>", fp);
	dt(fp, "cycles");
	fprintf(fp, "%lld", (long long)row->total_cycles);
	if (row->consecutive_failures > 0)
		fprintf(fp, " (the last %lld failed)", (long long)row->consecutive_failures);
	fputs("</dd>", fp);
	dt(fp, "next run");
	if (strcmp(row->execution_state, "running") != 0)
		fputs("- (not running)", fp);
	else if (row->next_run_at <= p->now)
		fputs("due", fp);
	else
		when(fp, row->next_run_at);
	fputs("</dd>", fp);
	dt(fp, "project");
	h(fp, json_is_object(project) ? json_string_value(json_object_get(project, "title")) : "-");
	fputs("</dd>", fp);
	dt(fp, "todos");
	fprintf(fp, "%lld pending, %lld in progress, %lld completed, %lld cancelled</dd>",
		(long long)counts[0], (long long)counts[1], (long long)counts[2],
		(long long)counts[3]);
	dt(fp, "waiting");
	fprintf(fp, "%zu user messages, %zu messages from stacks</dd>",
		json_array_size(json_object_get(snap, "user_messages")),
		json_array_size(json_object_get(snap, "messages")));
	dt(fp, "last planning");
	time_or_never(fp, member_int(json_object_get(memory, "planner"), "last_planning_time"));
	fputs("</dd>", fp);
	dt(fp, "last review");
	time_or_never(fp, member_int(json_object_get(memory, "reviewer"), "last_review_time"));
	fputs("</dd></dl>", fp);
	json_decref(snap);
	if ((rc = history_diagnose(p->s, row, &d, err)) < 0)
		return -1;
	if (rc == 1) {
		fprintf(fp, "<div class=\"problem\"><p><strong>Problem:</strong> the last %lld"
			" cycles failed: ", (long long)d.failures);
		h(fp, d.cause);
		fputs("</p><p><strong>Fix:</strong> ", fp);
		h(fp, d.fix);
		fputs("</p></div>", fp);
		history_diagnosis_release(&d);
	}
	fputs("</section>\n", fp);
	return 0;
}

/* ---- the artifact --------------------------------------------------- */

static int version_row(const struct artifact_version *v, void *arg)
{
	struct page *p = arg;
	FILE *fp = p->fp;

	fprintf(fp, "<tr class=\"version\"><td class=\"n\">%lld</td><td>", (long long)v->version);
	when(fp, v->created_at);
	fprintf(fp, "</td><td class=\"n\">%lld</td><td>", (long long)v->size);
	h(fp, v->type);
	fputs("</td><td>", fp);
	if (v->cycle)
		fprintf(fp, "cycle %lld", (long long)v->cycle);
	if (v->todo_id) {
		fprintf(fp, "%stodo #%lld ", v->cycle ? ", " : "", (long long)v->todo_id);
		h(fp, v->todo);
	}
	fputs("</td></tr>\n", fp);
	p->count++;
	return 0;
}

/*
 * The srcdoc of the frame: an HTML artifact as it is; any other type as
 * text in a <pre>, escaped once for that document. Either way escaped
 * again for the attribute.
 */
static void put_srcdoc(FILE *fp, const char *type, const char *content, size_t len)
{
	char *doc = NULL;
	size_t doc_len = 0;
	FILE *mem;

	if (strcmp(type, "html") == 0 || strcmp(type, "htm") == 0) {
		escape_html(fp, content, len);
		return;
	}
	mem = open_memstream(&doc, &doc_len);
	if (!mem) {
		fputs("(out of memory)", fp);
		return;
	}
	fputs("<!doctype html><meta charset=\"utf-8\"><pre style=\"white-space:pre-wrap\">", mem);
	escape_html(mem, content, len);
	fputs("</pre>", mem);
	if (fclose(mem) == 0)
		escape_html(fp, doc, doc_len);
	free(doc);
}

/* The latest version's type, for put_srcdoc(). */
static int latest_type(const struct artifact_version *v, void *arg)
{
	char **type = arg;

	*type = xstrdup(v->type);
	return 1;
}

static int section_artifact(struct page *p, struct orch_error *err)
{
	FILE *fp = p->fp;
	char *content = NULL, *type = NULL;
	int64_t version;
	size_t len;
	int rc;

	fputs("<section id=\"artifact\" class=\"wide\"><h2>Artifact</h2>", fp);
	if ((rc = artifact_read(p->s, p->stack->id, 0, &content, &len, &version, err)) < 0)
		return -1;
	if (rc == 0) {
		fputs("<p class=\"muted\">No artifact yet: the builder writes one when it"
		      " completes a todo.</p></section>\n", fp);
		return 0;
	}
	if (artifact_list(p->s, p->stack->id, latest_type, &type, err) < 0) {
		free(content);
		return -1;
	}
	fprintf(fp, "<div class=\"artifact-view\"><iframe class=\"artifact\" title=\"version"
		" %lld\" sandbox=\"allow-scripts\" referrerpolicy=\"no-referrer\" srcdoc=\"",
		(long long)version);
	put_srcdoc(fp, type ? type : "html", content, len);
	fputs("\"></iframe>\n<table class=\"versions\"><thead><tr><th>version</th>"
	      "<th>written</th><th>bytes</th><th>type</th><th>by</th></tr></thead><tbody>\n", fp);
	free(content);
	free(type);
	p->count = 0;
	if (artifact_list(p->s, p->stack->id, version_row, p, err) != 0)
		return -1;
	fprintf(fp, "</tbody></table></div><p class=\"muted\">Version %lld, rendered in a"
		" sandbox: its scripts run apart from this page. Any version:"
		" <code>orch-stack artifact ", (long long)version);
	h(fp, p->stack->name);
	fputs(" --version N</code>.</p></section>\n", fp);
	return 0;
}

/* ---- the conversation ----------------------------------------------- */

static int count_message(const struct conversation_message *m, void *arg)
{
	struct page *p = arg;

	(void)m;
	p->count++;
	return 0;
}

static int message_row(const struct conversation_message *m, void *arg)
{
	struct page *p = arg;
	FILE *fp = p->fp;

	if (p->skip > 0) {
		p->skip--;
		return 0;
	}
	fprintf(fp, "<tr class=\"message\" id=\"message-%lld\"><td>", (long long)m->id);
	when(fp, m->created_at);
	fputs("</td><td>", fp);
	h(fp, m->sender);
	fputs("</td><td class=\"text\">", fp);
	h(fp, m->content);
	fputs("</td><td class=\"text\">", fp);
	if (m->reply) {
		h(fp, m->reply);
		fputs("<br><span class=\"muted\">", fp);
		when(fp, m->replied_at);
		fputs("</span>", fp);
	} else {
		fprintf(fp, "<em class=\"muted\">%s</em>", m->processed
			? "no reply: the communicator dealt with it without one"
			: "no reply yet");
	}
	fputs("</td></tr>\n", fp);
	return 0;
}

static int stack_message_row(const struct conversation_stack_message *m, void *arg)
{
	struct page *p = arg;
	FILE *fp = p->fp;

	if (!p->count++)
		fputs("<h3>Between stacks</h3><table><thead><tr><th>sent</th><th>from</th>"
		      "<th>to</th><th>message</th><th>read</th></tr></thead><tbody>\n", fp);
	fputs("<tr class=\"stack-message\"><td>", fp);
	when(fp, m->created_at);
	fputs("</td><td>", fp);
	h(fp, m->from ? m->from : "(a deleted stack)");
	fputs("</td><td>", fp);
	h(fp, m->to ? m->to : "all stacks");
	fputs("</td><td class=\"text\">", fp);
	h(fp, m->content);
	fputs("</td><td>", fp);
	if (m->sent && !m->to)
		fprintf(fp, "by %lld", (long long)m->readers);
	else if (m->read_at)
		when(fp, m->read_at);
	else
		fputs("no", fp);
	fputs("</td></tr>\n", fp);
	return 0;
}

static int section_conversation(struct page *p, struct orch_error *err)
{
	FILE *fp = p->fp;

	fputs("<section id=\"conversation\" class=\"wide\"><h2>Conversation</h2>", fp);
	p->count = 0;
	if (conversation_list(p->s, p->stack->id, 0, count_message, p, err) != 0)
		return -1;
	if (p->count == 0)
		fputs("<p class=\"muted\">No user message yet: <code>orch-stack say</code>"
		      " sends one.</p>", fp);
	if (p->count > REPORT_MESSAGES)
		fprintf(fp, "<p class=\"muted\">The last %d of %lld messages.</p>",
			REPORT_MESSAGES, (long long)p->count);
	if (p->count > 0) {
		fputs("<table class=\"conversation\"><thead><tr><th>sent</th><th>from</th>"
		      "<th>message</th><th>reply</th></tr></thead><tbody>\n", fp);
		p->skip = p->count > REPORT_MESSAGES ? p->count - REPORT_MESSAGES : 0;
		if (conversation_list(p->s, p->stack->id, 0, message_row, p, err) != 0)
			return -1;
		fputs("</tbody></table>", fp);
	}
	p->count = 0;
	if (conversation_stack_list(p->s, p->stack->id, stack_message_row, p, err) != 0)
		return -1;
	if (p->count)
		fputs("</tbody></table>", fp);
	fputs("</section>\n", fp);
	return 0;
}

/* ---- the todo board ------------------------------------------------- */

static int todo_card(const struct admin_todo *t, void *arg)
{
	struct page *p = arg;

	if (strcmp(t->status, p->status) != 0)
		return 0;
	fprintf(p->fp, "<li class=\"todo\"><span class=\"pri\">#%lld, priority %lld</span><br>",
		(long long)t->id, (long long)t->priority);
	h(p->fp, t->content);
	fputs("</li>\n", p->fp);
	p->count++;
	return 0;
}

static int section_todos(struct page *p, struct orch_error *err)
{
	static const char *const columns[][2] = {
		{ "pending", "Pending" }, { "in_progress", "In progress" },
		{ "completed", "Completed" }, { "cancelled", "Cancelled" },
	};
	size_t i;

	fputs("<section id=\"todos\" class=\"wide\"><h2>Todos</h2><div class=\"board\">", p->fp);
	for (i = 0; i < 4; i++) {
		fprintf(p->fp, "<div class=\"column\" data-status=\"%s\"><h3>%s</h3><ul>",
			columns[i][0], columns[i][1]);
		p->status = columns[i][0];
		p->count = 0;
		if (admin_list_todos(p->s, p->stack->id, todo_card, p, err) != 0)
			return -1;
		if (p->count == 0)
			fputs("<li class=\"muted\">none</li>", p->fp);
		fputs("</ul></div>", p->fp);
	}
	fputs("</div></section>\n", p->fp);
	return 0;
}

/* ---- the timeline --------------------------------------------------- */

#define LANE_H 30       /* one agent's lane */
#define LABEL_W 110     /* the agents' names */
#define AXIS_H 22       /* the cycles' numbers */

/* One cycle of the timeline. */
struct column {
	int64_t cycle;
	int64_t started_at;
	int64_t ended_at;       /* or the report's time, while it runs */
	char status[16];        /* running, completed, failed */
};

struct columns {
	struct column v[REPORT_CYCLES]; /* newest first, as read */
	size_t n;
	int64_t now;
};

static int keep_cycle(const struct history_cycle *c, void *arg)
{
	struct columns *cs = arg;
	struct column *col = &cs->v[cs->n++];

	col->cycle = c->cycle;
	col->started_at = c->started_at;
	col->ended_at = c->has_ended ? c->ended_at : cs->now;
	snprintf(col->status, sizeof(col->status), "%s", c->status ? c->status : "");
	return cs->n == REPORT_CYCLES;
}

/* Where the bars of one cycle go, and how wide a millisecond is. */
struct lane_ctx {
	struct page *page;
	const struct column *col;
	int x;                  /* the column's left edge */
	int width;              /* its width */
	const char *agent;      /* the lane being drawn */
};

static int bar_x(const struct lane_ctx *l, int64_t t)
{
	int64_t span = l->col->ended_at - l->col->started_at;

	if (span <= 0)
		return l->x + 2;
	if (t < l->col->started_at)
		t = l->col->started_at;
	if (t > l->col->ended_at)
		t = l->col->ended_at;
	return l->x + 2 + (int)((t - l->col->started_at) * (l->width - 4) / span);
}

static int lane_bar(const struct traces_row *t, void *arg)
{
	struct lane_ctx *l = arg;
	FILE *fp = l->page->fp;
	char took[TERM_TIME_SIZE], *result;
	int x0, x1;

	if (strcmp(t->agent, l->agent) != 0)
		return 0;
	x0 = bar_x(l, t->started_at);
	x1 = bar_x(l, t->ended_at);
	if (x1 - x0 < 3)
		x1 = x0 + 3;
	fprintf(fp, "<rect class=\"attempt %s\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\""
		" rx=\"2\"><title>", strcmp(t->status, "completed") == 0 ? "completed" : "failed",
		x0, 0, x1 - x0, LANE_H - 8);
	result = traces_result(t);
	fprintf(fp, "cycle %lld, %s, attempt %lld: ", (long long)t->cycle, l->agent,
		(long long)t->attempt);
	h(fp, t->status);
	fprintf(fp, " in %s (trace %lld)\n", term_duration(t->ended_at - t->started_at, took),
		(long long)t->id);
	h(fp, result);
	free(result);
	fputs("</title></rect>", fp);
	return 0;
}

/* The nodes of COL's execution that were skipped, in AGENT's lane. */
static int lane_skipped(struct lane_ctx *l, struct orch_error *err)
{
	json_t *exec, *node;
	int64_t found;
	size_t i;
	int rc = history_execution(l->page->s, l->page->stack, l->col->cycle, &exec, &found, err);

	if (rc <= 0)
		return rc;
	json_array_foreach(json_object_get(exec, "nodes"), i, node) {
		const char *agent = json_string_value(json_object_get(node, "agent"));
		const char *status = json_string_value(json_object_get(node, "status"));

		if (!agent || !status || strcmp(agent, l->agent) != 0 ||
		    strcmp(status, "skipped") != 0)
			continue;
		fprintf(l->page->fp, "<rect class=\"attempt skipped\" x=\"%d\" y=\"0\" width=\"%d\""
			" height=\"%d\" rx=\"2\"><title>cycle %lld, %s: skipped\n", l->x + 2,
			l->width - 4, LANE_H - 8, (long long)l->col->cycle, l->agent);
		h(l->page->fp, json_string_value(json_object_get(node, "error")));
		fputs("</title></rect>", l->page->fp);
	}
	json_decref(exec);
	return 0;
}

static int section_timeline(struct page *p, struct orch_error *err)
{
	struct columns *cs = xcalloc(1, sizeof(*cs));
	struct traces_filter f = { 0 };
	struct lane_ctx l = { p, NULL, 0, 0, NULL };
	FILE *fp = p->fp;
	int colw, width, height, rc = -1;
	size_t a, k;

	cs->now = p->now;
	fputs("<section id=\"timeline\" class=\"wide\"><h2>Recent cycles</h2>", fp);
	if (history_cycles(p->s, p->stack->id, REPORT_CYCLES, keep_cycle, cs, err) < 0)
		goto out;
	if (cs->n == 0) {
		fputs("<p class=\"muted\">No cycle has run yet.</p></section>\n", fp);
		rc = 0;
		goto out;
	}
	colw = 1000 / (int)cs->n;
	colw = colw > 140 ? 140 : colw < 40 ? 40 : colw;
	width = LABEL_W + (int)cs->n * colw + 10;
	height = AXIS_H + ORCH_AGENT_COUNT * LANE_H + 4;
	fprintf(fp, "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\""
		" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", width, height, width, height);
	/* The cycles, oldest on the left: their numbers, and a band each. */
	for (k = 0; k < cs->n; k++) {
		const struct column *col = &cs->v[cs->n - 1 - k];
		int x = LABEL_W + (int)k * colw;

		fprintf(fp, "<g class=\"cycle %s\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\""
			" fill=\"%s\"/><text x=\"%d\" y=\"15\">%lld</text></g>\n", col->status, x,
			AXIS_H - 2, colw - 1, ORCH_AGENT_COUNT * LANE_H,
			strcmp(col->status, "failed") == 0 ? "#fdecea" : k % 2 ? "#f5f5f5" : "#fafafa",
			x + 3, (long long)col->cycle);
	}
	for (a = 0; a < ORCH_AGENT_COUNT; a++) {
		l.agent = orch_agents[a];
		fprintf(fp, "<g class=\"lane\" data-agent=\"%s\" transform=\"translate(0 %d)\">"
			"<text class=\"agent\" x=\"4\" y=\"%d\">%s</text>", l.agent,
			AXIS_H + (int)a * LANE_H + 4, LANE_H / 2, l.agent);
		for (k = 0; k < cs->n; k++) {
			l.col = &cs->v[cs->n - 1 - k];
			l.x = LABEL_W + (int)k * colw;
			l.width = colw;
			f.stack_id = p->stack->id;
			f.cycle = l.col->cycle;
			f.agent = l.agent;
			if (traces_list(p->s, &f, lane_bar, &l, err) != 0 || lane_skipped(&l, err) < 0)
				goto out;
		}
		fputs("</g>\n", fp);
	}
	fputs("</svg><p class=\"muted\">A lane per agent, a band per cycle (red: the cycle"
	      " failed); each attempt green when it completed, red when it failed, grey when"
	      " skipped. Hover for what it did; <code>orch-stack log show ID</code> has it"
	      " whole.</p></section>\n", fp);
	rc = 0;
out:
	free(cs);
	return rc;
}

/* ---- tokens --------------------------------------------------------- */

static int usage_most(const struct history_usage *u, void *arg)
{
	struct page *p = arg;

	if (history_tokens_add(u->prompt_tokens, u->completion_tokens) > p->most)
		p->most = history_tokens_add(u->prompt_tokens, u->completion_tokens);
	p->count++;
	return 0;
}

static int usage_row(const struct history_usage *u, void *arg)
{
	struct page *p = arg;
	FILE *fp = p->fp;
	int64_t total = history_tokens_add(u->prompt_tokens, u->completion_tokens);

	fputs("<tr class=\"usage\"><td>", fp);
	h(fp, u->agent);
	fputs("</td><td>", fp);
	h(fp, u->model);
	fputs("</td><td>", fp);
	h(fp, u->day);
	fprintf(fp, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
		"<td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
		"<td><span class=\"bar\" style=\"width:%lldpx\"></span></td></tr>\n",
		(long long)u->runs, (long long)u->prompt_tokens,
		(long long)u->completion_tokens, (long long)total,
		/* In double: total * 160 would overflow near the limit. */
		(long long)(p->most ? (double)total / (double)p->most * 160 : 0));
	return 0;
}

static int section_usage(struct page *p, struct orch_error *err)
{
	FILE *fp = p->fp;

	fputs("<section id=\"usage\"><h2>Tokens per agent, model and day</h2>", fp);
	p->count = p->most = 0;
	if (history_usage(p->s, p->stack, 0, usage_most, p, err) != 0)
		return -1;
	if (p->count == 0) {
		fputs("<p class=\"muted\">No agent has run yet.</p></section>\n", fp);
		return 0;
	}
	fputs("<table><thead><tr><th>agent</th><th>model</th><th>day (UTC)</th><th>runs</th><th>prompt</th>"
	      "<th>completion</th><th>total</th><th></th></tr></thead><tbody>\n", fp);
	if (history_usage(p->s, p->stack, 0, usage_row, p, err) != 0)
		return -1;
	fputs("</tbody></table></section>\n", fp);
	return 0;
}

/* ---- the last graph ------------------------------------------------- */

static int section_graph(struct page *p, struct orch_error *err)
{
	FILE *fp = p->fp;
	json_t *exec;
	int64_t cycle;
	int rc;

	fputs("<section id=\"graph\"><h2>Last executed graph</h2>", fp);
	if ((rc = history_execution(p->s, p->stack, 0, &exec, &cycle, err)) < 0)
		return -1;
	if (rc == 0) {
		fputs("<p class=\"muted\">No cycle has recorded a graph yet.</p></section>\n", fp);
		return 0;
	}
	fprintf(fp, "<p class=\"muted\">Cycle %lld; hover a node for its reason.</p>",
		(long long)cycle);
	rc = graph_write_svg(fp, exec, err);
	json_decref(exec);
	if (rc != 0) {
		if (err && err->status == ORCH_EX_DATAERR)
			orch_error_prefix(err, "recorded graph for cycle %lld of stack '%s'",
					  (long long)cycle, p->stack->name);
		return -1;
	}
	fputs("</section>\n", fp);
	return 0;
}

int report_write(FILE *fp, struct store *s, const struct stack_row *stack, int64_t now,
		 struct orch_error *err)
{
	struct page p = { fp, s, stack, now, 0, 0, 0, NULL };
	json_t *snap;
	const char *idea;

	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"" CSP "\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<title>orch: ", fp);
	h(fp, stack->name);
	fprintf(fp, "</title>\n<style>%s</style></head>\n<body>\n<header><h1>", style);
	h(fp, stack->name);
	fputs("</h1>", fp);
	if (!(snap = snapshot_load(s, stack->id, err)))
		return -1;
	idea = json_string_value(json_object_get(json_object_get(snap, "project"), "description"));
	if (idea && *idea) {
		fputs("<p class=\"idea\">", fp);
		h(fp, idea);
		fputs("</p>", fp);
	}
	json_decref(snap);
	fputs("</header>\n<main>\n", fp);
	if (section_state(&p, err) != 0 || section_graph(&p, err) != 0 ||
	    section_artifact(&p, err) != 0 || section_conversation(&p, err) != 0 ||
	    section_todos(&p, err) != 0 || section_timeline(&p, err) != 0 ||
	    section_usage(&p, err) != 0)
		return -1;
	fputs("</main>\n<footer>Written by <code>orch-stack report</code> at ", fp);
	when(fp, now);
	fputs(". One file: no script of its own, nothing fetched.</footer>\n</body></html>\n",
	      fp);
	if (ferror(fp))
		return orch_error_set(err, ORCH_EX_SOFTWARE, "write error");
	return 0;
}
