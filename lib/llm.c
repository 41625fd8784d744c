#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "actions.h"
#include "doc.h"
#include "http.h"
#include "llm.h"
#include "orch.h"
#include "redact.h"
#include "xalloc.h"
#include "banned.h"

/* How the reply's shape is asked for; a server may refuse a schema. */
enum reply_mode {
	MODE_SCHEMA, /* response_format json_schema, strict */
	MODE_OBJECT, /* response_format json_object */
};

/* One turn across the providers. */
struct turn {
	const struct llm_options *o;     /* borrowed */
	const struct llm_providers *p;   /* borrowed */
	const char **keys;               /* owned array of the providers' keys
					    (borrowed strings): redacted */
	struct http_client http;         /* owned; one connection pool */
	int64_t start;                   /* monotonic ms at the start */
	int64_t deadline_at;             /* monotonic ms of the deadline */
	uint64_t rng;                    /* jitter state */
	int64_t prompt_tokens;           /* summed over every reply */
	int64_t completion_tokens;       /* summed over every reply */
};

/* Why a provider gave up. */
enum give_up {
	GIVE_UP_FAILED,   /* unreachable, errors, limits: try the next */
	GIVE_UP_INVALID,  /* kept replying with invalid documents: the next */
	GIVE_UP_DEADLINE, /* out of time: stop */
};

static const struct {
	const char *role;
	double temperature;
	int64_t max_tokens;
} sampling[] = {
	{ "planner", 0.8, 8000 },
	{ "builder", 0.7, 16000 },
	{ "communicator", 0.7, 2000 },
	{ "reviewer", 0.5, 4000 },
};

int llm_role_sampling(const char *role, double *temperature, int64_t *max_tokens)
{
	size_t i;

	for (i = 0; i < sizeof(sampling) / sizeof(sampling[0]); i++) {
		if (strcmp(role, sampling[i].role) == 0) {
			*temperature = sampling[i].temperature;
			*max_tokens = sampling[i].max_tokens;
			return 0;
		}
	}
	return -1;
}

/* --- providers --------------------------------------------------------- */

static void provider_release(struct llm_provider *pv)
{
	free(pv->base_url);
	free(pv->model);
	free(pv->name);
	free(pv->key_from);
	if (pv->key) {
		explicit_bzero(pv->key, strlen(pv->key));
		free(pv->key);
	}
	memset(pv, 0, sizeof(*pv));
}

void llm_providers_release(struct llm_providers *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		provider_release(&p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static char *env_key(const char *var)
{
	const char *v = getenv(var);

	return v && *v ? xstrdup(v) : NULL;
}

static int valid_var_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

/* Add a provider for URL and MODEL; WHAT names their origin in errors. */
static int provider_add(struct llm_providers *p, const char *url,
			const char *model, const char *what, struct orch_error *err)
{
	struct llm_provider *pv;
	size_t len = strlen(url);
	char *name;

	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
	    !(name = http_url_host(url)))
		return orch_error_set(err, ORCH_EX_USAGE,
				      "%s: '%s' is not an http or https URL", what, url);
	if (!*model) {
		free(name);
		return orch_error_set(err, ORCH_EX_USAGE, "%s: the model is empty", what);
	}
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	pv = &p->v[p->n++];
	memset(pv, 0, sizeof(*pv));
	while (len > 0 && url[len - 1] == '/')
		len--;
	pv->base_url = xstrndup(url, len);
	pv->model = xstrdup(model);
	pv->name = name;
	return 0;
}

static void primary_key(struct llm_provider *pv)
{
	if ((pv->key = env_key("ORCH_LLM_API_KEY"))) {
		pv->key_from = xstrdup("ORCH_LLM_API_KEY");
	} else {
		pv->key = env_key("GROQ_API_KEY");
		pv->key_from = xstrdup("ORCH_LLM_API_KEY or GROQ_API_KEY");
	}
}

/* One "URL|MODEL|KEYVAR" entry of ORCH_LLM_FALLBACKS. */
static int fallback_add(struct llm_providers *p, char *entry, int index,
			struct orch_error *err)
{
	char *what = xasprintf("ORCH_LLM_FALLBACKS: entry %d", index);
	char *model, *var = NULL, *end;
	struct llm_provider *pv;
	int rc = -1;

	while (isspace((unsigned char)*entry))
		entry++;
	end = entry + strlen(entry);
	while (end > entry && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (!(model = strchr(entry, '|'))) {
		orch_error_set(err, ORCH_EX_USAGE, "%s: expected URL|MODEL|KEYVAR", what);
		goto out;
	}
	*model++ = '\0';
	if ((var = strchr(model, '|')))
		*var++ = '\0';
	if (var && (strchr(var, '|') || (*var && !valid_var_name(var)))) {
		/* Never echo it: a key pasted here by mistake must not leak. */
		orch_error_set(err, ORCH_EX_USAGE,
			       "%s: KEYVAR must be the name of a variable", what);
		goto out;
	}
	if (provider_add(p, entry, model, what, err) != 0)
		goto out;
	pv = &p->v[p->n - 1];
	if (var && *var) {
		pv->key = env_key(var);
		pv->key_from = xstrdup(var);
	} else {
		primary_key(pv);
	}
	rc = 0;
out:
	free(what);
	return rc;
}

int llm_providers_load(struct llm_providers *p, const char *base_url,
		       const char *model, struct orch_error *err)
{
	const char *env_url = getenv("ORCH_LLM_BASE_URL");
	const char *env_model = getenv("ORCH_LLM_MODEL");
	const char *fallbacks = getenv("ORCH_LLM_FALLBACKS");
	char *list, *entry, *next;
	int index = 0, rc = 0;

	memset(p, 0, sizeof(*p));
	if (!base_url)
		base_url = env_url && *env_url ? env_url : LLM_DEFAULT_BASE_URL;
	if (!model)
		model = env_model && *env_model ? env_model : LLM_DEFAULT_MODEL;
	if (provider_add(p, base_url, model,
			 env_url && base_url == env_url ? "ORCH_LLM_BASE_URL" : "--base-url",
			 err) != 0)
		return -1;
	primary_key(&p->v[0]);
	if (!fallbacks || !*fallbacks)
		return 0;
	list = xstrdup(fallbacks);
	for (entry = list; entry && rc == 0; entry = next) {
		if ((next = strchr(entry, ';')))
			*next++ = '\0';
		index++;
		if (strspn(entry, " \t\n") == strlen(entry))
			continue;
		rc = fallback_add(p, entry, index, err);
	}
	free(list);
	if (rc != 0)
		llm_providers_release(p);
	return rc;
}

/* --- prompts ----------------------------------------------------------- */

static char *read_file(const char *path, size_t max, struct orch_error *err)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!fp) {
		orch_error_set(err, ORCH_EX_NOINPUT, "cannot open '%s': %s", path,
			       strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 8192) {
			cap = cap ? cap * 2 : 16384;
			buf = xreallocarray(buf, cap, 1);
		}
		n = fread(buf + len, 1, cap - len - 1, fp);
		len += n;
	} while (n > 0 && len <= max);
	if (ferror(fp) || len > max) {
		if (len > max)
			orch_error_set(err, ORCH_EX_DATAERR, "'%s' is larger than %zu bytes",
				       path, max);
		else
			orch_error_set(err, ORCH_EX_NOINPUT, "cannot read '%s': %s", path,
				       strerror(errno));
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[len] = '\0';
	return buf;
}

/* prompts/ROLE.md two levels above the executable (new), or NULL. */
static char *build_tree_prompt(const char *role)
{
	char exe[PATH_MAX], *slash, *path;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int up;

	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return NULL;
	exe[n] = '\0';
	for (up = 0; up < 3; up++) {
		if (!(slash = strrchr(exe, '/')))
			return NULL;
		*slash = '\0';
	}
	path = xasprintf("%s/prompts/%s.md", exe, role);
	if (access(path, R_OK) == 0)
		return path;
	free(path);
	return NULL;
}

char *llm_prompt_load(const char *role, const char *file, char **path,
		      struct orch_error *err)
{
	const char *dir = getenv("ORCH_PROMPTS_DIR");
	char *p, *text;

	*path = NULL;
	if (file) {
		p = xstrdup(file);
	} else if (dir && *dir) {
		p = xasprintf("%s/%s.md", dir, role);
	} else {
		p = xasprintf("%s/prompts/%s.md", ORCH_DATADIR, role);
		if (access(p, F_OK) != 0) {
			char *built = build_tree_prompt(role);

			if (!built) {
				orch_error_set(err, ORCH_EX_NOINPUT,
					       "no prompt for role '%s': '%s' is missing"
					       " (set ORCH_PROMPTS_DIR or use --prompt)",
					       role, p);
				free(p);
				return NULL;
			}
			free(p);
			p = built;
		}
	}
	if (!(text = read_file(p, LLM_MAX_PROMPT, err))) {
		free(p);
		return NULL;
	}
	*path = p;
	return text;
}

/* --- the context and the request ------------------------------------- */

int llm_context_check(const json_t *ctx, const char *role, struct orch_error *err)
{
	const json_t *art;
	const char *agent;
	json_t *snap;

	if (doc_check_type(ctx, "orch.context", err) != 0 ||
	    doc_string(ctx, "agent", &agent, err) != 0 ||
	    doc_object(ctx, "snapshot", &snap, err) != 0)
		return -1;
	if (orch_agent_index(agent) < 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "unknown agent '%s'", agent);
	if (strcmp(agent, role) != 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "the context is for the %s, not the %s", agent, role);
	art = json_object_get(ctx, "artifact_content");
	if (art && !json_is_null(art) && !json_is_string(art))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'artifact_content' must be a string or null");
	return 0;
}

/* Byte offset of the character after the first MAX of S (UTF-8), or LEN. */
static size_t utf8_prefix(const char *s, size_t len, size_t max, size_t *chars)
{
	size_t i, n = 0, cut = len;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (n == max && cut == len)
			cut = i;
		n++;
	}
	*chars = n;
	return cut;
}

char *llm_user_message(const json_t *ctx)
{
	json_t *copy = xjson(json_deep_copy(ctx));
	const json_t *art = json_object_get(copy, "artifact_content");
	char *dump, *msg, *cut;
	size_t chars, at;

	if (json_is_string(art)) {
		at = utf8_prefix(json_string_value(art), json_string_length(art),
				 LLM_ARTIFACT_SHOWN, &chars);
		if (chars > LLM_ARTIFACT_SHOWN) {
			cut = xasprintf("%.*s\n<!-- orch: truncated here: the artifact has"
					" %zu characters, only the first %d are shown -->",
					(int)at, json_string_value(art), chars,
					LLM_ARTIFACT_SHOWN);
			xjson_set(copy, "artifact_content", xjson(json_string(cut)));
			free(cut);
		}
	}
	if (!(dump = json_dumps(copy, JSON_COMPACT)))
		dump = xstrdup("{}");
	msg = xasprintf("The orch.context document of this turn:\n%s", dump);
	free(dump);
	json_decref(copy);
	return msg;
}

/*
 * The vocabulary as strict structured output wants it: every field
 * required, optional ones nullable (actions_validate() takes a null
 * optional field as absent).
 */
static const struct {
	const char *type;
	const char *fields[3][2]; /* name, "type|type" */
} vocabulary[] = {
	{ "set_project", { { "title", "string" }, { "description", "string" } } },
	{ "set_phase", { { "phase", "string" } } },
	{ "create_todo", { { "content", "string" }, { "priority", "integer|null" } } },
	{ "update_todo", { { "id", "integer" }, { "content", "string|null" },
			   { "priority", "integer|null" } } },
	{ "complete_todo", { { "id", "integer" } } },
	{ "delete_todo", { { "id", "integer" } } },
	{ "clear_todos", { { NULL, NULL } } },
	{ "write_artifact", { { "content", "string" }, { "artifact_type", "string|null" } } },
	{ "send_message", { { "content", "string" }, { "to", "string|integer|null" } } },
	{ "reply_user", { { "message_id", "integer" }, { "content", "string" } } },
	{ "mark_read", { { "message_id", "integer" } } },
	{ "recommend", { { "recommendation", "string" } } },
	{ "remember", { { "key", "string" }, { "value", "string|number|boolean|null" } } },
};

static json_t *type_of(const char *types)
{
	json_t *arr;
	char *copy, *t, *next;

	if (!strchr(types, '|'))
		return xjson(json_string(types));
	arr = xjson(json_array());
	copy = xstrdup(types);
	for (t = copy; t; t = next) {
		if ((next = strchr(t, '|')))
			*next++ = '\0';
		xjson_append(arr, xjson(json_string(t)));
	}
	free(copy);
	return arr;
}

json_t *llm_actions_schema(void)
{
	json_t *any = xjson(json_array()), *props, *req, *action, *status, *actions;
	size_t i, f;

	for (i = 0; i < sizeof(vocabulary) / sizeof(vocabulary[0]); i++) {
		props = xjson(json_object());
		req = xjson(json_array());
		xjson_set(props, "type", xjson(json_pack("{s:s,s:[s]}", "type", "string",
							 "enum", vocabulary[i].type)));
		xjson_append(req, xjson(json_string("type")));
		for (f = 0; f < 3 && vocabulary[i].fields[f][0]; f++) {
			xjson_set(props, vocabulary[i].fields[f][0],
				  xjson(json_pack("{s:o}", "type",
						  type_of(vocabulary[i].fields[f][1]))));
			xjson_append(req, xjson(json_string(vocabulary[i].fields[f][0])));
		}
		if (strcmp(vocabulary[i].type, "update_todo") == 0) {
			status = xjson(json_pack("{s:[s,s],s:[s,s,s,n]}", "type", "string",
						 "null", "enum", "pending",
						 "completed", "cancelled"));
			xjson_set(props, "status", status);
			xjson_append(req, xjson(json_string("status")));
		}
		action = xjson(json_pack("{s:s,s:o,s:o,s:b}", "type", "object",
					 "properties", props, "required", req,
					 "additionalProperties", 0));
		xjson_append(any, action);
	}
	actions = xjson(json_pack("{s:s,s:{s:o}}", "type", "array", "items", "anyOf", any));
	return xjson(json_pack("{s:s,s:{s:{s:s},s:o},s:[s,s],s:b}", "type", "object",
			       "properties", "thinking", "type", "string",
			       "actions", actions, "required", "thinking", "actions",
			       "additionalProperties", 0));
}

/* --- durations --------------------------------------------------------- */

/* A decimal number at *S ("12", "2.5"), advancing *S; -1 if none. */
static double number(const char **s)
{
	const char *p = *s;
	double v = 0, scale = 1;
	int digits = 0;

	for (; isdigit((unsigned char)*p); p++, digits++)
		v = v * 10 + (*p - '0');
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			v += (*p - '0') * (scale /= 10);
	}
	if (!digits)
		return -1;
	*s = p;
	return v;
}

int64_t llm_parse_duration(const char *s)
{
	double total = 0, v, unit;
	int parts = 0;

	while (isspace((unsigned char)*s))
		s++;
	while (*s && !isspace((unsigned char)*s)) {
		if ((v = number(&s)) < 0)
			return -1;
		if (strncmp(s, "ms", 2) == 0) {
			unit = 1, s += 2;
		} else if (*s == 'h') {
			unit = 3600000, s++;
		} else if (*s == 'm') {
			unit = 60000, s++;
		} else if (*s == 's') {
			unit = 1000, s++;
		} else if (!*s || isspace((unsigned char)*s)) {
			if (parts)
				return -1;
			unit = 1000;
		} else {
			return -1;
		}
		total += v * unit;
		parts++;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (!parts || *s || total > 1e12)
		return -1;
	return (int64_t)ceil(total);
}

/* --- one turn ---------------------------------------------------------- */

/* S with every part of a provider key replaced by "[redacted]" (new string). */
static char *redact(const struct turn *t, const char *s)
{
	return redact_text(s, strlen(s), t->keys, t->p->n, 0);
}

static void logline(struct turn *t, enum llm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logline(struct turn *t, enum llm_log_level level, const char *fmt, ...)
{
	va_list ap;
	char *line, *clean;

	if (!t->o->log)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	clean = redact(t, line);
	t->o->log(t->o->log_arg, level, clean);
	free(clean);
	free(line);
}

static void on_http_trace(void *arg, const char *line)
{
	logline(arg, LLM_LOG_TRACE, "%s", line);
}

static uint64_t next_random(struct turn *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

/* The backoff before retry number ATTEMPT (from 0): half fixed, half jitter. */
static int64_t backoff(struct turn *t, int attempt)
{
	int64_t d = t->o->backoff_ms;
	int i;

	for (i = 0; i < attempt && d < t->o->backoff_max_ms; i++)
		d *= 2;
	if (d > t->o->backoff_max_ms)
		d = t->o->backoff_max_ms;
	if (d <= 1)
		return d;
	return d / 2 + (int64_t)(next_random(t) % (uint64_t)(d / 2 + 1));
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* How long a 429 asks to wait, in ms, or -1 when it does not say. */
static int64_t rate_limit_wait(const struct http_response *r)
{
	static const char *const limits[2][2] = {
		{ "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests" },
		{ "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens" },
	};
	const char *v = http_response_header(r, "retry-after"), *left;
	int64_t wait = -1, any = -1, d;
	time_t when;
	int i;

	if (v) {
		if ((d = llm_parse_duration(v)) >= 0)
			return d;
		if ((when = curl_getdate(v, NULL)) != -1) {
			d = ((int64_t)when - (int64_t)time(NULL)) * 1000;
			return d > 0 ? d : 0;
		}
	}
	for (i = 0; i < 2; i++) {
		if (!(v = http_response_header(r, limits[i][1])) ||
		    (d = llm_parse_duration(v)) < 0)
			continue;
		left = http_response_header(r, limits[i][0]);
		if (left && strcmp(left, "0") == 0 && d > wait)
			wait = d;
		if (any < 0 || d < any)
			any = d;
	}
	return wait >= 0 ? wait : any;
}

/*
 * The server's own words (new): error.message of the body, else its start,
 * with the keys redacted before the cut and control bytes made harmless.
 */
static char *server_message(const struct turn *t, const struct http_response *r)
{
	json_t *body = json_loadb(r->body, r->len, 0, NULL);
	const json_t *e = json_object_get(body, "error");
	const json_t *m = NULL;
	char *out;

	if (json_is_string(json_object_get(e, "message")))
		m = json_object_get(e, "message");
	else if (json_is_string(e))
		m = e;
	else if (json_is_string(json_object_get(body, "message")))
		m = json_object_get(body, "message");
	if (m)
		out = redact_text(json_string_value(m), json_string_length(m), t->keys,
				  t->p->n, LLM_MESSAGE_MAX);
	else if (r->len)
		out = redact_text(r->body, r->len, t->keys, t->p->n, LLM_MESSAGE_MAX);
	else
		out = xstrdup("no message");
	json_decref(body);
	return out;
}

static char *request_body(struct turn *t, const struct llm_provider *pv,
			  const json_t *messages, enum reply_mode mode, size_t *len)
{
	json_t *req, *format;
	char *body;

	if (mode == MODE_SCHEMA)
		format = json_pack("{s:s,s:{s:s,s:b,s:o}}", "type", "json_schema",
				   "json_schema", "name", "orch_actions", "strict", 1,
				   "schema", llm_actions_schema());
	else
		format = json_pack("{s:s}", "type", "json_object");
	req = xjson(json_pack("{s:s,s:O,s:f,s:I,s:b,s:o}", "model", pv->model,
			      "messages", messages, "temperature", t->o->temperature,
			      "max_tokens", (json_int_t)t->o->max_tokens, "stream", 0,
			      "response_format", xjson(format)));
	if (!(body = json_dumps(req, JSON_COMPACT)))
		xjson(NULL);
	json_decref(req);
	*len = strlen(body);
	return body;
}

static int deadline_passed(struct turn *t, struct orch_error *err)
{
	return orch_error_set(err, ORCH_EX_UNAVAILABLE, "deadline of %lld ms passed",
			      (long long)t->o->deadline_ms);
}

/*
 * One chat completion from PV: retries, rate limits and the schema
 * fallback. Returns 0 with *ENVELOPE the response body (new), or -1 with
 * ERR and *WHY.
 */
static int complete(struct turn *t, const struct llm_provider *pv,
		    const json_t *messages, enum reply_mode *mode,
		    json_t **envelope, enum give_up *why, struct orch_error *err)
{
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct orch_error herr = ORCH_ERROR_INIT;
	char *url = xasprintf("%s/chat/completions", pv->base_url);
	char *body = NULL, *reason = NULL, *msg;
	int64_t now, left, timeout, wait;
	const json_t *choice;
	json_error_t jerr;
	int attempt = 0, rc = -1;
	size_t len;

	*why = GIVE_UP_FAILED;
	for (;;) {
		free(reason);
		reason = NULL;
		now = orch_mono_ms();
		if ((left = t->deadline_at - now) <= 0) {
			*why = GIVE_UP_DEADLINE;
			deadline_passed(t, err);
			goto out;
		}
		timeout = t->o->timeout_ms < left ? t->o->timeout_ms : left;
		free(body);
		body = request_body(t, pv, messages, *mode, &len);
		wait = -1;
		if (http_post_json(&t->http, url, pv->key, body, len, timeout, &resp,
				   &herr) != 0) {
			if (resp.failure == HTTP_FAIL_TOO_BIG || resp.failure == HTTP_FAIL_OTHER) {
				orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s", herr.msg);
				goto out;
			}
			if (resp.failure == HTTP_FAIL_TIMEOUT && timeout < t->o->timeout_ms) {
				*why = GIVE_UP_DEADLINE;
				deadline_passed(t, err);
				goto out;
			}
			reason = xstrdup(herr.msg);
		} else if (resp.status >= 200 && resp.status < 300) {
			*envelope = json_loadb(resp.body, resp.len, 0, &jerr);
			choice = json_array_get(json_object_get(*envelope, "choices"), 0);
			if (json_is_object(json_object_get(choice, "message"))) {
				rc = 0;
				goto out;
			}
			reason = *envelope ? xstrdup("the response has no choices[0].message")
				: xasprintf("the response is not JSON: %s", jerr.text);
			json_decref(*envelope);
			*envelope = NULL;
		} else if (resp.status == 429) {
			msg = server_message(t, &resp);
			reason = xasprintf("HTTP 429: %s", msg);
			free(msg);
			wait = rate_limit_wait(&resp);
		} else if (resp.status >= 500) {
			msg = server_message(t, &resp);
			reason = xasprintf("HTTP %ld: %s", resp.status, msg);
			free(msg);
		} else {
			msg = server_message(t, &resp);
			if (resp.status == 400 && *mode == MODE_SCHEMA &&
			    (strcasestr(msg, "response_format") || strcasestr(msg, "json_schema") ||
			     strcasestr(msg, "json schema"))) {
				logline(t, LLM_LOG_TRACE, "%s: the JSON schema was refused (%s);"
					" asking for a json_object instead", pv->name, msg);
				free(msg);
				*mode = MODE_OBJECT;
				continue;
			}
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "HTTP %ld: %s", resp.status, msg);
			free(msg);
			goto out;
		}
		if (attempt >= t->o->retries) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "gave up after %d attempt%s: %s",
				       attempt + 1, attempt ? "s" : "", reason);
			goto out;
		}
		if (wait < 0)
			wait = backoff(t, attempt);
		attempt++;
		if (orch_mono_ms() + wait >= t->deadline_at) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE,
				       "%s; waiting %lld ms more would pass the deadline",
				       reason, (long long)wait);
			goto out;
		}
		logline(t, LLM_LOG_TRACE, "%s: %s; retry %d of %lld in %lld ms", pv->name,
			reason, attempt, (long long)t->o->retries, (long long)wait);
		sleep_ms(wait);
	}
out:
	orch_error_release(&herr);
	http_response_release(&resp);
	free(reason);
	free(body);
	free(url);
	return rc;
}

/*
 * The actions document in the reply ENVELOPE (new, validated), or NULL
 * with ERR saying what is wrong with it.
 */
static json_t *reply_document(struct turn *t, const json_t *envelope,
			      struct orch_error *err)
{
	const json_t *msg = json_object_get(json_array_get(json_object_get(envelope,
							"choices"), 0), "message");
	const char *finish = json_string_value(json_object_get(json_array_get(
		json_object_get(envelope, "choices"), 0), "finish_reason"));
	const json_t *content = json_object_get(msg, "content"), *thinking, *reasoning;
	const char *s, *end;
	json_t *reply = NULL, *doc;
	json_error_t jerr;

	if (!json_is_string(content))
		return orch_error_set(err, ORCH_EX_DATAERR, "the reply has no content"),
		       NULL;
	s = json_string_value(content);
	end = s + json_string_length(content);
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	if (end - s >= 6 && strncmp(s, "```", 3) == 0 && strncmp(end - 3, "```", 3) == 0) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		s = nl ? nl + 1 : s + 3;
		end -= 3;
	}
	if (!(reply = json_loadb(s, (size_t)(end - s), 0, &jerr))) {
		if (finish && strcmp(finish, "length") == 0)
			orch_error_set(err, ORCH_EX_DATAERR,
				       "the reply was cut off at the limit of %lld tokens;"
				       " keep it shorter", (long long)t->o->max_tokens);
		else
			orch_error_set(err, ORCH_EX_DATAERR, "the reply is not JSON: %s",
				       jerr.text);
		return NULL;
	}
	if (!json_is_object(reply)) {
		json_decref(reply);
		return orch_error_set(err, ORCH_EX_DATAERR, "the reply is not a JSON object"),
		       NULL;
	}
	doc = xjson(json_object());
	thinking = json_object_get(reply, "thinking");
	reasoning = json_object_get(msg, "reasoning");
	if (thinking && !json_is_null(thinking))
		xjson_set(doc, "thinking", json_incref((json_t *)thinking));
	else
		xjson_set(doc, "thinking", xjson(json_string(json_is_string(reasoning) ?
			json_string_value(reasoning) : "")));
	if (json_object_get(reply, "actions"))
		xjson_set(doc, "actions", json_incref(json_object_get(reply, "actions")));
	json_decref(reply);
	if (actions_validate(doc, err) != 0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static void add_usage(struct turn *t, const json_t *envelope)
{
	const json_t *u = json_object_get(envelope, "usage");
	json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
	json_int_t c = json_integer_value(json_object_get(u, "completion_tokens"));

	if (p > 0)
		t->prompt_tokens += p;
	if (c > 0)
		t->completion_tokens += c;
}

/* The turn at one provider: NULL with ERR and *WHY when it gives up. */
static json_t *provider_turn(struct turn *t, const struct llm_provider *pv,
			     const char *user, enum give_up *why, struct orch_error *err)
{
	struct orch_error verr = ORCH_ERROR_INIT;
	enum reply_mode mode = MODE_SCHEMA;
	json_t *messages, *envelope = NULL, *doc = NULL, *content;
	const char *model;
	char *note;
	int round;

	messages = xjson(json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content",
				   t->o->system_prompt, "role", "user", "content", user));
	for (round = 0; round < 2; round++) {
		if (complete(t, pv, messages, &mode, &envelope, why, err) != 0)
			goto out;
		add_usage(t, envelope);
		if ((doc = reply_document(t, envelope, &verr)))
			break;
		logline(t, LLM_LOG_TRACE, "%s: %s%s", pv->name, verr.msg,
			round == 0 ? "; asking once more" : "");
		if (round == 0) {
			content = json_object_get(json_object_get(json_array_get(
				json_object_get(envelope, "choices"), 0), "message"), "content");
			note = xasprintf("Your reply was not a valid actions document: %s."
					 " Reply again with only one JSON object"
					 " {\"thinking\": \"...\", \"actions\": [...]} using only"
					 " the action types and fields of the system prompt.",
					 verr.msg);
			xjson_append(messages, xjson(json_pack("{s:s,s:s}", "role", "assistant",
				"content", json_is_string(content) ? json_string_value(content) : "")));
			xjson_append(messages, xjson(json_pack("{s:s,s:s}", "role", "user",
							       "content", note)));
			free(note);
			json_decref(envelope);
			envelope = NULL;
		}
	}
	if (!doc) {
		*why = GIVE_UP_INVALID;
		orch_error_set(err, ORCH_EX_DATAERR,
			       "the reply is not a valid actions document, even after a retry: %s",
			       verr.msg);
		goto out;
	}
	model = json_string_value(json_object_get(envelope, "model"));
	xjson_set(doc, "usage", xjson(json_pack("{s:I,s:I,s:s,s:s,s:I}",
		"prompt_tokens", (json_int_t)t->prompt_tokens,
		"completion_tokens", (json_int_t)t->completion_tokens,
		"model", model && *model ? model : pv->model,
		"provider", pv->name,
		"latency_ms", (json_int_t)(orch_mono_ms() - t->start))));
out:
	orch_error_release(&verr);
	json_decref(envelope);
	json_decref(messages);
	return doc;
}

json_t *llm_run(const struct llm_options *o, const struct llm_providers *p,
		const json_t *ctx, struct orch_error *err)
{
	struct turn t;
	enum give_up why = GIVE_UP_FAILED;
	json_t *doc = NULL;
	char *user = NULL, *clean;
	size_t i;

	memset(&t, 0, sizeof(t));
	t.o = o;
	t.p = p;
	t.start = orch_mono_ms();
	t.deadline_at = t.start + o->deadline_ms;
	t.keys = xcalloc(p->n ? p->n : 1, sizeof(*t.keys));
	for (i = 0; i < p->n; i++)
		t.keys[i] = p->v[i].key;
	t.rng = ((uint64_t)orch_now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)t.start;
	if (!t.rng)
		t.rng = 1;
	if (http_client_init(&t.http, o->max_response, err) != 0) {
		free(t.keys);
		return NULL;
	}
	t.http.connect_timeout_ms = o->connect_timeout_ms;
	t.http.ca_file = o->ca_file;
	if (o->log) {
		t.http.trace = on_http_trace;
		t.http.trace_arg = &t;
	}
	user = llm_user_message(ctx);
	for (i = 0; i < p->n; i++) {
		const struct llm_provider *pv = &p->v[i];

		logline(&t, LLM_LOG_TRACE, "provider %zu of %zu: %s, model %s", i + 1, p->n,
			pv->name, pv->model);
		if (!pv->key) {
			why = GIVE_UP_FAILED;
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "no API key: set %s",
				       pv->key_from);
		} else if ((doc = provider_turn(&t, pv, user, &why, err))) {
			break;
		}
		orch_error_prefix(err, "%s", pv->name);
		if (why == GIVE_UP_DEADLINE)
			break;
		if (i + 1 < p->n)
			logline(&t, LLM_LOG_WARN, "%s; trying %s", err->msg, p->v[i + 1].name);
	}
	if (!doc && err && err->msg) {
		err->status = why == GIVE_UP_INVALID ? ORCH_EX_DATAERR : ORCH_EX_UNAVAILABLE;
		clean = redact(&t, err->msg);
		free(err->msg);
		err->msg = clean;
	}
	free(user);
	free(t.keys);
	http_client_release(&t.http);
	return doc;
}
