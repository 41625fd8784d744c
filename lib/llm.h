/*
 * llm.h - one agent turn over an OpenAI-compatible chat completions API:
 * an orch.context in, a validated actions document out.
 *
 * Providers are tried in order: the primary, then the fallbacks. Within a
 * provider, a 429 waits for Retry-After or the x-ratelimit-reset-* headers;
 * a 5xx, a connection error, a timeout or a cut-off reply is retried after
 * an exponential backoff with jitter, up to a bound; any other 4xx, a reply
 * larger than the cap, or a reply still invalid after one corrective retry
 * gives up on that provider at once. The whole turn keeps to one deadline.
 *
 * API keys are read from the environment into struct llm_provider, sent
 * only in the Authorization header, wiped on release, and replaced by
 * "[redacted]" in every message this module produces, whole or any run of
 * 8 bytes of them, before a message is cut (a server may echo a key in its
 * error text, cut or not; see redact.h).
 */
#ifndef ORCH_LLM_H
#define ORCH_LLM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define LLM_DEFAULT_BASE_URL "https://api.groq.com/openai/v1"
#define LLM_DEFAULT_MODEL "llama-3.3-70b-versatile"
#define LLM_ARTIFACT_SHOWN 50000  /* characters of artifact_content sent */
#define LLM_MAX_PROMPT (1 << 20)  /* bytes in a prompt file */
#define LLM_MESSAGE_MAX 300       /* bytes of a server's message kept in an error */

struct llm_provider {
	char *base_url; /* owned; no trailing '/' */
	char *model;    /* owned */
	char *name;     /* owned; host[:port] of base_url: "provider" in usage */
	char *key_from; /* owned; where the key comes from, for messages (a
			   variable's name, never its value) */
	char *key;      /* owned, wiped on release; NULL when unset */
};

struct llm_providers {
	struct llm_provider *v; /* owned; primary first */
	size_t n;               /* entries in v */
};

/*
 * The providers: the primary from BASE_URL and MODEL (flags; NULL for
 * $ORCH_LLM_BASE_URL, $ORCH_LLM_MODEL, else the defaults) with the key of
 * $ORCH_LLM_API_KEY, else $GROQ_API_KEY; then each entry of
 * $ORCH_LLM_FALLBACKS, "URL|MODEL|KEYVAR" separated by ';' (KEYVAR names
 * the variable holding that provider's key; empty means the primary's).
 * A malformed URL or entry is error 64 naming the flag or variable.
 */
int llm_providers_load(struct llm_providers *p, const char *base_url,
		       const char *model, struct orch_error *err);
void llm_providers_release(struct llm_providers *p);

/*
 * The system prompt of ROLE (new string): FILE if not NULL, else
 * $ORCH_PROMPTS_DIR/ROLE.md if that variable is set, else ORCH_DATADIR
 * "/prompts/ROLE.md", else prompts/ROLE.md two directories above the
 * running executable (bin/orch-agent in a build tree). *PATH gets the file
 * used (new string). A missing or unreadable file is error 66.
 */
char *llm_prompt_load(const char *role, const char *file, char **path,
		      struct orch_error *err);

/* Sampling of ROLE: 0, or -1 for an unknown role. */
int llm_role_sampling(const char *role, double *temperature, int64_t *max_tokens);

/*
 * Check that CTX is an orch.context for ROLE (error 65 otherwise), the
 * shape orch-exec builds: "agent", a "snapshot" object, "artifact_content"
 * a string or null.
 */
int llm_context_check(const json_t *ctx, const char *role, struct orch_error *err);

/*
 * The user message for CTX (new string): the document as compact JSON, its
 * artifact_content cut to LLM_ARTIFACT_SHOWN characters with a note.
 */
char *llm_user_message(const json_t *ctx);

/* The JSON schema of the actions vocabulary, for strict structured output (new). */
json_t *llm_actions_schema(void);

/*
 * A duration as rate-limit headers give it: "2", "0.5" (seconds),
 * "2.5s", "1m30s", "120ms", "1h2m3.5s". Returns milliseconds, or -1.
 */
int64_t llm_parse_duration(const char *s);

enum llm_log_level {
	LLM_LOG_WARN,  /* a provider failed, the next is tried: always shown */
	LLM_LOG_TRACE, /* requests, statuses, waits: shown with --verbose */
};

/* A line of log, without a newline and with every key redacted. */
typedef void llm_log_fn(void *arg, enum llm_log_level level, const char *line);

struct llm_options {
	const char *role;           /* borrowed */
	const char *system_prompt;  /* borrowed */
	double temperature;         /* sampling */
	int64_t max_tokens;         /* of the reply */
	int64_t timeout_ms;         /* one request, in total */
	int64_t connect_timeout_ms; /* one connection */
	int64_t deadline_ms;        /* the whole turn, every provider */
	int64_t retries;            /* per provider, after the first attempt */
	int64_t backoff_ms;         /* first backoff; doubles each retry */
	int64_t backoff_max_ms;     /* cap on one backoff */
	size_t max_response;        /* cap on one response body */
	const char *ca_file;        /* borrowed: CAs to trust instead of the system's, or NULL */
	llm_log_fn *log;            /* or NULL */
	void *log_arg;              /* borrowed; handed to log */
};

/*
 * Run one turn for CTX. Returns a new actions document {"thinking",
 * "actions", "usage": {"prompt_tokens", "completion_tokens", "model",
 * "provider", "latency_ms"}} that passed actions_validate(), or NULL with
 * ERR set to "PROVIDER: REASON" of the last provider tried, status 65 when
 * it kept replying with invalid documents, else 69.
 */
json_t *llm_run(const struct llm_options *o, const struct llm_providers *p,
		const json_t *ctx, struct orch_error *err);

#endif
