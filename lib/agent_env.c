#include <stdlib.h>
#include <string.h>

#include "agent_env.h"
#include "xalloc.h"
#include "banned.h"

/* A NULL-terminated list of strings being built. */
struct list {
	char **v;     /* owned, and each string */
	size_t n;     /* used, without the NULL */
	size_t alloc; /* allocated, with the NULL */
};

static void list_add(struct list *l, char *owned)
{
	if (l->n + 1 >= l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->v = xreallocarray(l->v, l->alloc, sizeof(*l->v));
	}
	l->v[l->n++] = owned;
	l->v[l->n] = NULL;
}

/* Whether the entry "NAME=VALUE" is of variable NAME (LEN bytes). */
static int entry_is(const char *entry, const char *name, size_t len)
{
	return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

static int in_list(const char *entry, char *const *names)
{
	size_t i;

	for (i = 0; names && names[i]; i++)
		if (entry_is(entry, names[i], strlen(names[i])))
			return 1;
	return 0;
}

/* The KEYVAR of each "URL|MODEL|KEYVAR" entry of LIST, added to L. A
 * malformed entry names none: orch-agent refuses it anyway. */
static void fallback_keys(const char *list, struct list *l)
{
	const char *p = list, *end, *bar, *start, *stop;

	while (p && *p) {
		end = strchr(p, ';');
		stop = end ? end : p + strlen(p);
		bar = memchr(p, '|', (size_t)(stop - p));
		if (bar)
			bar = memchr(bar + 1, '|', (size_t)(stop - bar - 1));
		if (bar) {
			for (start = bar + 1; start < stop && strchr(" \t\n", *start); start++)
				;
			while (stop > start && strchr(" \t\n", stop[-1]))
				stop--;
			if (stop > start)
				list_add(l, xstrndup(start, (size_t)(stop - start)));
		}
		p = end ? end + 1 : NULL;
	}
}

/* Whether ENTRY is a provider's variable: ORCH_LLM_*, GROQ_*, or one of
 * the fallbacks' KEYS. */
static int is_provider(const char *entry, char *const *keys)
{
	return strncmp(entry, "ORCH_LLM_", 9) == 0 || strncmp(entry, "GROQ_", 5) == 0 ||
	       in_list(entry, keys);
}

/* PATH made absolute when it can be (an agent may change directory). */
static char *absolute(const char *path)
{
	char *abs = realpath(path, NULL);

	return abs ? abs : xstrdup(path);
}

int agent_env_build(struct agent_env *ae, char *const *base, const struct config *c,
		    const char *db, const char *config_file, const char *owner,
		    struct orch_error *err)
{
	static char *const ours[] = { "ORCH_DB", "ORCH_CONFIG", AGENT_ENV_OWNER, NULL };
	struct list builtin = { NULL, 0, 0 }, command = { NULL, 0, 0 }, keys = { NULL, 0, 0 };
	const char *env = getenv("ORCH_LLM_FALLBACKS");
	char **pass, *path;
	size_t npass, i;

	if (!(pass = config_list(c, "exec.pass_env", &npass, err)))
		return -1;
	if (env)
		fallback_keys(env, &keys);
	fallback_keys(config_text(c, "llm.fallbacks"), &keys);
	for (i = 0; base && base[i]; i++) {
		if (!strchr(base[i], '=') || (in_list(base[i], ours) &&
		    (!entry_is(base[i], "ORCH_CONFIG", 11) || config_file)))
			continue;
		list_add(&builtin, xstrdup(base[i]));
		if (!is_provider(base[i], keys.v) || in_list(base[i], pass))
			list_add(&command, xstrdup(base[i]));
	}
	path = absolute(db);
	list_add(&builtin, xasprintf("ORCH_DB=%s", path));
	list_add(&command, xasprintf("ORCH_DB=%s", path));
	free(path);
	if (config_file) {
		path = absolute(config_file);
		list_add(&builtin, xasprintf("ORCH_CONFIG=%s", path));
		list_add(&command, xasprintf("ORCH_CONFIG=%s", path));
		free(path);
	}
	list_add(&builtin, xasprintf("%s=%s", AGENT_ENV_OWNER, owner));
	list_add(&command, xasprintf("%s=%s", AGENT_ENV_OWNER, owner));
	words_free(keys.v);
	words_free(pass);
	ae->builtin = builtin.v;
	ae->command = command.v;
	return 0;
}

void agent_env_release(struct agent_env *ae)
{
	words_free(ae->builtin);
	words_free(ae->command);
	ae->builtin = ae->command = NULL;
}

int agent_env_is_builtin(char *const argv[])
{
	const char *slash;

	if (!argv || !argv[0])
		return 0;
	slash = strrchr(argv[0], '/');
	return strcmp(slash ? slash + 1 : argv[0], "orch-agent") == 0;
}

int agent_env_is_plain_builtin(char *const argv[], const char *role)
{
	return agent_env_is_builtin(argv) && argv[1] && strcmp(argv[1], "--role") == 0 &&
	       argv[2] && strcmp(argv[2], role) == 0 && !argv[3];
}
