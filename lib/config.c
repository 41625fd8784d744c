#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "budget.h"
#include "config.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

void config_release(struct config *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
		free(c->entries[i].origin);
	}
	free(c->entries);
	free(c->slots);
	c->entries = NULL;
	c->slots = NULL;
	c->n = 0;
	c->alloc = 0;
	c->nslots = 0;
}

/* FNV-1a: the keys are short words, so any fair spread does. */
static size_t key_hash(const char *key)
{
	size_t h = (size_t)14695981039346656037ULL;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * (size_t)1099511628211ULL;
	return h;
}

/* The slot of KEY in C's hash: the one holding it, or the free one where
 * it would go. C has slots. */
static size_t *slot_of(const struct config *c, const char *key)
{
	size_t mask = c->nslots - 1, i = key_hash(key) & mask;

	while (c->slots[i] && strcmp(c->entries[c->slots[i] - 1].key, key) != 0)
		i = (i + 1) & mask;
	return &c->slots[i];
}

/* Room for one more key in the hash, at most half full. */
static void slots_grow(struct config *c)
{
	size_t i;

	if (2 * (c->n + 1) <= c->nslots)
		return;
	free(c->slots);
	c->nslots = c->nslots ? 2 * c->nslots : 16;
	c->slots = xcalloc(c->nslots, sizeof(*c->slots));
	for (i = 0; i < c->n; i++)
		*slot_of(c, c->entries[i].key) = i + 1;
}

static struct config_entry *find(const struct config *c, const char *key)
{
	size_t slot;

	if (!c->nslots)
		return NULL;
	slot = *slot_of(c, key);
	return slot ? &c->entries[slot - 1] : NULL;
}

void config_set(struct config *c, const char *key, const char *value,
		const char *origin)
{
	struct config_entry *e = find(c, key);

	if (e) {
		free(e->value);
		free(e->origin);
		e->value = xstrdup(value);
		e->origin = origin ? xstrdup(origin) : NULL;
		return;
	}
	slots_grow(c);
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 8;
		c->entries = xreallocarray(c->entries, c->alloc, sizeof(*c->entries));
	}
	e = &c->entries[c->n++];
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	e->origin = origin ? xstrdup(origin) : NULL;
	*slot_of(c, key) = c->n;
}

const char *config_get(const struct config *c, const char *key)
{
	const struct config_entry *e = find(c, key);

	return e ? e->value : NULL;
}

const char *config_origin(const struct config *c, const char *key)
{
	const struct config_entry *e = find(c, key);

	return e ? e->origin : NULL;
}

int config_get_int(const struct config *c, const char *key, int64_t min,
		   int64_t max, int64_t *out, struct orch_error *err)
{
	const struct config_entry *e = find(c, key);
	char *end;
	long long v;

	if (!e)
		return 0;
	errno = 0;
	v = strtoll(e->value, &end, 10);
	if (e->value[0] == '\0' || isspace((unsigned char)e->value[0]) ||
	    *end != '\0' || errno == ERANGE || v < min || v > max) {
		if (e->origin)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "%s = '%s' (%s): expected a whole number from %lld to %lld",
					      key, e->value, e->origin, (long long)min,
					      (long long)max);
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "%s = '%s': expected a whole number from %lld to %lld",
				      key, e->value, (long long)min, (long long)max);
	}
	*out = v;
	return 0;
}

static int is_key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == '.';
}

/* KEY[0..N) is dotted words of [a-z0-9_-]: no empty word. */
static int valid_key(const char *key, size_t n)
{
	size_t i;

	if (n == 0 || key[0] == '.' || key[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_key_char(key[i]))
			return 0;
		if (key[i] == '.' && key[i + 1] == '.')
			return 0;
	}
	return 1;
}

/*
 * Parse one line (without its newline, LEN bytes) into TMP. Returns 0 for a
 * setting, a blank or a comment, -1 for a malformed line.
 */
static int parse_line(struct config *tmp, char *line, size_t len,
		      const char *origin)
{
	char *p = line, *key, *value, *end = line + len;
	size_t keylen;

	if (memchr(line, '\0', len))
		return -1;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	key = p;
	while (p < end && is_key_char(*p))
		p++;
	keylen = (size_t)(p - key);
	if (!valid_key(key, keylen))
		return -1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '=')
		return -1;
	value = p + 1;
	while (value < end && isspace((unsigned char)*value))
		value++;
	while (end > value && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	key[keylen] = '\0';
	config_set(tmp, key, value, origin);
	return 0;
}

/*
 * FP's whole content, at most CONFIG_MAX_BYTES (new, NUL-terminated; *LEN
 * its length), read before any of it is parsed: a file past the bound
 * costs one buffer of that size, whatever its lines. NULL with ERR.
 */
static char *read_bounded(FILE *fp, const char *path, size_t *len,
			  struct orch_error *err)
{
	char *buf = xmalloc(CONFIG_MAX_BYTES + 2);
	size_t n;

	errno = 0;
	n = fread(buf, 1, CONFIG_MAX_BYTES + 1, fp);
	if (ferror(fp)) {
		orch_error_set(err, ORCH_EX_NOINPUT, "cannot read configuration file '%s': %s",
			       path, strerror(errno ? errno : EIO));
		free(buf);
		return NULL;
	}
	if (n > CONFIG_MAX_BYTES) {
		orch_error_set(err, ORCH_EX_DATAERR,
			       "configuration file '%s' is larger than %d bytes", path,
			       CONFIG_MAX_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Settings reach C only when the whole file parses. */
int config_load_file(struct config *c, const char *path, int missing_ok,
		     struct orch_error *err)
{
	struct config tmp = CONFIG_INIT;
	FILE *fp;
	char *text, *line, *nl, *end, *origin;
	size_t len, i;
	unsigned long long lineno = 0;
	int rc = -1;

	if (!(fp = fopen(path, "re"))) {
		if (errno == ENOENT && missing_ok)
			return 0;
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot open configuration file '%s': %s", path,
				      strerror(errno));
	}
	text = read_bounded(fp, path, &len, err);
	fclose(fp);
	if (!text)
		return -1;
	for (line = text, end = text + len; line < end; line = nl + 1) {
		lineno++;
		if (!(nl = memchr(line, '\n', (size_t)(end - line))))
			nl = end;
		*nl = '\0';
		origin = xasprintf("%s:%llu", path, lineno);
		if (parse_line(&tmp, line, (size_t)(nl - line), origin) != 0) {
			orch_error_set(err, ORCH_EX_DATAERR, "%s: expected 'key = value'",
				       origin);
			free(origin);
			goto out;
		}
		free(origin);
	}
	for (i = 0; i < tmp.n; i++)
		config_set(c, tmp.entries[i].key, tmp.entries[i].value,
			   tmp.entries[i].origin);
	rc = 0;
out:
	free(text);
	config_release(&tmp);
	return rc;
}

char *config_default_path(void)
{
	const char *env = getenv("XDG_CONFIG_HOME");

	if (env && *env)
		return xasprintf("%s/orch/config", env);
	env = getenv("HOME");
	if (env && *env)
		return xasprintf("%s/.config/orch/config", env);
	return NULL;
}

/* A growable string: the word being built. */
struct word {
	char *buf;  /* owned */
	size_t len; /* bytes used, without the terminating NUL */
	size_t cap; /* bytes allocated */
};

static void word_add(struct word *w, char ch)
{
	if (w->len + 1 >= w->cap) {
		w->cap = w->cap ? 2 * w->cap : 32;
		w->buf = xreallocarray(w->buf, w->cap, 1);
	}
	w->buf[w->len++] = ch;
	w->buf[w->len] = '\0';
}

/* S for a one-line message: control characters become '?'. New string. */
static char *one_line(const char *s)
{
	char *out = xstrdup(s), *p;

	for (p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	       ch == '\v' || ch == '\f';
}

/*
 * The POSIX shell's rules for quotes and backslashes and nothing else.
 * Outside quotes a backslash takes the next character literally (a
 * backslash-newline vanishes; a backslash at the very end is kept). In
 * double quotes a backslash escapes only " \ $ ` and newline.
 */
char **words_split(const char *s, struct orch_error *err)
{
	char **argv = NULL;
	size_t argc = 0, alloc = 0;
	struct word w = { NULL, 0, 0 };
	int in_word = 0;
	const char *p = s;
	char *shown;

	for (;;) {
		char ch = *p;

		if (ch == '\0' || is_blank(ch)) {
			if (in_word) {
				if (argc + 2 > alloc) {
					alloc = alloc ? 2 * alloc : 8;
					argv = xreallocarray(argv, alloc, sizeof(*argv));
				}
				argv[argc++] = w.buf ? w.buf : xstrdup("");
				argv[argc] = NULL;
				w.buf = NULL;
				w.len = w.cap = 0;
				in_word = 0;
			}
			if (ch == '\0')
				break;
			p++;
			continue;
		}
		if (ch == '\\' && p[1] == '\n') {
			p += 2;
			continue;
		}
		in_word = 1;
		if (ch == '\\') {
			word_add(&w, p[1] ? p[1] : '\\');
			p += p[1] ? 2 : 1;
		} else if (ch == '\'') {
			for (p++; *p && *p != '\''; p++)
				word_add(&w, *p);
			if (*p != '\'')
				goto unterminated;
			p++;
		} else if (ch == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1])) {
					p++;
					if (*p == '\n')
						continue;
				}
				word_add(&w, *p);
			}
			if (*p != '"')
				goto unterminated;
			p++;
		} else {
			word_add(&w, ch);
			p++;
		}
	}
	if (argc == 0) {
		orch_error_set(err, ORCH_EX_DATAERR, "empty command");
		free(argv);
		return NULL;
	}
	return argv;

unterminated:
	shown = one_line(s);
	orch_error_set(err, ORCH_EX_DATAERR, "unterminated quote in '%s'", shown);
	free(shown);
	free(w.buf);
	words_free(argv);
	return NULL;
}

void words_free(char **argv)
{
	size_t i;

	if (!argv)
		return;
	for (i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* ORCH_MAX_PAUSE_MS: the longest a pause.* may be, which lets a next run
 * further ahead than that be known for a clock's mistake. */
#define WEEK_MS INT64_C(604800000)

const struct config_known config_known[] = {
	{ "agent.planner", "orch-agent --role planner", CONFIG_COMMAND, 0, 0 },
	{ "agent.builder", "orch-agent --role builder", CONFIG_COMMAND, 0, 0 },
	{ "agent.communicator", "orch-agent --role communicator", CONFIG_COMMAND, 0, 0 },
	{ "agent.reviewer", "orch-agent --role reviewer", CONFIG_COMMAND, 0, 0 },
	{ "exec.jobs", "8", CONFIG_NUMBER, 1, 10000 },
	{ "exec.timeout", "600000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "exec.kill_after", "5000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "exec.retries", "1", CONFIG_NUMBER, 0, 100 },
	{ "exec.park_after", "5", CONFIG_NUMBER, 0, 1000 },
	{ "exec.retry_delay", "1000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "exec.wave_delay", "0", CONFIG_NUMBER, 0, WEEK_MS },
	/* How long a cycle's lease lasts unrenewed (lib/exec.h): a host
	 * that died gives its stacks up this long after its last renewal;
	 * 0: as long as the longest cycle the flags allow, never renewed. */
	{ "exec.lease", "60000", CONFIG_NUMBER, 0, WEEK_MS },
	/* 1: the built-in agent's turns run inside orch-exec (lib/turns.h);
	 * 0: each one is an orch-agent process. */
	{ "exec.in_process", "1", CONFIG_NUMBER, 0, 1 },
	/* A provider's variables a command agent other than orch-agent may
	 * see (lib/agent_env.h): none unless listed. */
	{ "exec.pass_env", "", CONFIG_LIST, 0, 0 },
	/* orch-detect's thresholds (lib/detect.h, struct detect_rules). */
	{ "detect.planning_interval", "300000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "detect.review_interval", "180000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "detect.strategic_length", "100", CONFIG_NUMBER, 0, 1000000 },
	{ "detect.strategic_keywords", "feature, add, change project, different, instead, modify",
	  CONFIG_LIST, 0, 0 },
	{ "detect.high_priority", "3", CONFIG_NUMBER, 1, 5 },
	{ "detect.review_min_completed", "2", CONFIG_NUMBER, 1, 1000000 },
	{ "detect.unchanged_interval", "0", CONFIG_NUMBER, 0, WEEK_MS },
	{ "detect.done_phases", "done", CONFIG_LIST, 0, 0 },
	/* ... and the priority each of its rules gives. */
	{ "priority.planner.no_project", "10", CONFIG_NUMBER, 1, 10 },
	{ "priority.planner.no_todos", "9", CONFIG_NUMBER, 1, 10 },
	{ "priority.planner.recommendations", "8", CONFIG_NUMBER, 1, 10 },
	{ "priority.planner.strategic", "7", CONFIG_NUMBER, 1, 10 },
	{ "priority.planner.stale", "4", CONFIG_NUMBER, 1, 10 },
	{ "priority.builder.high", "8", CONFIG_NUMBER, 1, 10 },
	{ "priority.builder.normal", "6", CONFIG_NUMBER, 1, 10 },
	{ "priority.communicator.user_message", "10", CONFIG_NUMBER, 1, 10 },
	{ "priority.communicator.stack_message", "7", CONFIG_NUMBER, 1, 10 },
	{ "priority.reviewer.completed", "6", CONFIG_NUMBER, 1, 10 },
	{ "priority.reviewer.artifact", "6", CONFIG_NUMBER, 1, 10 },
	{ "priority.reviewer.stale", "4", CONFIG_NUMBER, 1, 10 },
	/* orch-decide's pauses (lib/decide.h, struct decide_rules). */
	{ "pause.busy", "1000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.idle_urgent", "1000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.idle_normal", "5000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.idle_quiet", "10000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.idle_cap", "3600000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.failure", "5000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.failure_cap", "300000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.progress", "1000", CONFIG_NUMBER, 0, WEEK_MS },
	{ "pause.nothing", "5000", CONFIG_NUMBER, 0, WEEK_MS },
	/* What the store keeps (lib/retention.h); 0 keeps all. A busy stack
	 * records a cycle every few seconds, a quiet one an empty cycle an
	 * hour: 200 cycles are hours to days of runs to search and show, a
	 * month the most any of them stays, and the tokens of what goes are
	 * kept per day. 100 versions of an artifact to go back to. */
	{ "retain.cycles", "200", CONFIG_NUMBER, 0, 1000000000 },
	{ "retain.age", "2592000000", CONFIG_NUMBER, 0, INT64_C(3153600000000) },
	{ "retain.versions", "100", CONFIG_NUMBER, 0, 1000000000 },
	/* Token budgets (lib/budget.h), 0 for none: the store's, over every
	 * stack, and each stack's unless `orch-stack budget` sets its own. */
	{ "budget.daily_tokens", "0", CONFIG_NUMBER, 0, BUDGET_MAX_TOKENS },
	{ "budget.total_tokens", "0", CONFIG_NUMBER, 0, BUDGET_MAX_TOKENS },
	{ "budget.stack_daily_tokens", "0", CONFIG_NUMBER, 0, BUDGET_MAX_TOKENS },
	{ "budget.stack_total_tokens", "0", CONFIG_NUMBER, 0, BUDGET_MAX_TOKENS },
	/* orch-agent's model settings (lib/llm.h); its flags and ORCH_LLM_*
	 * variables win over them. An empty llm.ROLE.model is llm.model. */
	{ "llm.base_url", "https://api.groq.com/openai/v1", CONFIG_URL, 0, 0 },
	{ "llm.model", "llama-3.3-70b-versatile", CONFIG_TEXT, 1, 0 },
	{ "llm.fallbacks", "", CONFIG_TEXT, 0, 0 },
	{ "llm.timeout", "120000", CONFIG_NUMBER, 1, 3600000 },
	{ "llm.deadline", "300000", CONFIG_NUMBER, 1, 86400000 },
	{ "llm.retries", "3", CONFIG_NUMBER, 0, 20 },
	{ "llm.backoff", "1000", CONFIG_NUMBER, 0, 600000 },
	{ "llm.artifact_chars", "50000", CONFIG_NUMBER, 1000, 1000000 },
	/* 1: take turns at a provider's rate limits through the store
	 * (lib/quota.h); 0: each process for itself. */
	{ "llm.shared_quota", "1", CONFIG_NUMBER, 0, 1 },
	{ "llm.max_tokens_by_model", "", CONFIG_MAP, 1, 1000000 },
	{ "llm.planner.model", "", CONFIG_TEXT, 0, 0 },
	{ "llm.planner.temperature", "0.8", CONFIG_DECIMAL, 0, 2 },
	{ "llm.planner.max_tokens", "8000", CONFIG_NUMBER, 1, 1000000 },
	{ "llm.builder.model", "", CONFIG_TEXT, 0, 0 },
	{ "llm.builder.temperature", "0.7", CONFIG_DECIMAL, 0, 2 },
	{ "llm.builder.max_tokens", "16000", CONFIG_NUMBER, 1, 1000000 },
	{ "llm.communicator.model", "", CONFIG_TEXT, 0, 0 },
	{ "llm.communicator.temperature", "0.7", CONFIG_DECIMAL, 0, 2 },
	{ "llm.communicator.max_tokens", "2000", CONFIG_NUMBER, 1, 1000000 },
	{ "llm.reviewer.model", "", CONFIG_TEXT, 0, 0 },
	{ "llm.reviewer.temperature", "0.5", CONFIG_DECIMAL, 0, 2 },
	{ "llm.reviewer.max_tokens", "4000", CONFIG_NUMBER, 1, 1000000 },
};

const size_t config_known_count = sizeof(config_known) / sizeof(config_known[0]);

const struct config_known *config_known_find(const char *key)
{
	size_t i;

	for (i = 0; i < config_known_count; i++)
		if (strcmp(config_known[i].key, key) == 0)
			return &config_known[i];
	return NULL;
}

/*
 * The items of the list TEXT, trimmed: a blank TEXT is none. NULL with ERR
 * (65) at an empty item ("a,,b", "a,"); WHAT names the value there.
 */
static char **list_split(const char *text, const char *what, size_t *n,
			 struct orch_error *err)
{
	char **items = xcalloc(1, sizeof(*items));
	const char *p = text, *start, *end;
	size_t count = 0;

	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p) {
		*n = 0;
		return items;
	}
	/* Each comma promises another item: "a," ends in an empty one. */
	for (;;) {
		for (start = p; *p && *p != ','; p++)
			;
		for (end = p; end > start && isspace((unsigned char)end[-1]); end--)
			;
		while (start < end && isspace((unsigned char)*start))
			start++;
		if (start == end) {
			orch_error_set(err, ORCH_EX_DATAERR, "%s: item %zu of the list is empty",
				       what, count + 1);
			words_free(items);
			return NULL;
		}
		items = xreallocarray(items, count + 2, sizeof(*items));
		items[count++] = xstrndup(start, (size_t)(end - start));
		items[count] = NULL;
		if (!*p)
			break;
		p++;
	}
	*n = count;
	return items;
}

/* "KEY (ORIGIN)" for messages, or KEY alone for a default (new string). */
static char *named(const struct config *c, const char *key)
{
	const char *origin = config_origin(c, key);

	return origin ? xasprintf("%s (%s)", key, origin) : xstrdup(key);
}

int config_check(const struct config *c, const struct config_known *k,
		 struct orch_error *err)
{
	const char *v = config_get(c, k->key);
	int64_t n;
	size_t count;
	char **words, *what;

	if (!v)
		return 0;
	switch (k->kind) {
	case CONFIG_NUMBER:
		return config_get_int(c, k->key, k->min, k->max, &n, err);
	case CONFIG_COMMAND:
		if (!(words = words_split(v, err)))
			return orch_error_prefix(err, "%s (%s)", k->key, config_origin(c, k->key));
		words_free(words);
		return 0;
	case CONFIG_LIST:
		what = named(c, k->key);
		words = list_split(v, what, &count, err);
		free(what);
		words_free(words);
		return words ? 0 : -1;
	case CONFIG_DECIMAL:
	case CONFIG_TEXT:
	case CONFIG_URL:
	case CONFIG_MAP:
		return config_check_value(c, k, v, err);
	}
	return orch_error_set(err, ORCH_EX_SOFTWARE, "%s: unknown kind of setting", k->key);
}

int config_number(const struct config *c, const char *key, int64_t *out,
		  struct orch_error *err)
{
	const struct config_known *k = config_known_find(key);

	if (!k || k->kind != CONFIG_NUMBER)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "'%s' is not a known number", key);
	*out = strtoll(k->def, NULL, 10);
	return config_get_int(c, key, k->min, k->max, out, err);
}

char **config_items(const struct config *c, const char *key, const char *text,
		    size_t *n, struct orch_error *err)
{
	char *what = named(c, key), **items;

	items = list_split(text, what, n, err);
	free(what);
	return items;
}

char **config_list(const struct config *c, const char *key, size_t *n,
		   struct orch_error *err)
{
	const struct config_known *k = config_known_find(key);
	const char *v = config_get(c, key);
	char *what, **items;

	if (!k || k->kind != CONFIG_LIST) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "'%s' is not a known list", key);
		return NULL;
	}
	what = named(c, key);
	items = list_split(v ? v : k->def, what, n, err);
	free(what);
	return items;
}

int config_load(struct config *c, const char *path, struct orch_error *err)
{
	char *def = NULL, *line;
	size_t before = c->n, i;
	int rc;

	/* orch-exec hands its --config on to the agents it runs this way. */
	if (!path && getenv("ORCH_CONFIG") && *getenv("ORCH_CONFIG"))
		path = getenv("ORCH_CONFIG");
	if (path) {
		rc = config_load_file(c, path, 0, err);
	} else {
		if (!(def = config_default_path()))
			return 0;
		rc = config_load_file(c, def, 1, err);
		free(def);
	}
	for (i = before; rc == 0 && config_warn && i < c->n; i++) {
		if (config_known_find(c->entries[i].key))
			continue;
		line = xasprintf("%s: unknown key '%s'", c->entries[i].origin,
				 c->entries[i].key);
		config_warn(line);
		free(line);
	}
	return rc;
}
