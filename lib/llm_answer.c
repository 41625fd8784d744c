#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "llm.h"
#include "llm_answer.h"
#include "llm_reply.h"
#include "redact.h"
#include "xalloc.h"
#include "banned.h"

/* --- the error in a body ----------------------------------------------- */

/* A string member as a new string; a number as its decimal text; else NULL. */
static char *member_text(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return xstrndup(json_string_value(v), json_string_length(v));
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	return NULL;
}

/* An HTTP status the error gives as its numeric code, else 0. */
static long code_status(const json_t *obj)
{
	const json_t *v = json_object_get(obj, "code");
	json_int_t n = json_integer_value(v);

	return json_is_integer(v) && n >= 100 && n <= 599 ? (long)n : 0;
}

/* FastAPI's {"detail": [{"loc": ["body", "x", ...], "msg": ...}]}. */
static void read_detail(const json_t *detail, struct llm_error_info *e)
{
	const json_t *first = json_array_get(detail, 0), *loc;
	const char *field;

	if (json_is_string(detail)) {
		e->message = xstrndup(json_string_value(detail), json_string_length(detail));
		return;
	}
	e->message = member_text(first, "msg");
	e->type = member_text(first, "type");
	loc = json_object_get(first, "loc");
	field = json_string_value(json_array_get(loc, 0));
	if (field && strcmp(field, "body") == 0)
		field = json_string_value(json_array_get(loc, 1));
	if (field)
		e->param = xstrdup(field);
}

int llm_error_info_parse(const char *body, size_t len, struct llm_error_info *e)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	const json_t *v = doc, *err;
	char *words;

	memset(e, 0, sizeof(*e));
	if (json_is_array(v))
		v = json_array_get(v, 0);
	if (!json_is_object(v)) {
		json_decref(doc);
		return 0;
	}
	err = json_object_get(v, "error");
	if (json_is_object(err)) {
		if (!(e->message = member_text(err, "message")))
			e->message = member_text(err, "msg");
		if (!(e->type = member_text(err, "type")))
			e->type = member_text(err, "status");
		e->code = member_text(err, "code");
		e->param = member_text(err, "param");
		e->failed_generation = member_text(err, "failed_generation");
		e->status = code_status(err);
	} else if (json_is_string(err)) {
		/* {"error": "Bad Request", "message": "max_tokens is too large"} */
		e->type = member_text(v, "error");
		if ((words = member_text(v, "message"))) {
			e->message = xasprintf("%s: %s", e->type, words);
			free(words);
		} else {
			e->message = xstrdup(e->type);
		}
		e->status = code_status(v);
	} else if (json_object_get(v, "detail")) {
		read_detail(json_object_get(v, "detail"), e);
	} else if (json_is_string(json_object_get(v, "object")) &&
		   strcmp(json_string_value(json_object_get(v, "object")), "error") == 0) {
		e->message = member_text(v, "message");
		e->type = member_text(v, "type");
		e->code = member_text(v, "code");
		e->param = member_text(v, "param");
		e->status = code_status(v);
	} else {
		json_decref(doc);
		return 0;
	}
	json_decref(doc);
	return 1;
}

void llm_error_info_release(struct llm_error_info *e)
{
	free(e->message);
	free(e->type);
	free(e->code);
	free(e->param);
	free(e->failed_generation);
	memset(e, 0, sizeof(*e));
}

/* --- durations and waits ----------------------------------------------- */

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

int64_t llm_answer_wait(const struct http_response *r)
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
	if (r->status != 429)
		return -1;
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

/* A header's value as a count (0 included), or -1 when not one. */
static int64_t header_count(const struct http_response *r, const char *name)
{
	const char *v = http_response_header(r, name);
	char *end;
	long long n;

	if (!v || !isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	return !*end && !errno ? n : -1;
}

/* A header's value as a duration in ms, or -1. */
static int64_t header_duration(const struct http_response *r, const char *name)
{
	const char *v = http_response_header(r, name);

	return v ? llm_parse_duration(v) : -1;
}

int llm_answer_limits(const struct http_response *r, struct llm_limits *l)
{
	l->requests_limit = header_count(r, "x-ratelimit-limit-requests");
	l->requests_left = header_count(r, "x-ratelimit-remaining-requests");
	l->requests_reset_ms = header_duration(r, "x-ratelimit-reset-requests");
	l->tokens_limit = header_count(r, "x-ratelimit-limit-tokens");
	l->tokens_left = header_count(r, "x-ratelimit-remaining-tokens");
	l->tokens_reset_ms = header_duration(r, "x-ratelimit-reset-tokens");
	l->retry_after_ms = r->status == 429 ? llm_answer_wait(r) : -1;
	return l->requests_left >= 0 || l->tokens_left >= 0 || l->retry_after_ms >= 0;
}

/* --- deciding ---------------------------------------------------------- */

static int has(const char *s, const char *word)
{
	return s && strcasestr(s, word);
}

static int is(const char *s, const char *value)
{
	return s && strcasecmp(s, value) == 0;
}

static int starts(const char *s, const char *prefix)
{
	return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* The number after WORD in S ("Limit 12000", "Limit 12,000"), or 0. */
static int64_t number_after(const char *s, const char *word)
{
	const char *p = s ? strcasestr(s, word) : NULL;
	int64_t n = 0;

	if (!p)
		return 0;
	for (p += strlen(word); *p == ' ' || *p == ':'; p++)
		;
	for (; (isdigit((unsigned char)*p) || (*p == ',' && isdigit((unsigned char)p[1]))) &&
	       n < INT64_C(1000000000000); p++)
		if (*p != ',')
			n = n * 10 + (*p - '0');
	return n;
}

/* A header's value as a whole number of tokens, or 0. */
static int64_t header_number(const struct http_response *r, const char *name)
{
	const char *v = http_response_header(r, name);
	char *end;
	long long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtoll(v, &end, 10);
	return end != v && !*end && !errno && n > 0 ? n : 0;
}

/* The keywords of the schema a strict mode may refuse, by name. */
static int names_keyword(const char *m)
{
	static const char *const words[] = {
		"minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
		"pattern",
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (has(m, words[i]))
			return 1;
	return 0;
}

/* The next step down from CAPS after a refusal of the response format. */
static unsigned format_step(const char *m, unsigned caps)
{
	if (!(caps & LLM_CAP_NO_SCHEMA)) {
		if (!(caps & LLM_CAP_SCHEMA_PLAIN) && names_keyword(m))
			return LLM_CAP_SCHEMA_PLAIN;
		if (!(caps & LLM_CAP_NO_STRICT) && has(m, "strict"))
			return LLM_CAP_NO_STRICT;
		return LLM_CAP_NO_SCHEMA;
	}
	return caps & LLM_CAP_NO_OBJECT ? 0 : LLM_CAP_NO_OBJECT;
}

/*
 * The capability a 400 or 422 says the request used and the server does
 * not take, keyed on "param" (and the location of a 422), then "code",
 * then the wording; 0 when it says no such thing.
 */
static unsigned refused(const struct llm_error_info *e, unsigned caps)
{
	static const char *const format_words[] = {
		"response_format", "response format", "json_schema", "json_object",
		"json mode", "structured output", "response_schema",
	};
	const char *m = e->message;
	size_t i;

	if (starts(e->param, "max_tokens"))
		return caps & LLM_CAP_COMPLETION_TOKENS ? 0 : LLM_CAP_COMPLETION_TOKENS;
	if (starts(e->param, "temperature"))
		return caps & LLM_CAP_NO_TEMPERATURE ? 0 : LLM_CAP_NO_TEMPERATURE;
	if (starts(e->param, "response_format") || has(e->code, "response_format"))
		return format_step(m, caps);
	if (e->param && *e->param)
		return 0;
	/* No param: the wording, last. */
	if (has(m, "max_completion_tokens") && !(caps & LLM_CAP_COMPLETION_TOKENS))
		return LLM_CAP_COMPLETION_TOKENS;
	if (has(m, "temperature") && (has(m, "support") || has(m, "not allowed")) &&
	    !(caps & LLM_CAP_NO_TEMPERATURE))
		return LLM_CAP_NO_TEMPERATURE;
	for (i = 0; i < sizeof(format_words) / sizeof(format_words[0]); i++)
		if (has(m, format_words[i]))
			return format_step(m, caps);
	return 0;
}

/* A billing fault: no credit or quota, which waiting will not bring back. */
static int billing(const struct llm_error_info *e, long status, const struct http_response *r)
{
	if (status == 402 || is(e->code, "insufficient_quota") ||
	    is(e->type, "insufficient_quota") || is(e->code, "billing_hard_limit_reached"))
		return 1;
	if (status != 429 || llm_answer_wait(r) >= 0)
		return 0;
	return has(e->message, "exceeded your current quota") || has(e->message, "insufficient") ||
	       has(e->message, "credit") || has(e->message, "payment");
}

/* The server's words for REASON (new): keys hidden, bounded, one line. */
static char *words(const struct http_response *r, const struct llm_error_info *e,
		   const struct llm_asked *q)
{
	if (e->message && *e->message)
		return redact_text(e->message, strlen(e->message), q->keys, q->nkeys,
				   LLM_MESSAGE_MAX);
	if (r->len)
		return redact_text(r->body, r->len, q->keys, q->nkeys, LLM_MESSAGE_MAX);
	return xstrdup("no message");
}

/* Decide on an error answer: STATUS (the body's own for a 2xx), E. */
static void classify_error(const struct http_response *r, long status,
			   const struct llm_error_info *e, const struct llm_asked *q,
			   struct llm_verdict *v)
{
	char *said = words(r, e, q);
	int64_t limit, requested;

	if (r->status == status)
		v->reason = xasprintf("HTTP %ld: %s", status, said);
	else
		v->reason = xasprintf("HTTP %ld with an error: %s", r->status, said);
	free(said);
	v->next = LLM_NEXT_GIVE_UP;
	if (status == 401 || status == 403) {
		v->fault = LLM_FAULT_AUTH;
	} else if (billing(e, status, r)) {
		v->fault = LLM_FAULT_BILLING;
	} else if (status == 413 || status == 429) {
		/* "Limit 12000, Requested 14137": too large for the limit, which
		 * no wait cures. */
		limit = number_after(e->message, "Limit");
		requested = number_after(e->message, "Requested");
		if (!limit)
			limit = header_number(r, "x-ratelimit-limit-tokens");
		if (status == 413 || (limit && requested > limit) ||
		    (limit && has(e->message, "too large"))) {
			v->next = LLM_NEXT_SHRINK;
			v->limit = limit;
			v->requested = requested;
		} else {
			v->next = LLM_NEXT_RETRY;
		}
	} else if (status == 408 || status >= 500) {
		v->next = LLM_NEXT_RETRY;
	} else if (status == 400 || status == 422) {
		if (is(e->code, "json_validate_failed")) {
			v->next = LLM_NEXT_CORRECT;
			if (e->failed_generation)
				v->generation = xstrdup(e->failed_generation);
		} else if (is(e->code, "context_length_exceeded") ||
			   has(e->message, "maximum context length")) {
			v->next = LLM_NEXT_SHRINK;
			v->limit = number_after(e->message, "maximum context length is");
			v->requested = number_after(e->message, "you requested");
		} else if ((v->learn = refused(e, q->caps))) {
			v->next = LLM_NEXT_ADAPT;
		}
	}
	if (v->next == LLM_NEXT_RETRY)
		v->wait_ms = llm_answer_wait(r);
}

/* Decide on a 2xx answer. */
static void classify_success(const struct http_response *r, const struct llm_asked *q,
			     struct llm_verdict *v)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct llm_error_info e;
	const json_t *choice;
	char *said;

	v->envelope = llm_reply_envelope(r->body, r->len,
					 http_response_header(r, "content-type"), &v->stream,
					 &err);
	choice = json_array_get(json_object_get(v->envelope, "choices"), 0);
	if (json_is_object(json_object_get(choice, "message"))) {
		v->next = LLM_NEXT_REPLY;
	} else if (!v->envelope && v->stream) {
		said = redact_text(err.msg, strlen(err.msg), q->keys, q->nkeys, LLM_MESSAGE_MAX);
		v->next = LLM_NEXT_GIVE_UP;
		v->fault = LLM_FAULT_STREAM;
		v->reason = xasprintf("an event stream came back, though none was asked for,"
				      " and %s; not asking again, which would be billed again",
				      said);
		free(said);
	} else if (llm_error_info_parse(r->body, r->len, &e)) {
		/* A 200 that carries an error: the error's own code decides. */
		classify_error(r, e.status >= 400 ? e.status : 500, &e, q, v);
		llm_error_info_release(&e);
	} else {
		v->next = LLM_NEXT_RETRY;
		v->reason = v->envelope ? xstrdup("the response has no choices[0].message")
			: redact_text(err.msg, strlen(err.msg), q->keys, q->nkeys, LLM_MESSAGE_MAX);
	}
	if (v->next != LLM_NEXT_REPLY) {
		json_decref(v->envelope);
		v->envelope = NULL;
	}
	orch_error_release(&err);
}

void llm_answer_classify(const struct http_response *r, const char *failure,
			 const struct llm_asked *q, struct llm_verdict *v)
{
	struct llm_error_info e;

	memset(v, 0, sizeof(*v));
	v->wait_ms = -1;
	if (r->failure != HTTP_FAIL_NONE) {
		v->reason = redact_text(failure ? failure : "no response",
					strlen(failure ? failure : "no response"), q->keys,
					q->nkeys, 0);
		v->next = r->failure == HTTP_FAIL_TOO_BIG || r->failure == HTTP_FAIL_OTHER
			? LLM_NEXT_GIVE_UP : LLM_NEXT_RETRY;
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		classify_success(r, q, v);
		return;
	}
	llm_error_info_parse(r->body, r->len, &e);
	classify_error(r, r->status, &e, q, v);
	llm_error_info_release(&e);
}

void llm_verdict_release(struct llm_verdict *v)
{
	free(v->reason);
	free(v->generation);
	json_decref(v->envelope);
	memset(v, 0, sizeof(*v));
}
