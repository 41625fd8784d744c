/*
 * llm_answer.h - what a chat completions server's answer means for the
 * turn, decided from the answer alone (its status, headers and body) and
 * from what was asked: no I/O, no clock but the wall clock an HTTP date
 * is read against, no state. orch-agent's loop calls it after each
 * request; an event loop driving many turns over one curl multi handle
 * can call it the same way.
 *
 * Servers that speak the API differ in how they say no. What is looked at,
 * in order: the status; then the error's "code", "param" and "type" (from
 * {"error": {...}}, [{"error": {...}}], {"error": "X", "message": ...},
 * {"detail": ...} or {"object": "error", ...}); the wording of its message
 * only as a last resort.
 */
#ifndef ORCH_LLM_ANSWER_H
#define ORCH_LLM_ANSWER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "http.h"

/* What to do next. */
enum llm_next {
	LLM_NEXT_REPLY,   /* a completion came back: read it (envelope) */
	LLM_NEXT_RETRY,   /* the same request again, after wait_ms or a backoff */
	LLM_NEXT_ADAPT,   /* resend at once, with learn added to the caps */
	LLM_NEXT_SHRINK,  /* resend with a budget under limit tokens */
	LLM_NEXT_CORRECT, /* the server refused the model's reply as not matching
			     the schema: the corrective round, with generation */
	LLM_NEXT_GIVE_UP, /* this provider cannot answer this turn: the next */
};

/* Why a provider was given up at once, for messages. */
enum llm_fault {
	LLM_FAULT_NONE,
	LLM_FAULT_AUTH,    /* the key was refused: 401, 403 */
	LLM_FAULT_BILLING, /* no credit or quota left: 402, insufficient_quota */
	LLM_FAULT_STREAM,  /* an event stream that could not be read: a second
			      request would be billed again */
};

struct llm_verdict {
	enum llm_next next;
	enum llm_fault fault;
	char *reason;      /* owned: "HTTP 503: SERVER'S WORDS", keys hidden,
			      bounded, one line */
	int64_t wait_ms;   /* RETRY: what the server asked, -1 when nothing */
	unsigned learn;    /* ADAPT: the LLM_CAP_* the server refused */
	int64_t limit;     /* SHRINK: tokens one request may reserve; 0 when
			      the server did not say */
	int64_t requested; /* SHRINK: tokens the server counted this request
			      at; 0 when it did not say */
	char *generation;  /* CORRECT: the refused reply (owned), or NULL */
	json_t *envelope;  /* REPLY: the completion (owned) */
	int stream;        /* REPLY: it came as an event stream */
};

/* What the request that got the answer asked for. */
struct llm_asked {
	unsigned caps;           /* LLM_CAP_* it was shaped by */
	const char *const *keys; /* borrowed: hidden in every reason */
	size_t nkeys;            /* entries in keys (NULLs allowed) */
};

/*
 * Decide what R means. FAILURE is the transport's message when no full
 * response came (R->failure set), else NULL. Fills V; release it with
 * llm_verdict_release().
 */
void llm_answer_classify(const struct http_response *r, const char *failure,
			 const struct llm_asked *q, struct llm_verdict *v);
void llm_verdict_release(struct llm_verdict *v);

/* The error a server put in its body, as far as it says. */
struct llm_error_info {
	char *message;           /* owned or NULL: its words, raw */
	char *type;              /* owned or NULL */
	char *code;              /* owned or NULL; a number as text */
	char *param;             /* owned or NULL; "body.x" locations as "x" */
	char *failed_generation; /* owned or NULL */
	long status;             /* an HTTP status the body gives as its code,
				    else 0 */
};

/* Read the error in BODY (LEN bytes): 1 with E filled, 0 when there is none. */
int llm_error_info_parse(const char *body, size_t len, struct llm_error_info *e);
void llm_error_info_release(struct llm_error_info *e);

/*
 * How long R asks to wait before the next request, in ms, or -1 when it
 * does not say: Retry-After (seconds, a duration, or an HTTP date), else,
 * on a 429, the x-ratelimit-reset-* header of the exhausted limit (or the
 * sooner one when neither says it is exhausted).
 */
int64_t llm_answer_wait(const struct http_response *r);

/*
 * A provider's limits as an answer's headers give them (Groq's, OpenAI's):
 * x-ratelimit-limit-*, -remaining-* and -reset-* for requests and tokens;
 * each -1 when not said.
 */
struct llm_limits {
	int64_t requests_limit;    /* requests in the limit's window */
	int64_t requests_left;     /* of them, left */
	int64_t requests_reset_ms; /* until they are all back */
	int64_t tokens_limit;      /* tokens in the limit's window */
	int64_t tokens_left;
	int64_t tokens_reset_ms;
	int64_t retry_after_ms;    /* a 429's wait (llm_answer_wait()), else -1 */
};

/* Read R's limits into L; 1 when it said any, else 0. */
int llm_answer_limits(const struct http_response *r, struct llm_limits *l);

/*
 * A duration as rate-limit headers give it: "2", "0.5" (seconds),
 * "2.5s", "1m30s", "120ms", "1h2m3.5s". Returns milliseconds, or -1.
 */
int64_t llm_parse_duration(const char *s);

#endif
