/*
 * The settings of a turn (flags, environment, configuration file), the
 * providers and their keys, the role prompts, and the context as the user
 * message: what llm.h declares besides the turn itself.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doc.h"
#include "http.h"
#include "llm.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

/* --- capabilities ------------------------------------------------------ */

static const char *const cap_names[LLM_CAP_COUNT] = {
	"schema_keywords_refused", "strict_refused", "json_schema_refused",
	"json_object_refused", "temperature_refused", "max_completion_tokens",
};

const char *llm_cap_name(unsigned cap)
{
	size_t i;

	for (i = 0; i < LLM_CAP_COUNT; i++)
		if (cap == 1u << i)
			return cap_names[i];
	return NULL;
}

unsigned llm_cap_of(const char *name)
{
	size_t i;

	for (i = 0; i < LLM_CAP_COUNT; i++)
		if (strcmp(name, cap_names[i]) == 0)
			return 1u << i;
	return 0;
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

void llm_providers_copy(struct llm_providers *dst, const struct llm_providers *src)
{
	size_t i;

	dst->n = src->n;
	dst->v = xcalloc(src->n ? src->n : 1, sizeof(*dst->v));
	for (i = 0; i < src->n; i++) {
		const struct llm_provider *s = &src->v[i];
		struct llm_provider *d = &dst->v[i];

		*d = *s;
		d->base_url = xstrdup(s->base_url);
		d->model = xstrdup(s->model);
		d->name = xstrdup(s->name);
		d->key_from = xstrdup(s->key_from);
		d->key = s->key ? xstrdup(s->key) : NULL;
	}
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

/*
 * Add a provider for URL and MODEL; WHAT names their origin in errors of
 * status STATUS (64 for a flag or variable, 65 for the file).
 */
static int provider_add(struct llm_providers *p, const char *url, const char *model,
			const char *what, int status, struct orch_error *err)
{
	struct llm_provider *pv;
	size_t len = strlen(url);
	char *name;

	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
	    !(name = http_url_host(url)))
		return orch_error_set(err, status, "%s: '%s' is not an http or https URL",
				      what, url);
	if (!*model) {
		free(name);
		return orch_error_set(err, status, "%s: the model is empty", what);
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

/* One "URL|MODEL|KEYVAR" entry of the fallbacks FROM (a name for errors). */
static int fallback_add(struct llm_providers *p, char *entry, const char *from,
			int index, int status, struct orch_error *err)
{
	char *what = xasprintf("%s: entry %d", from, index);
	char *model, *var = NULL, *end;
	struct llm_provider *pv;
	int rc = -1;

	while (isspace((unsigned char)*entry))
		entry++;
	end = entry + strlen(entry);
	while (end > entry && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (!(model = strchr(entry, '|'))) {
		orch_error_set(err, status, "%s: expected URL|MODEL|KEYVAR", what);
		goto out;
	}
	*model++ = '\0';
	if ((var = strchr(model, '|')))
		*var++ = '\0';
	if (var && (strchr(var, '|') || (*var && !valid_var_name(var)))) {
		/* Never echo it: a key pasted here by mistake must not leak. */
		orch_error_set(err, status, "%s: KEYVAR must be the name of a variable", what);
		goto out;
	}
	if (provider_add(p, entry, model, what, status, err) != 0)
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


/* Fallbacks "URL|MODEL|KEYVAR;..." in LIST, from FROM (for errors). */
static int fallbacks_add(struct llm_providers *p, const char *list, const char *from,
			 int status, struct orch_error *err)
{
	char *copy = xstrdup(list), *entry, *next;
	int index = 0, rc = 0;

	for (entry = copy; entry && rc == 0; entry = next) {
		if ((next = strchr(entry, ';')))
			*next++ = '\0';
		index++;
		if (strspn(entry, " \t\n") == strlen(entry))
			continue;
		rc = fallback_add(p, entry, from, index, status, err);
	}
	free(copy);
	return rc;
}

/* "KEY (ORIGIN)" of a setting for messages (new). */
static char *setting_name(const struct config *c, const char *key)
{
	const char *origin = config_origin(c, key);

	return origin ? xasprintf("%s (%s)", key, origin) : xstrdup(key);
}

/* $VAR when set and not empty, else NULL. */
static const char *env(const char *var)
{
	const char *v = getenv(var);

	return v && *v ? v : NULL;
}

/*
 * The number KEY of the configuration: FLAG's text (named --FLAG_NAME),
 * else $VAR's, else C's value, else the default; within KEY's range.
 */
static int number(const struct config *c, const char *key, const char *flag,
		  const char *flag_name, const char *var, int64_t *out,
		  struct orch_error *err)
{
	const struct config_known *k = config_known_find(key);
	const char *text = flag ? flag : env(var), *what = flag ? flag_name : var;
	char *end;
	long long v;

	if (!text)
		return config_number(c, key, out, err);
	errno = 0;
	v = strtoll(text, &end, 10);
	if (!isdigit((unsigned char)*text) || *end || errno == ERANGE || v < k->min ||
	    v > k->max)
		return orch_error_set(err, ORCH_EX_USAGE,
				      "%s: '%s' is not a whole number from %lld to %lld", what,
				      text, (long long)k->min, (long long)k->max);
	*out = v;
	return 0;
}

/* The primary provider: --base-url, $ORCH_LLM_BASE_URL, llm.base_url. */
static int primary_add(struct llm_providers *p, const char *role, const struct llm_flags *f,
		       const struct config *c, struct orch_error *err)
{
	const char *url = f->base_url, *model = f->model, *what = "--base-url";
	char *key = xasprintf("llm.%s.model", role), *name = NULL;
	int status = ORCH_EX_USAGE, rc;

	if (!url && (url = env("ORCH_LLM_BASE_URL")))
		what = "ORCH_LLM_BASE_URL";
	if (!url) {
		url = config_text(c, "llm.base_url");
		what = name = setting_name(c, "llm.base_url");
		status = ORCH_EX_DATAERR;
	}
	if (!model && !(model = env("ORCH_LLM_MODEL"))) {
		model = config_text(c, key);
		if (!model || !*model)
			model = config_text(c, "llm.model");
	}
	rc = provider_add(p, url, model, what, status, err);
	if (rc == 0)
		primary_key(&p->v[0]);
	free(name);
	free(key);
	return rc;
}

/* The longest wait for a connection, and the cap on one backoff. */
#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_MAX_MS 30000

/*
 * O's bounds that follow from its settings, and the CAs to trust: O's
 * own, else $ORCH_LLM_CA_BUNDLE's. A CA file that cannot be read is 66,
 * said at once rather than as a TLS failure per provider and retry.
 */
static int bounds_and_trust(struct llm_options *o, struct orch_error *err)
{
	const char *ca = env("ORCH_LLM_CA_BUNDLE");

	o->backoff_max_ms = o->backoff_ms > BACKOFF_MAX_MS ? o->backoff_ms : BACKOFF_MAX_MS;
	o->connect_timeout_ms = o->timeout_ms < CONNECT_TIMEOUT_MS ? o->timeout_ms
		: CONNECT_TIMEOUT_MS;
	o->max_response = ORCH_MAX_CHILD_OUTPUT;
	if (!o->ca_file && ca)
		o->ca_file = ca;
	if (o->ca_file && access(o->ca_file, R_OK) != 0)
		return orch_error_set(err, ORCH_EX_NOINPUT, "cannot read CA file '%s': %s",
				      o->ca_file, strerror(errno));
	return 0;
}

int llm_configure(struct llm_options *o, struct llm_providers *p, const char *role,
		  const struct llm_flags *f, const struct config *c,
		  struct orch_error *err)
{
	const char *list;
	char *key, *from;
	int64_t max_tokens, chars, n;
	size_t i;
	int rc;

	memset(p, 0, sizeof(*p));
	if (number(c, "llm.timeout", f->timeout, "--timeout", "ORCH_LLM_TIMEOUT_MS",
		   &o->timeout_ms, err) != 0 ||
	    number(c, "llm.deadline", f->deadline, "--deadline", "ORCH_LLM_DEADLINE_MS",
		   &o->deadline_ms, err) != 0 ||
	    number(c, "llm.retries", f->retries, "--retries", "ORCH_LLM_RETRIES",
		   &o->retries, err) != 0 ||
	    number(c, "llm.backoff", f->backoff, "--backoff", "ORCH_LLM_BACKOFF_MS",
		   &o->backoff_ms, err) != 0 ||
	    number(c, "llm.shared_quota", NULL, NULL, "ORCH_LLM_SHARED_QUOTA",
		   &o->shared_quota, err) != 0 ||
	    config_number(c, "llm.artifact_chars", &chars, err) != 0)
		return -1;
	o->artifact_chars = (size_t)chars;
	key = xasprintf("llm.%s.temperature", role);
	rc = config_decimal(c, key, &o->temperature, err);
	free(key);
	key = xasprintf("llm.%s.max_tokens", role);
	if (rc == 0)
		rc = config_number(c, key, &max_tokens, err);
	free(key);
	if (rc != 0 || primary_add(p, role, f, c, err) != 0)
		return -1;
	if ((list = env("ORCH_LLM_FALLBACKS")))
		rc = fallbacks_add(p, list, "ORCH_LLM_FALLBACKS", ORCH_EX_USAGE, err);
	else if (*(list = config_text(c, "llm.fallbacks"))) {
		from = setting_name(c, "llm.fallbacks");
		rc = fallbacks_add(p, list, from, ORCH_EX_DATAERR, err);
		free(from);
	}
	for (i = 0; rc == 0 && i < p->n; i++) {
		p->v[i].max_tokens = max_tokens;
		if ((rc = config_map_number(c, "llm.max_tokens_by_model", p->v[i].model, &n,
					    err)) == 1 && n < max_tokens)
			p->v[i].max_tokens = n;
		rc = rc < 0 ? -1 : 0;
	}
	if (rc == 0)
		rc = bounds_and_trust(o, err);
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

/* --- the context ------------------------------------------------------ */

int llm_context_check(const json_t *ctx, const char *role, struct orch_error *err)
{
	const json_t *art;
	const char *agent;
	json_t *snap;
	int64_t left;

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
	if (doc_opt_int(ctx, "tokens_left", 1, INT64_MAX, 0, &left, err) != 0)
		return -1;
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

size_t llm_artifact_length(const json_t *ctx)
{
	const json_t *art = json_object_get(ctx, "artifact_content");
	size_t chars;

	if (!json_is_string(art))
		return 0;
	utf8_prefix(json_string_value(art), json_string_length(art), 0, &chars);
	return chars;
}

char *llm_user_message(const json_t *ctx, size_t artifact_chars)
{
	json_t *copy = xjson(json_deep_copy(ctx));
	const json_t *art = json_object_get(copy, "artifact_content");
	char *dump, *msg, *cut;
	size_t chars, at;

	if (json_is_string(art)) {
		at = utf8_prefix(json_string_value(art), json_string_length(art),
				 artifact_chars, &chars);
		if (chars > artifact_chars) {
			cut = xasprintf("%.*s\n<!-- orch: truncated here: the artifact has"
					" %zu characters, only the first %zu are shown -->",
					(int)at, json_string_value(art), chars, artifact_chars);
			xjson_set(copy, "artifact_content", xjson(json_string(cut)));
			free(cut);
		}
	}
	/* The budget is orch's business, not the model's: left out, the
	 * prompt (and a cassette's key) is the same whatever is left. */
	json_object_del(copy, "tokens_left");
	if (!(dump = json_dumps(copy, JSON_COMPACT)))
		dump = xstrdup("{}");
	msg = xasprintf("The orch.context document of this turn:\n%s", dump);
	free(dump);
	json_decref(copy);
	return msg;
}
