#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "doc.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

/* FNV-1a, 64 bits, over N bytes of P, continuing from H. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

int detect_rules_configure(struct detect_rules *r, const struct config *c,
			   struct orch_error *err)
{
	const struct {
		const char *key;
		int64_t *member;
	} thresholds[] = {
		{ "detect.planning_interval", &r->planning_interval_ms },
		{ "detect.review_interval", &r->review_interval_ms },
		{ "detect.strategic_length", &r->strategic_length },
		{ "detect.high_priority", &r->high_priority },
		{ "detect.review_min_completed", &r->review_min_completed },
		{ "detect.unchanged_interval", &r->unchanged_interval_ms },
	};
	const struct {
		const char *key;
		int *member;
	} priorities[] = {
		{ "priority.planner.no_project", &r->planner.no_project },
		{ "priority.planner.no_todos", &r->planner.no_todos },
		{ "priority.planner.recommendations", &r->planner.recommendations },
		{ "priority.planner.strategic", &r->planner.strategic },
		{ "priority.planner.stale", &r->planner.stale },
		{ "priority.builder.high", &r->builder.high },
		{ "priority.builder.normal", &r->builder.normal },
		{ "priority.communicator.user_message", &r->communicator.user_message },
		{ "priority.communicator.stack_message", &r->communicator.stack_message },
		{ "priority.reviewer.completed", &r->reviewer.completed },
		{ "priority.reviewer.artifact", &r->reviewer.artifact },
		{ "priority.reviewer.stale", &r->reviewer.stale },
	};
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t i;
	int64_t v;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++) {
		if (config_number(c, thresholds[i].key, thresholds[i].member, err) != 0)
			return -1;
		h = fnv1a(h, thresholds[i].member, sizeof(int64_t));
	}
	for (i = 0; i < sizeof(priorities) / sizeof(priorities[0]); i++) {
		/* The table's range, 1 to 10, fits an int. */
		if (config_number(c, priorities[i].key, &v, err) != 0)
			return -1;
		*priorities[i].member = (int)v;
		h = fnv1a(h, &v, sizeof(v));
	}
	if (!(r->keywords_owned = config_list(c, "detect.strategic_keywords",
					      &r->nkeywords, err)))
		return -1;
	r->keywords = (const char *const *)r->keywords_owned;
	/* Each keyword with its NUL, so "ab","c" differs from "a","bc". */
	for (i = 0; i < r->nkeywords; i++)
		h = fnv1a(h, r->keywords[i], strlen(r->keywords[i]) + 1);
	if (!(r->done_phases = config_list(c, "detect.done_phases", &r->ndone_phases, err)))
		return -1;
	h = fnv1a(h, "|", 1);
	for (i = 0; i < r->ndone_phases; i++)
		h = fnv1a(h, r->done_phases[i], strlen(r->done_phases[i]) + 1);
	r->fingerprint = (int64_t)(h & INT64_MAX);
	return 0;
}

void detect_rules_release(struct detect_rules *r)
{
	words_free(r->keywords_owned);
	r->keywords_owned = NULL;
	words_free(r->done_phases);
	r->done_phases = NULL;
	r->ndone_phases = 0;
	r->keywords = NULL;
	r->nkeywords = 0;
}

int detect_plan_done(const char *phase, const struct detect_rules *rules)
{
	size_t i;

	for (i = 0; phase && i < rules->ndone_phases; i++)
		if (strcmp(phase, rules->done_phases[i]) == 0)
			return 1;
	return 0;
}

size_t detect_utf8_length(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

static int fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* NEEDLE (non-empty) in HAY of HLEN bytes, ASCII letters in any case. */
static int contains_folded(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle), i, j;

	if (nlen == 0 || nlen > hlen)
		return 0;
	for (i = 0; i + nlen <= hlen; i++) {
		for (j = 0; j < nlen; j++)
			if (fold((unsigned char)hay[i + j]) != fold((unsigned char)needle[j]))
				break;
		if (j == nlen)
			return 1;
	}
	return 0;
}

int detect_is_strategic(const char *text, size_t len,
			const struct detect_rules *rules)
{
	size_t i;

	for (i = 0; i < rules->nkeywords; i++)
		if (contains_folded(text, len, rules->keywords[i]))
			return 1;
	return rules->strategic_length >= 0 &&
	       detect_utf8_length(text, len) > (size_t)rules->strategic_length;
}


/* "'PATH.KEY' must be WHAT" (or "'KEY' ..." at the top), status 65. */
static int bad(struct orch_error *err, const char *path, const char *key,
	       const char *what)
{
	if (*path)
		return orch_error_set(err, ORCH_EX_DATAERR, "'%s.%s' must be %s",
				      path, key, what);
	return orch_error_set(err, ORCH_EX_DATAERR, "'%s' must be %s", key, what);
}

/* "'ARRAY[I].KEY' must be WHAT", or "'ARRAY[I]' ..." when KEY is NULL. */
static int bad_elem(struct orch_error *err, const char *array, size_t i,
		    const char *key, const char *what)
{
	if (key)
		return orch_error_set(err, ORCH_EX_DATAERR, "'%s[%zu].%s' must be %s",
				      array, i, key, what);
	return orch_error_set(err, ORCH_EX_DATAERR, "'%s[%zu]' must be %s",
			      array, i, what);
}

static int is_time(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* An optional time: absent or null is 0. */
static int opt_time(const json_t *obj, const char *path, const char *key,
		    int64_t *out, struct orch_error *err)
{
	const json_t *v = json_object_get(obj, key);

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!is_time(v))
		return bad(err, path, key, "a non-negative integer");
	*out = json_integer_value(v);
	return 0;
}

/* The stack header, checked, as a new object of the five members. */
static json_t *header(const json_t *snap, int64_t *created_at,
		      struct orch_error *err)
{
	static const char *const strings[] = { "name", "phase", "execution_state" };
	const json_t *stack = json_object_get(snap, "stack"), *v;
	json_t *h;
	size_t i;

	if (!json_is_object(stack)) {
		bad(err, "", "stack", "an object");
		return NULL;
	}
	v = json_object_get(stack, "id");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		bad(err, "stack", "id", "a positive integer");
		return NULL;
	}
	h = xjson(json_object());
	xjson_set(h, "id", json_incref((json_t *)v));
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		v = json_object_get(stack, strings[i]);
		if (!json_is_string(v)) {
			bad(err, "stack", strings[i], "a string");
			goto fail;
		}
		xjson_set(h, strings[i], json_incref((json_t *)v));
	}
	v = json_object_get(stack, "created_at");
	if (!is_time(v)) {
		bad(err, "stack", "created_at", "a non-negative integer");
		goto fail;
	}
	xjson_set(h, "created_at", json_incref((json_t *)v));
	*created_at = json_integer_value(v);
	return h;
fail:
	json_decref(h);
	return NULL;
}

static int read_memory(const json_t *snap, struct detect_facts *f, struct orch_error *err)
{
	const json_t *memory = json_object_get(snap, "memory"), *m, *recs;

	if (!json_is_object(memory))
		return bad(err, "", "memory", "an object");
	m = json_object_get(memory, "planner");
	if (!json_is_object(m))
		return bad(err, "memory", "planner", "an object");
	recs = json_object_get(m, "reviewer_recommendations");
	if (recs && !json_is_null(recs) && !json_is_array(recs))
		return bad(err, "memory.planner", "reviewer_recommendations", "an array");
	f->recommendations = json_array_size(recs);
	if (opt_time(m, "memory.planner", "last_planning_time",
		     &f->last_planning_time, err) != 0)
		return -1;
	m = json_object_get(memory, "reviewer");
	if (!json_is_object(m))
		return bad(err, "memory", "reviewer", "an object");
	return opt_time(m, "memory.reviewer", "last_review_time",
			&f->last_review_time, err);
}

/*
 * What the agents last saw: content_version, and last_runs.AGENT for each
 * agent (null or absent when it never ran). Both are optional, so a
 * snapshot from before them reads as "nothing seen".
 */
static int read_versions(const json_t *snap, struct detect_facts *f,
			 struct orch_error *err)
{
	const json_t *runs, *run, *v;
	char path[64];
	int a;

	v = json_object_get(snap, "content_version");
	if (v && !json_is_null(v)) {
		if (!is_time(v))
			return bad(err, "", "content_version", "a non-negative integer");
		f->content_version = json_integer_value(v);
	}
	runs = json_object_get(snap, "last_runs");
	if (!runs || json_is_null(runs))
		return 0;
	if (!json_is_object(runs))
		return bad(err, "", "last_runs", "an object");
	for (a = 0; a < ORCH_AGENT_COUNT; a++) {
		run = json_object_get(runs, orch_agents[a]);
		if (!run || json_is_null(run))
			continue;
		snprintf(path, sizeof(path), "last_runs.%s", orch_agents[a]);
		if (!json_is_object(run))
			return bad(err, "last_runs", orch_agents[a], "an object or null");
		v = json_object_get(run, "seen_version");
		if (!json_is_integer(v) || json_integer_value(v) < -1)
			return bad(err, path, "seen_version", "an integer from -1");
		f->seen_version[a] = json_integer_value(v);
		v = json_object_get(run, "cycle");
		if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1))
			return bad(err, path, "cycle", "a positive integer or null");
		f->seen_cycle[a] = json_is_integer(v) ? json_integer_value(v) : 0;
	}
	return 0;
}

static int read_todos(const json_t *snap, const struct detect_rules *rules,
		      struct detect_facts *f, struct orch_error *err)
{
	const json_t *todos = json_object_get(snap, "todos"), *t, *v;
	const char *status;
	int64_t priority;
	size_t i;

	if (!json_is_array(todos))
		return bad(err, "", "todos", "an array");
	json_array_foreach(todos, i, t) {
		if (!json_is_object(t))
			return bad_elem(err, "todos", i, NULL, "an object");
		v = json_object_get(t, "status");
		if (!json_is_string(v))
			return bad_elem(err, "todos", i, "status", "a string");
		status = json_string_value(v);
		v = json_object_get(t, "priority");
		if (!json_is_integer(v))
			return bad_elem(err, "todos", i, "priority", "an integer");
		priority = json_integer_value(v);
		v = json_object_get(t, "completed_at");
		if (v && !json_is_null(v) && !is_time(v))
			return bad_elem(err, "todos", i, "completed_at",
					"a non-negative integer or null");
		if (strcmp(status, "pending") == 0) {
			f->pending++;
			if (priority > 0)
				f->pending_positive++;
			if (priority > 0 && priority >= rules->high_priority)
				f->pending_high++;
		} else if (strcmp(status, "completed") == 0) {
			f->has_completed = 1;
			if (is_time(v) && json_integer_value(v) > f->last_review_time)
				f->completed_since_review++;
		}
	}
	return 0;
}

/*
 * User messages: the unprocessed ones are the communicator's work; the
 * strategic ones since the planner's last planning are the planner's,
 * answered or not, so a request the communicator answered first still
 * reaches the planner. A message without "processed" is unprocessed, one
 * without "created_at" is new.
 */
static int read_messages(const json_t *snap, const struct detect_rules *rules,
			 struct detect_facts *f, struct orch_error *err)
{
	const json_t *msgs = json_object_get(snap, "user_messages"), *m, *v, *c;
	int64_t created;
	size_t i;

	if (!json_is_array(msgs))
		return bad(err, "", "user_messages", "an array");
	json_array_foreach(msgs, i, m) {
		if (!json_is_object(m))
			return bad_elem(err, "user_messages", i, NULL, "an object");
		c = json_object_get(m, "content");
		if (!json_is_string(c))
			return bad_elem(err, "user_messages", i, "content", "a string");
		v = json_object_get(m, "processed");
		if (v && !json_is_null(v) && !json_is_boolean(v))
			return bad_elem(err, "user_messages", i, "processed", "true or false");
		/* A parked message is no one's work until a person retries it. */
		if (!json_is_true(v) && !is_time(json_object_get(m, "parked_at")))
			f->user_messages++;
		v = json_object_get(m, "created_at");
		if (v && !json_is_null(v) && !is_time(v))
			return bad_elem(err, "user_messages", i, "created_at",
					"a non-negative integer");
		created = is_time(v) ? json_integer_value(v) : INT64_MAX;
		if (created > f->last_planning_time &&
		    detect_is_strategic(json_string_value(c), json_string_length(c), rules))
			f->strategic++;
	}
	msgs = json_object_get(snap, "messages");
	if (!json_is_array(msgs))
		return bad(err, "", "messages", "an array");
	f->stack_messages = json_array_size(msgs);
	/* What the snapshot's windows left out is work too. */
	v = json_object_get(json_object_get(snap, "omitted"), "messages");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		f->stack_messages += (size_t)json_integer_value(v);
	v = json_object_get(json_object_get(snap, "omitted"), "user_messages");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		f->user_messages += (size_t)json_integer_value(v);
	return 0;
}

static int read_facts(const json_t *snap, const struct detect_rules *rules,
		      struct detect_facts *f, struct orch_error *err)
{
	const json_t *v;

	v = json_object_get(snap, "project");
	if (!v || !(json_is_null(v) || json_is_object(v)))
		return bad(err, "", "project", "an object or null");
	f->has_project = json_is_object(v);
	v = json_object_get(snap, "artifact");
	if (!v || !(json_is_null(v) || json_is_object(v)))
		return bad(err, "", "artifact", "an object or null");
	if (json_is_object(v)) {
		f->has_artifact = 1;
		v = json_object_get(v, "created_at");
		if (!is_time(v))
			return bad(err, "artifact", "created_at", "a non-negative integer");
		f->artifact_created_at = json_integer_value(v);
	}
	/* Memory first: the todo and message counts need its times. */
	if (read_memory(snap, f, err) != 0 || read_versions(snap, f, err) != 0 ||
	    read_todos(snap, rules, f, err) != 0)
		return -1;
	return read_messages(snap, rules, f, err);
}

/* "N SINGULAR" or "N PLURAL": a new string. */
static char *count(size_t n, const char *singular, const char *plural)
{
	return xasprintf("%zu %s", n, n == 1 ? singular : plural);
}

/* Milliseconds from SINCE (>= 0) to NOW when more than INTERVAL, else 0. */
static int64_t overdue(int64_t now, int64_t since, int64_t interval)
{
	if (now <= since || now - since <= interval)
		return 0;
	return now - since;
}

/* An agent's entry; steals REASON. */
static json_t *agent(int has_work, int priority, char *reason)
{
	json_t *a = xjson(json_pack("{sbsisss[]}", "has_work", has_work,
				    "priority", has_work ? priority : 0,
				    "reason", reason, "depends_on"));

	free(reason);
	return a;
}

/*
 * The planner and the reviewer look at the whole stack. Their state rules
 * (no project, no pending todos, the periodic ones) would answer the same
 * on the very work they last ran on, so on a stack whose work has not
 * changed since (content_version is the version that run left as seen:
 * its own writes and orch's bookkeeping aside) such a rule is no work,
 * unless detect.unchanged_interval has passed since the run. Their event
 * rules (recommendations, strategic messages since the last planning,
 * todos completed and artifacts since the last review) fire once per
 * event by their nature and are not held back.
 */
static int seen(const struct detect_facts *f, int a)
{
	return f->content_version >= 0 && f->seen_version[a] == f->content_version;
}

/* The entry of agent A whose state rule REASON (taken) fired on a stack
 * it has seen: work at STALE_PRIORITY when unchanged_interval has passed
 * since its run at LAST_RUN, else none; the reason says which. */
static json_t *seen_already(const struct detect_facts *f, const struct detect_rules *r,
			    int a, int64_t last_run, int stale_priority, char *reason)
{
	char *why, *ran;
	int64_t quiet;

	ran = f->seen_cycle[a] ? xasprintf("its run in cycle %lld", (long long)f->seen_cycle[a])
			       : xstrdup("its last run");
	quiet = r->unchanged_interval_ms > 0
		? overdue(f->now, last_run, r->unchanged_interval_ms) : 0;
	if (quiet)
		why = xasprintf("%s; unchanged for %lld ms since %s, a periodic check",
				reason, (long long)quiet, ran);
	else
		why = xasprintf("%s, but nothing changed since %s", reason, ran);
	free(ran);
	free(reason);
	return agent(quiet > 0, stale_priority, why);
}

/*
 * The first time, from F->now on, at which the time rule of an agent with
 * no work now (last run at LAST_RUN, else the stack's creation; every
 * INTERVAL) would fire if nothing changed: 0 when never.
 */
static int64_t next_check(const struct detect_facts *f, const struct detect_rules *r,
			  int a, int64_t last_run, int64_t interval)
{
	int64_t since = last_run ? last_run : f->created_at;

	if (seen(f, a)) {
		if (r->unchanged_interval_ms <= 0)
			return 0;
		since = last_run;
		interval = r->unchanged_interval_ms;
	}
	if (since > INT64_MAX - interval - 1)
		return 0;
	return since + interval + 1 > f->now ? since + interval + 1 : f->now;
}

/* The planner's first state rule that fires, as the table orders them:
 * its reason (new) and priority; NULL when none does. With LATE_ONLY,
 * only the periodic one. */
static char *planner_state(const struct detect_facts *f, const struct detect_rules *r,
			   int late_only, int *priority)
{
	int64_t since = f->last_planning_time ? f->last_planning_time : f->created_at;
	int64_t late = overdue(f->now, since, r->planning_interval_ms);

	if (!late_only && !f->has_project) {
		*priority = r->planner.no_project;
		return xstrdup("no project idea");
	}
	if (!late_only && f->pending == 0 && !f->plan_done) {
		*priority = r->planner.no_todos;
		return xstrdup("no pending todos");
	}
	*priority = r->planner.stale;
	if (late && f->last_planning_time)
		return xasprintf("last planned %lld ms ago", (long long)late);
	if (late)
		return xasprintf("never planned, stack created %lld ms ago", (long long)late);
	return NULL;
}

static json_t *planner(const struct detect_facts *f, const struct detect_rules *r)
{
	int priority, unseen = !seen(f, 0);
	char *state;

	/* In the table's order: no project, no todos, recommendations,
	 * strategic messages, the periodic rule. */
	if (unseen && (!f->has_project || (f->pending == 0 && !f->plan_done))) {
		state = planner_state(f, r, 0, &priority);
		return agent(1, priority, state);
	}
	if (f->recommendations > 0)
		return agent(1, r->planner.recommendations,
			     count(f->recommendations, "reviewer recommendation",
				   "reviewer recommendations"));
	if (f->strategic > 0)
		return agent(1, r->planner.strategic,
			     count(f->strategic, "strategic user message since the last planning",
				   "strategic user messages since the last planning"));
	if (!(state = planner_state(f, r, unseen, &priority)))
		return agent(0, 0, f->plan_done && f->pending == 0
			     ? xstrdup("no pending todos, and the plan is done")
			     : xstrdup("nothing to plan"));
	if (unseen)
		return agent(1, priority, state);
	return seen_already(f, r, 0, f->last_planning_time, r->planner.stale, state);
}

static json_t *builder(const struct detect_facts *f, const struct detect_rules *r)
{
	char *todos, *reason;

	if (f->pending == 0)
		return agent(0, 0, xstrdup("no pending todos"));
	if (f->pending_positive == 0) {
		todos = count(f->pending, "pending todo", "pending todos");
		reason = xasprintf("%s, none above priority 0", todos);
		free(todos);
		return agent(0, 0, reason);
	}
	todos = count(f->pending_positive, "pending todo", "pending todos");
	if (f->pending_high > 0) {
		reason = xasprintf("%s (%zu high priority)", todos, f->pending_high);
		free(todos);
		return agent(1, r->builder.high, reason);
	}
	return agent(1, r->builder.normal, todos);
}

static json_t *communicator(const struct detect_facts *f, const struct detect_rules *r)
{
	if (f->user_messages > 0)
		return agent(1, r->communicator.user_message,
			     count(f->user_messages, "unprocessed user message",
				   "unprocessed user messages"));
	if (f->stack_messages > 0)
		return agent(1, r->communicator.stack_message,
			     count(f->stack_messages, "unread inter-stack message",
				   "unread inter-stack messages"));
	return agent(0, 0, xstrdup("no messages"));
}

static json_t *reviewer(const struct detect_facts *f, const struct detect_rules *r)
{
	int64_t late = overdue(f->now, f->last_review_time, r->review_interval_ms);
	char *reason;

	if (f->completed_since_review >= (size_t)r->review_min_completed)
		return agent(1, r->reviewer.completed,
			     xasprintf("%zu todos completed since the last review",
				       f->completed_since_review));
	if (f->has_artifact && f->artifact_created_at > f->last_review_time)
		return agent(1, r->reviewer.artifact,
			     xstrdup("a new artifact since the last review"));
	/* The periodic review looks at what there is: a stack with no
	 * artifact and nothing done has nothing to review. */
	if (!late || (!f->has_artifact && !f->has_completed))
		return agent(0, 0, xstrdup("nothing to review"));
	reason = f->last_review_time
		 ? xasprintf("last reviewed %lld ms ago", (long long)late)
		 : xstrdup("never reviewed");
	if (!seen(f, 3))
		return agent(1, r->reviewer.stale, reason);
	return seen_already(f, r, 3, f->last_review_time, r->reviewer.stale, reason);
}

static int has_work(const json_t *a)
{
	return json_is_true(json_object_get(a, "has_work"));
}

/* AGENT depends on ON when both have work. */
static void depend(json_t *agents, const char *agent_name, const char *on)
{
	json_t *a = json_object_get(agents, agent_name);

	if (has_work(a) && has_work(json_object_get(agents, on)))
		xjson_append(json_object_get(a, "depends_on"), xjson(json_string(on)));
}

void detect_facts_init(struct detect_facts *f, int64_t now)
{
	int a;

	memset(f, 0, sizeof(*f));
	f->now = now;
	f->content_version = -1;
	for (a = 0; a < ORCH_AGENT_COUNT; a++)
		f->seen_version[a] = -1;
}

/* The earlier of two times, 0 meaning never. */
static int64_t earlier(int64_t a, int64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

json_t *detect_status_from_facts(json_t *header, const struct detect_facts *f,
				  const struct detect_rules *rules)
{
	json_t *agents, *out;
	int64_t next = 0;

	agents = xjson(json_object());
	xjson_set(agents, "planner", planner(f, rules));
	xjson_set(agents, "builder", builder(f, rules));
	xjson_set(agents, "communicator", communicator(f, rules));
	xjson_set(agents, "reviewer", reviewer(f, rules));
	/* Only the planner's and the reviewer's rules have a clock. */
	if (!has_work(json_object_get(agents, "planner")))
		next = earlier(next, next_check(f, rules, 0, f->last_planning_time,
						rules->planning_interval_ms));
	if (!has_work(json_object_get(agents, "reviewer")))
		next = earlier(next, next_check(f, rules, 3, f->last_review_time,
						rules->review_interval_ms));
	depend(agents, "builder", "planner");
	depend(agents, "reviewer", "builder");
	out = xjson(json_pack("{sssisosIsbso}", "type", "orch.work_status",
			      "version", 1, "stack", header,
			      "computed_at", (json_int_t)f->now, "cached", 0,
			      "agents", agents));
	xjson_set(out, "next_check_at", next ? xjson(json_integer(next)) : json_null());
	return out;
}

json_t *detect_error_status(json_t *header, int64_t now, const char *error)
{
	json_t *agents = xjson(json_object()), *out;
	int a;

	for (a = 0; a < ORCH_AGENT_COUNT; a++)
		xjson_set(agents, orch_agents[a],
			  agent(0, 0, xstrdup("the stack's state cannot be read")));
	out = xjson(json_pack("{sssisosIsbso}", "type", "orch.work_status",
			      "version", 1, "stack", header,
			      "computed_at", (json_int_t)now, "cached", 0,
			      "agents", agents));
	xjson_set(out, "next_check_at", json_null());
	/* Lossy: the message may quote what could not be read. */
	doc_set_bytes(out, "error", error, strlen(error));
	return out;
}

json_t *detect_work_status(const json_t *snapshot, int64_t now,
			   const struct detect_rules *rules, struct orch_error *err)
{
	struct detect_facts f;
	json_t *h = NULL;

	detect_facts_init(&f, now);
	if (doc_check_type(snapshot, "orch.snapshot", err) != 0)
		return NULL;
	if (!(h = header(snapshot, &f.created_at, err)))
		return NULL;
	f.plan_done = detect_plan_done(json_string_value(json_object_get(h, "phase")), rules);
	if (read_facts(snapshot, rules, &f, err) != 0) {
		json_decref(h);
		return NULL;
	}
	return detect_status_from_facts(h, &f, rules);
}
