/*
 * fuzz_llm: what orch-agent parses from outside. The bytes as a 2xx body
 * (JSON, or an event stream) through llm_reply_envelope() and the actions
 * document read from it; as an error body through llm_error_info_parse();
 * as a whole answer (the status and Retry-After taken from the first
 * bytes) through llm_answer_classify(), whose verdict must keep its
 * promises; as a rate-limit duration; as a server's message through
 * redact_text(), which must leave no 8 bytes of the key, no control byte,
 * and no more than its bound; as the orch.context on orch-agent's stdin
 * (llm_context_check, then the user message made from it). Numbers from
 * the bytes go through llm_budget_fit(), which may only lower.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "llm.h"
#include "llm_answer.h"
#include "llm_reply.h"
#include "llm_request.h"
#include "orch.h"
#include "redact.h"
#include "xalloc.h"
#include "fuzz.h"

static const char fuzz_key[] = "gsk_fuzz_KEY_0123456789abcdef";

/* Trap when OUT holds 8 bytes of the key in a row. */
static void check_no_key(const char *out)
{
	char run[REDACT_MIN_RUN + 1];
	size_t i;

	for (i = 0; i + REDACT_MIN_RUN <= strlen(fuzz_key); i++) {
		memcpy(run, fuzz_key + i, REDACT_MIN_RUN);
		run[REDACT_MIN_RUN] = '\0';
		if (strstr(out, run))
			__builtin_trap();
	}
}

/* Trap when OUT breaks a promise of redact_text(). */
static void check_redacted(const char *out, size_t max)
{
	size_t i, len = strlen(out);

	if (max && len > max + 3)
		__builtin_trap();
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			__builtin_trap();
	check_no_key(out);
}

static void fuzz_redact(const uint8_t *data, size_t size)
{
	const char *keys[2] = { NULL, fuzz_key };
	size_t at, n;
	char *s, *buf;

	/* The input, and the input with the key spliced in at every cut. */
	s = redact_text((const char *)data, size, keys, 2, size % 64);
	check_redacted(s, size % 64);
	free(s);
	if (size < 2)
		return;
	at = data[0] % size;
	n = size + sizeof(fuzz_key) - 1;
	buf = xmalloc(n);
	memcpy(buf, data, at);
	memcpy(buf + at, fuzz_key, sizeof(fuzz_key) - 1);
	memcpy(buf + at + sizeof(fuzz_key) - 1, data + at, size - at);
	s = redact_text(buf, n, keys, 2, data[1]);
	check_redacted(s, data[1]);
	free(s);
	free(buf);
}

/* An answer of some status with the bytes as its body, classified. */
static void fuzz_answer(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 400, 401, 402, 408, 413, 422, 429, 500, 503 };
	static char name[] = "Retry-After", ctype[] = "Content-Type";
	static char wait[] = "2", stream[] = "text/event-stream";
	const char *keys[1] = { fuzz_key };
	struct http_header headers[2] = { { name, wait }, { ctype, stream } };
	struct http_response r = HTTP_RESPONSE_INIT;
	struct llm_asked q = { 0, keys, 1 };
	struct llm_verdict v;
	struct llm_error_info e;
	unsigned learn;

	if (size < 1)
		return;
	r.status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	/* As http.c keeps a body: LEN bytes, NULs and all, then a NUL. */
	r.body = xmalloc(size);
	memcpy(r.body, data + 1, size - 1);
	r.body[size - 1] = '\0';
	r.len = size - 1;
	r.headers = headers;
	r.n_headers = data[0] & 0x10 ? (data[0] & 0x20 ? 2 : 1) : 0;
	q.caps = (unsigned)(data[0] >> 2) & ((1u << LLM_CAP_COUNT) - 1);
	llm_answer_classify(&r, NULL, &q, &v);
	if ((v.next == LLM_NEXT_REPLY) != (v.envelope != NULL))
		__builtin_trap();
	if (v.next != LLM_NEXT_REPLY && !v.reason)
		__builtin_trap();
	if (v.reason)
		check_no_key(v.reason);
	learn = v.learn;
	if (v.next == LLM_NEXT_ADAPT && (!learn || (learn & (learn - 1)) || (learn & q.caps)))
		__builtin_trap();
	if (v.generation && v.next != LLM_NEXT_CORRECT)
		__builtin_trap();
	llm_verdict_release(&v);
	if (llm_error_info_parse(r.body, r.len, &e))
		llm_error_info_release(&e);
	free(r.body);
}

/* The bytes, cut at each NUL, as the values of a provider's rate-limit
 * headers (the shared quota's, quota.h): each limit read is -1 (not said)
 * or not negative. */
static void fuzz_limits(const uint8_t *data, size_t size)
{
	static char *names[] = {
		"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
		"x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
		"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "retry-after",
	};
	struct http_header headers[7];
	struct http_response r = HTTP_RESPONSE_INIT;
	struct llm_limits l;
	char *copy = xmalloc(size + 1), *p = copy;
	size_t i;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (i = 0; i < 7; i++) {
		headers[i].name = names[i];
		headers[i].value = p;
		p += strlen(p);
		if (p < copy + size)
			p++;
	}
	r.status = size && data[0] & 1 ? 429 : 200;
	r.headers = headers;
	r.n_headers = 7;
	llm_answer_limits(&r, &l);
	if (l.requests_limit < -1 || l.requests_left < -1 || l.requests_reset_ms < -1 ||
	    l.tokens_limit < -1 || l.tokens_left < -1 || l.tokens_reset_ms < -1 ||
	    l.retry_after_ms < -1)
		__builtin_trap();
	free(copy);
}

/* The budget fit on numbers from the bytes: it may only lower. */
static void fuzz_budget(const uint8_t *data, size_t size)
{
	struct llm_budget in, out;
	int64_t limit;
	char *why;

	if (size < 8)
		return;
	memset(&in, 0, sizeof(in));
	in.max_tokens = 1 + (data[0] | data[1] << 8) % 40000;
	in.prompt_bytes = (size_t)(data[2] | data[3] << 8) * 4;
	in.prompt_tokens = llm_prompt_tokens(in.prompt_bytes);
	in.artifact_len = (size_t)(data[4] | data[5] << 8);
	in.artifact_shown = in.artifact_len;
	limit = (data[6] | data[7] << 8) % 50000;
	if (llm_budget_fit(&in, limit, &out, &why) == 0) {
		if (out.max_tokens > in.max_tokens || out.max_tokens < 1 ||
		    out.artifact_shown > in.artifact_shown || why)
			__builtin_trap();
	} else if (!why) {
		__builtin_trap();
	}
	free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	const char *agent;
	json_t *in, *doc, *env;
	char *s, *msg;
	int stream;

	s = xstrndup((const char *)data, size);
	llm_parse_duration(s);
	free(s);
	fuzz_redact(data, size);
	fuzz_answer(data, size);
	fuzz_limits(data, size);
	fuzz_budget(data, size);
	/* The bytes as a body, read as JSON or as a stream. */
	env = llm_reply_envelope((const char *)data, size,
				 size && data[0] == 'd' ? "text/event-stream" : NULL, &stream,
				 &err);
	if (!env && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	doc = env ? llm_reply_document(env, 16000, &err) : NULL;
	if (env && !doc && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	json_decref(doc);
	json_decref(env);
	if (!(in = fuzz_json(data, size)))
		return 0;
	doc = llm_reply_document(in, 16000, &err);
	if (!doc && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	json_decref(doc);
	agent = json_string_value(json_object_get(in, "agent"));
	if (!agent || orch_agent_index(agent) < 0)
		agent = "builder";
	if (llm_context_check(in, agent, &err) == 0) {
		msg = llm_user_message(in, (size_t)size % 100);
		free(msg);
	}
	orch_error_release(&err);
	json_decref(in);
	return 0;
}
