/*
 * llm.h - one agent turn over an OpenAI-compatible chat completions API:
 * an orch.context in, a validated actions document out.
 *
 * Providers are tried in order: the primary, then the fallbacks. At one
 * provider, what each answer means is decided by llm_answer.h from the
 * answer alone: a 429, 408 or 5xx is retried after the wait the server
 * gives (Retry-After, x-ratelimit-reset-*), never shorter than the first
 * backoff and with jitter, or after an exponential backoff; a connection
 * error, a timeout or a cut-off body after a backoff; a request too large
 * for the server's token limit (413, or a 429 or 400 saying so) once more
 * with a ceiling, and for the builder an artifact excerpt, that fits; a
 * refused parameter (response_format, temperature, max_tokens) is dropped
 * or renamed and the request sent again at once; a reply the server
 * refused as not matching the schema (json_validate_failed), a reply that
 * is not a valid actions document, or one cut off, gets one corrective
 * round with the error fed back; a refused key, an exhausted quota, an
 * unreadable event stream, any other 4xx, or a reply larger than the cap,
 * gives up on that provider at once. The whole turn keeps to one deadline.
 * With a quota (quota.h) each request first waits for its turn at the
 * provider's rate limits, shared with every process on the store, and
 * each answer's x-ratelimit-* headers are written back; a turn that would
 * come after the deadline gives the provider up for now (busy, wait_ms).
 *
 * What a server refuses is a capability (enum llm_cap) of the provider and
 * model; the turn starts from what is known (struct llm_provider's caps,
 * which provider_caps.h keeps in the store for a day) and reports what it
 * learns, so the next turn does not ask again.
 *
 * API keys are read from the environment into struct llm_provider, sent
 * only in the Authorization header, wiped on release, and replaced by
 * "[redacted]" in every message this module produces, whole or any run of
 * 8 bytes of them, before a message is cut (a server may echo a key in its
 * error text, cut or not; see redact.h).
 *
 * Nothing here keeps process-global state: a turn is a struct llm_turn,
 * a state machine that never waits itself (it says when it next needs a
 * step, or that its request is on the pool), and the decisions are
 * functions of the answers. orch-agent runs one with llm_run(); orch-exec
 * runs many at once on one pool of connections (turns.h).
 */
#ifndef ORCH_LLM_H
#define ORCH_LLM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"

#define LLM_DEFAULT_BASE_URL "https://api.groq.com/openai/v1"
#define LLM_DEFAULT_MODEL "llama-3.3-70b-versatile"
#define LLM_MAX_PROMPT (1 << 20)  /* bytes in a prompt file */
#define LLM_MESSAGE_MAX 300       /* bytes of a server's message kept in an error */

/*
 * What a provider and model is known to refuse, each learned from a
 * refusal and answered by asking differently.
 */
enum llm_cap {
	LLM_CAP_SCHEMA_PLAIN = 1 << 0,      /* the schema's constraint keywords
					       (minimum, minLength, ...): said in
					       descriptions only */
	LLM_CAP_NO_STRICT = 1 << 1,         /* "strict": true: sent false */
	LLM_CAP_NO_SCHEMA = 1 << 2,         /* json_schema: a json_object asked */
	LLM_CAP_NO_OBJECT = 1 << 3,         /* json_object too: no
					       response_format, the prompt alone */
	LLM_CAP_NO_TEMPERATURE = 1 << 4,    /* temperature: the model's own */
	LLM_CAP_COMPLETION_TOKENS = 1 << 5, /* max_tokens: max_completion_tokens */
};
#define LLM_CAP_COUNT 6

/*
 * The name of the one bit CAP ("no_json_schema", ...), as the store keeps
 * it, or NULL; and the bit of NAME, or 0.
 */
const char *llm_cap_name(unsigned cap);
unsigned llm_cap_of(const char *name);

struct llm_provider {
	char *base_url;      /* owned; no trailing '/' */
	char *model;         /* owned */
	char *name;          /* owned; host[:port] of base_url: "provider" in usage */
	char *key_from;      /* owned; where the key comes from, for messages (a
				variable's name, never its value) */
	char *key;           /* owned, wiped on release; NULL when unset */
	int64_t max_tokens;  /* the reply's ceiling at this model */
	unsigned caps;       /* LLM_CAP_* known refused; the turn adds to it */
	unsigned learned;    /* LLM_CAP_* the turn learned */
	int64_t token_limit; /* tokens one request may reserve here (prompt and
				ceiling); 0 when not known */
	int limit_learned;   /* the turn learned token_limit */
	int busy;            /* the turn gave up here for now (limits, server
				errors, time): a later turn may succeed */
	int64_t wait_ms;     /* with busy: the wait the server asked for
				(Retry-After, x-ratelimit-reset-*), -1 none */
};

struct quota;

struct llm_providers {
	struct llm_provider *v; /* owned; primary first */
	size_t n;               /* entries in v */
};

void llm_providers_release(struct llm_providers *p);

/* DST as a copy of SRC, every string its own: a turn's to learn in. */
void llm_providers_copy(struct llm_providers *dst, const struct llm_providers *src);

/*
 * After a failed llm_run(): the least time before a turn may succeed, in
 * ms, for the retry contract's "retry-after-ms" (orch-exec(1)): the
 * shortest wait asked by the providers the turn gave up on for now; -1
 * when one of them asked none (it may answer at once) or none is busy.
 */
int64_t llm_providers_wait(const struct llm_providers *p);

/* Log lines: WARN always shown, TRACE with --verbose. */
enum llm_log_level {
	LLM_LOG_WARN,  /* a provider failed, the next is tried */
	LLM_LOG_TRACE, /* requests, statuses, waits, what was learned */
};

/* A line of log, without a newline and with every key redacted. */
typedef void llm_log_fn(void *arg, enum llm_log_level level, const char *line);

/*
 * One HTTP request of a turn, as it was answered: what usage (lib/usage.h)
 * accounts. Strings borrowed for the call. A token count is -1 when the
 * answer did not give it.
 */
struct llm_request_record {
	const char *provider;      /* host[:port] of the base URL */
	const char *base_url;
	const char *model;         /* the reply's model, else the one asked */
	long http_status;          /* 0 when no full response came */
	const char *outcome;       /* reply, invalid, retry, adapt, shrink,
				      failed: what the answer meant */
	int64_t started_at;        /* wall-clock ms the request was sent */
	int64_t duration_ms;       /* from sending to the end of the answer */
	int seq;                   /* the request's number in the turn, from 1 */
	int round;                 /* 0, or 1 in the corrective round */
	int retry;                 /* retries before it in this round */
	int64_t prompt_tokens;     /* -1: not said */
	int64_t completion_tokens; /* -1: not said */
	int64_t cached_tokens;     /* of the prompt, served from the provider's
				      cache; -1: not said */
};

typedef void llm_request_fn(void *arg, const struct llm_request_record *r);

struct llm_options {
	const char *role;           /* borrowed */
	const char *system_prompt;  /* borrowed */
	double temperature;         /* sampling */
	int64_t timeout_ms;         /* one request, in total */
	int64_t connect_timeout_ms; /* one connection */
	int64_t deadline_ms;        /* the whole turn, every provider */
	int64_t retries;            /* per provider, after the first attempt */
	int64_t backoff_ms;         /* first backoff; doubles each retry; also
				       the least a server-given wait is taken as */
	int64_t backoff_max_ms;     /* cap on one backoff */
	size_t artifact_chars;      /* characters of artifact_content shown */
	size_t max_response;        /* cap on one response body */
	const char *ca_file;        /* borrowed: CAs to trust instead of the system's, or NULL */
	struct cassette *cassette;  /* borrowed: record or replay the requests
				       (cassette.h), or NULL */
	struct faults *faults;      /* borrowed: faults to inject (faults.h),
				       or NULL */
	struct quota *quota;        /* borrowed: the providers' rate limits
				       shared through the store (quota.h), or
				       NULL */
	int64_t shared_quota;       /* llm.shared_quota: 1 to share them */
	llm_log_fn *log;            /* or NULL */
	void *log_arg;              /* borrowed; handed to log */
	llm_request_fn *on_request; /* or NULL: called after every request
				       that was sent, answered or not */
	void *request_arg;          /* borrowed; handed to on_request */
};

/* orch-agent's flags: each NULL when not given. */
struct llm_flags {
	const char *model;
	const char *base_url;
	const char *timeout;
	const char *deadline;
	const char *retries;
	const char *backoff;
};

/*
 * The settings of a turn for ROLE, each from its flag in F, else its
 * environment variable, else the configuration C, else the default of
 * config_known (lib/config.c):
 *
 *   primary model   --model, $ORCH_LLM_MODEL, llm.ROLE.model, llm.model
 *   primary URL     --base-url, $ORCH_LLM_BASE_URL, llm.base_url
 *   its key         $ORCH_LLM_API_KEY, else $GROQ_API_KEY
 *   fallbacks       $ORCH_LLM_FALLBACKS, llm.fallbacks: "URL|MODEL|KEYVAR"
 *                   separated by ';' (KEYVAR names the variable holding
 *                   that provider's key; empty means the primary's)
 *   --timeout ...   $ORCH_LLM_TIMEOUT_MS, llm.timeout (and deadline,
 *                   retries, backoff the same way)
 *   sampling        llm.ROLE.temperature; llm.ROLE.max_tokens, lowered at
 *                   each provider to llm.max_tokens_by_model's for its model
 *   the artifact    llm.artifact_chars
 *
 * Fills those members of O and P (P's caps empty), and the bounds that
 * follow from them (the connect timeout, the cap on a backoff, the reply's
 * cap) and the CA file: O's own (--cacert), else $ORCH_LLM_CA_BUNDLE's.
 * A bad flag or variable is error 64 naming it, a bad value in the file 65
 * naming key and line, a CA file that cannot be read 66.
 */
int llm_configure(struct llm_options *o, struct llm_providers *p, const char *role,
		  const struct llm_flags *f, const struct config *c,
		  struct orch_error *err);

/*
 * The system prompt of ROLE (new string): FILE if not NULL, else
 * $ORCH_PROMPTS_DIR/ROLE.md if that variable is set, else ORCH_DATADIR
 * "/prompts/ROLE.md", else prompts/ROLE.md two directories above the
 * running executable (bin/orch-agent in a build tree). *PATH gets the file
 * used (new string). A missing or unreadable file is error 66.
 */
char *llm_prompt_load(const char *role, const char *file, char **path,
		      struct orch_error *err);

/*
 * Check that CTX is an orch.context for ROLE (error 65 otherwise), the
 * shape orch-exec builds: "agent", a "snapshot" object, "artifact_content"
 * a string or null.
 */
int llm_context_check(const json_t *ctx, const char *role, struct orch_error *err);

/*
 * The user message for CTX (new string): the document as compact JSON, its
 * artifact_content cut to ARTIFACT_CHARS characters with a note.
 */
char *llm_user_message(const json_t *ctx, size_t artifact_chars);

/* Characters in CTX's artifact_content, 0 when it has none. */
size_t llm_artifact_length(const json_t *ctx);

/*
 * Run one turn for CTX. Returns a new actions document {"thinking",
 * "actions", "usage": {"prompt_tokens", "completion_tokens", "model",
 * "provider", "latency_ms"}} that passed actions_validate(), or NULL with
 * ERR set to "PROVIDER: REASON" of the last provider tried, with the
 * retry contract's status: 75 when a provider was given up for now (its
 * retries or the deadline used up on limits, server or connection errors:
 * its busy and wait_ms say so), else 65 when the last kept replying with
 * invalid documents, else 69 (no key, a refused key, billing, a request
 * too large). Each provider's caps,
 * learned and token_limit say what the turn found out, success or not.
 */
json_t *llm_run(const struct llm_options *o, struct llm_providers *p,
		const json_t *ctx, struct orch_error *err);

/*
 * The same turn, driven by the caller's event loop instead of waiting:
 * llm_run() is these four on a pool of its own.
 *
 * llm_turn_new() begins a turn for CTX (O, P and CTX borrowed until the
 * turn is freed) whose requests go through POOL (borrowed; NULL: a pool
 * of its own), or NULL with ERR (70). llm_turn_step() moves it on as far
 * as it goes without waiting: 0 once it has ended; 1 while it waits,
 * with *WAKE_AT the monotonic ms it next needs a step at (a backoff, the
 * shared quota), or -1 when it waits for its request on the pool (step it
 * again once http_pool_work() has run). llm_turn_end() gives what
 * llm_run() would have, and frees the turn; llm_turn_free() drops one
 * not ended.
 */
struct llm_turn;
struct http_pool;

struct llm_turn *llm_turn_new(const struct llm_options *o, struct llm_providers *p,
			      const json_t *ctx, struct http_pool *pool,
			      struct orch_error *err);
int llm_turn_step(struct llm_turn *t, int64_t *wake_at);
json_t *llm_turn_end(struct llm_turn *t, struct orch_error *err);
void llm_turn_free(struct llm_turn *t);

#endif
