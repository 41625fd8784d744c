/*
 * The turn: providers in order, at each one request after another, what
 * each answer means decided by llm_answer_classify() and done here, with
 * the waits, the deadline and the log. Settings, prompts and the context
 * are in llm_setup.c, the request in llm_request.c, the reply in
 * llm_reply.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "llm.h"
#include "llm_answer.h"
#include "llm_reply.h"
#include "llm_request.h"
#include "orch.h"
#include "quota.h"
#include "redact.h"
#include "xalloc.h"
#include "banned.h"

/* Why a provider gave up. */
enum give_up {
	GIVE_UP_FAILED,   /* unreachable, errors, limits: try the next */
	GIVE_UP_INVALID,  /* kept replying with invalid documents: the next */
	GIVE_UP_DEADLINE, /* out of time: stop */
	GIVE_UP_CASSETTE, /* no recording, or the cassette cannot be written:
			     stop, with the cassette's status */
};

/* Where a turn stands between two steps. */
enum turn_state {
	TURN_PROVIDER, /* to begin at the next provider, or end */
	TURN_ASK,      /* to send the talk's next request, once wake_at is past */
	TURN_FLIGHT,   /* its request is on the pool */
	TURN_DONE,     /* doc, or err */
};

/* The conversation with one provider. */
struct talk {
	struct llm_provider *pv;   /* borrowed, from turn.p */
	json_t *messages;          /* owned: system, user, and after a
				      corrective round its two */
	struct llm_budget budget;  /* the ceiling and the artifact shown */
	int shrunk;                /* a smaller budget was asked for */
	int round;                 /* 1 in the corrective round */
	int attempt;               /* retries used in this round */
	int sent;                  /* the last request was sent */
	int64_t sent_at;           /* wall-clock ms it was sent */
	int64_t sent_mono;         /* monotonic ms it was sent */
	int sent_round;            /* round and attempt when it was sent */
	int sent_retry;
	int64_t timeout_ms;        /* the timeout it was sent with */
	char *url;                 /* owned while it is under way */
	char *body;                /* owned while it is under way */
	int64_t held_ms;           /* the shared quota held the request back
				      longer than the deadline: its wait, else -1 */
	int64_t quota_waited;      /* ms waited for the shared quota so far */
};

/* One turn across the providers. */
struct llm_turn {
	const struct llm_options *o;   /* borrowed */
	struct llm_providers *p;       /* borrowed: what is learned goes there */
	const json_t *ctx;             /* borrowed: the orch.context */
	const char **keys;             /* owned array of the providers' keys
					  (borrowed strings): redacted */
	struct http_client http;       /* owned; on the caller's pool or its own */
	enum turn_state state;
	size_t at;                     /* the provider being tried */
	struct talk k;                 /* the conversation with it */
	struct http_response resp;     /* its last answer */
	enum give_up why;              /* why the last provider gave up */
	json_t *doc;                   /* owned: the document, once had */
	struct orch_error err;         /* why the last provider gave up */
	int64_t wake_at;               /* monotonic ms the next request may go */
	int64_t start;                 /* monotonic ms at the start */
	int64_t deadline_at;           /* monotonic ms of the deadline */
	uint64_t rng;                  /* jitter state */
	int64_t prompt_tokens;         /* summed over every reply */
	int64_t completion_tokens;     /* summed over every reply */
	int requests;                  /* requests sent so far */
	int quota_failed;              /* the shared quota's store failed: not
					  asked again this turn */
};


/* S with every part of a provider key replaced by "[redacted]" (new string). */
static char *redact(const struct llm_turn *t, const char *s)
{
	return redact_text(s, strlen(s), t->keys, t->p->n, 0);
}

static void logline(struct llm_turn *t, enum llm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logline(struct llm_turn *t, enum llm_log_level level, const char *fmt, ...)
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

static uint64_t next_random(struct llm_turn *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

/* The backoff before retry number ATTEMPT (from 0): half fixed, half jitter. */
static int64_t backoff(struct llm_turn *t, int attempt)
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

/*
 * The wait before retry ATTEMPT when the server asked for SERVER ms (-1:
 * it did not): never less than the first backoff, so a wait of a few ms
 * does not burn a retry, and up to a fifth more, so agents the same limit
 * stopped do not all come back at once. *ASKED is the wait without the
 * jitter, for messages.
 */
static int64_t wait_for(struct llm_turn *t, int64_t server, int attempt, int64_t *asked)
{
	if (server < 0)
		return *asked = backoff(t, attempt);
	if (server < t->o->backoff_ms)
		server = t->o->backoff_ms;
	*asked = server;
	return server + (int64_t)(next_random(t) % (uint64_t)(server / 5 + 1));
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int deadline_passed(struct llm_turn *t, struct orch_error *err)
{
	return orch_error_set(err, ORCH_EX_UNAVAILABLE, "deadline of %lld ms passed",
			      (long long)t->o->deadline_ms);
}

/* What asking differently for CAP is, for the log. */
static const char *asking_instead(unsigned cap)
{
	switch (cap) {
	case LLM_CAP_SCHEMA_PLAIN:
		return "with the schema's limits said in its descriptions only";
	case LLM_CAP_NO_STRICT:
		return "with \"strict\": false";
	case LLM_CAP_NO_SCHEMA:
		return "for a json_object instead";
	case LLM_CAP_NO_OBJECT:
		return "with no response_format, the prompt alone";
	case LLM_CAP_NO_TEMPERATURE:
		return "without a temperature";
	case LLM_CAP_COMPLETION_TOKENS:
		return "with max_completion_tokens instead of max_tokens";
	}
	return "differently";
}

/* --- the conversation -------------------------------------------------- */

/* Set K's user message for its budget's artifact, and the prompt's size. */
static void set_user(struct llm_turn *t, struct talk *k)
{
	char *user = llm_user_message(t->ctx, k->budget.artifact_shown);

	json_array_set_new(k->messages, 1, xjson(json_pack("{s:s,s:s}", "role", "user",
							    "content", user)));
	k->budget.prompt_bytes = strlen(t->o->system_prompt) + strlen(user);
	free(user);
}

/*
 * The context's "tokens_left" (a token budget's, budget.h) as K's ceiling:
 * the reply gets what the prompt leaves of it, but never less than
 * BUDGET_FLOOR tokens, room for a short reply, so a run may overshoot a
 * budget by that and the prompt estimate's error at most.
 */
#define BUDGET_FLOOR 256

static void cap_to_budget(const struct llm_turn *t, struct talk *k)
{
	const json_t *left = json_object_get(t->ctx, "tokens_left");
	int64_t cap;

	if (!json_is_integer(left))
		return;
	cap = json_integer_value(left) - llm_prompt_tokens(k->budget.prompt_bytes);
	if (cap < BUDGET_FLOOR)
		cap = BUDGET_FLOOR;
	if (cap < k->budget.max_tokens)
		k->budget.max_tokens = cap;
}

static void talk_init(struct llm_turn *t, struct talk *k, struct llm_provider *pv)
{
	memset(k, 0, sizeof(*k));
	k->pv = pv;
	k->held_ms = -1;
	k->budget.max_tokens = pv->max_tokens;
	k->budget.artifact_len = llm_artifact_length(t->ctx);
	k->budget.artifact_shown = t->o->artifact_chars;
	k->messages = xjson(json_pack("[{s:s,s:s},{}]", "role", "system", "content",
				      t->o->system_prompt));
	set_user(t, k);
	cap_to_budget(t, k);
}

/*
 * Lower K's budget under LIMIT tokens (0: unknown), the server having
 * counted the request at REQUESTED (0: unknown). 0, or -1 with *WHY (new).
 */
static int shrink(struct llm_turn *t, struct talk *k, int64_t limit, int64_t requested,
		  char **why)
{
	struct llm_budget in = k->budget, out;
	size_t shown = in.artifact_shown < in.artifact_len ? in.artifact_shown : in.artifact_len;

	in.artifact_shown = shown;
	in.prompt_tokens = requested > in.max_tokens ? requested - in.max_tokens
		: llm_prompt_tokens(in.prompt_bytes);
	if (llm_budget_fit(&in, limit, &out, why) != 0)
		return -1;
	logline(t, LLM_LOG_TRACE, "%s: asking with a ceiling of %lld tokens (was %lld)%s",
		k->pv->name, (long long)out.max_tokens, (long long)in.max_tokens,
		out.artifact_shown < shown ? " and less of the artifact" : "");
	if (out.artifact_shown < shown) {
		k->budget.artifact_shown = out.artifact_shown;
		set_user(t, k);
	}
	k->budget.max_tokens = out.max_tokens;
	return 0;
}

/*
 * The corrective round: REPLY (what the model wrote, or NULL) and what is
 * wrong with it (WRONG) fed back. 0, or -1 when the round was had.
 */
static int correct(struct llm_turn *t, struct talk *k, const char *reply, const char *wrong)
{
	char *note;

	logline(t, LLM_LOG_TRACE, "%s: %s%s", k->pv->name, wrong,
		k->round ? "" : "; asking once more");
	if (k->round)
		return -1;
	note = xasprintf("Your reply was not a valid actions document: %s."
			 " Reply again with only one JSON object"
			 " {\"thinking\": \"...\", \"actions\": [...]} using only"
			 " the action types and fields of the system prompt.", wrong);
	xjson_append(k->messages, xjson(json_pack("{s:s,s:s}", "role", "assistant",
						  "content", reply ? reply : "")));
	xjson_append(k->messages, xjson(json_pack("{s:s,s:s}", "role", "user",
						  "content", note)));
	free(note);
	k->round = 1;
	k->attempt = 0;
	return 0;
}

static void add_usage(struct llm_turn *t, const json_t *envelope)
{
	const json_t *u = json_object_get(envelope, "usage");
	json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
	json_int_t c = json_integer_value(json_object_get(u, "completion_tokens"));

	if (p > 0)
		t->prompt_tokens += p;
	if (c > 0)
		t->completion_tokens += c;
}

/* DOC with its "usage" for the reply ENVELOPE from K. */
static void set_usage(struct llm_turn *t, struct talk *k, json_t *doc, const json_t *envelope)
{
	const char *model = json_string_value(json_object_get(envelope, "model"));

	xjson_set(doc, "usage", xjson(json_pack("{s:I,s:I,s:s,s:s,s:I}",
		"prompt_tokens", (json_int_t)t->prompt_tokens,
		"completion_tokens", (json_int_t)t->completion_tokens,
		"model", model && *model ? model : k->pv->model,
		"provider", k->pv->name,
		"latency_ms", (json_int_t)(orch_mono_ms() - t->start))));
}

/* --- one provider ------------------------------------------------------ */

/*
 * K's turn at the shared quota (quota.h): 0 when it may send, its share
 * reserved; 1 when it must wait first (T's wake_at set); -1 with ERR and
 * K's held_ms when the wait would pass the deadline. A store that fails is
 * said with -v and not asked again this turn.
 */
static int take_turn(struct llm_turn *t, struct talk *k, struct orch_error *err)
{
	struct orch_error qerr = ORCH_ERROR_INIT;
	int64_t tokens = llm_prompt_tokens(k->budget.prompt_bytes) + k->budget.max_tokens;
	int64_t wait;

	wait = quota_take(t->o->quota, k->pv->base_url, k->pv->key, tokens, orch_now_ms(), &qerr);
	if (wait > 0) {
		orch_error_release(&qerr);
		if (orch_mono_ms() + wait >= t->deadline_at) {
			k->held_ms = wait;
			return orch_error_set(err, ORCH_EX_UNAVAILABLE, "the rate limit shared"
					      " through the store is reached; the next"
					      " request in %lld ms would pass the deadline",
					      (long long)wait);
		}
		if (!k->quota_waited || wait > QUOTA_POLL_MS)
			logline(t, LLM_LOG_TRACE, "%s: the rate limit is reached; waiting"
				" %lld ms for a turn", k->pv->name, (long long)wait);
		k->quota_waited += wait;
		t->wake_at = orch_mono_ms() + wait;
		return 1;
	}
	if (wait < 0) {
		/* One busy timeout a turn, not one a request. */
		t->quota_failed = 1;
		logline(t, LLM_LOG_TRACE, "%s: the rate limit is not shared: %s", k->pv->name,
			qerr.msg);
	} else if (k->quota_waited) {
		logline(t, LLM_LOG_TRACE, "%s: a turn after %lld ms", k->pv->name,
			(long long)k->quota_waited);
	}
	k->quota_waited = 0;
	orch_error_release(&qerr);
	return 0;
}

/*
 * Write back what RESP (or its failure: nothing) says of K's provider's
 * limits to the shared quota.
 */
static void learn_limits(struct llm_turn *t, struct talk *k, const struct http_response *resp)
{
	struct orch_error qerr = ORCH_ERROR_INIT;
	struct llm_limits l;
	int said = llm_answer_limits(resp, &l);

	if (quota_learn(t->o->quota, k->pv->base_url, k->pv->key, &l, said, orch_now_ms(),
			&qerr) != 0) {
		t->quota_failed = 1;
		logline(t, LLM_LOG_TRACE, "%s: the rate limit is not shared: %s", k->pv->name,
			qerr.msg);
	}
	orch_error_release(&qerr);
}

/*
 * Send K's next request: 0 when it is on its way, 1 when it must wait
 * for the shared quota first (T's wake_at set), -1 with ERR when out of
 * time.
 */
static int ask_start(struct llm_turn *t, struct talk *k, struct orch_error *err)
{
	struct llm_request rq = { k->pv->model, k->messages, t->o->temperature,
				  k->budget.max_tokens, k->pv->caps };
	int64_t left = t->deadline_at - orch_mono_ms();
	size_t len;
	int rc;

	if (left <= 0)
		return deadline_passed(t, err);
	if (t->o->quota && !t->quota_failed && (rc = take_turn(t, k, err)) != 0)
		return rc;
	if ((left = t->deadline_at - orch_mono_ms()) <= 0)
		return deadline_passed(t, err);
	k->timeout_ms = t->o->timeout_ms < left ? t->o->timeout_ms : left;
	k->url = xasprintf("%s/chat/completions", k->pv->base_url);
	k->body = llm_request_body(&rq, &len);
	k->sent = 1;
	k->sent_at = orch_now_ms();
	k->sent_mono = orch_mono_ms();
	k->sent_round = k->round;
	k->sent_retry = k->attempt;
	t->requests++;
	http_post_start(&t->http, k->url, k->pv->key, k->body, len, k->timeout_ms, &t->resp);
	return 0;
}

/*
 * K's request has ended: its answer in T's resp, a failure's message in
 * HERR. -1 with ERR when out of time, or when the cassette says stop
 * (*STOP set).
 */
static int ask_end(struct llm_turn *t, struct talk *k, struct orch_error *herr, int *stop,
		   struct orch_error *err)
{
	struct http_response *resp = &t->resp;
	int rc = 0;

	orch_error_release(herr);
	/* A request the deadline cut short says so, not "timed out". */
	if (http_post_finish(&t->http, herr) != 0 && resp->failure == HTTP_FAIL_TIMEOUT &&
	    k->timeout_ms < t->o->timeout_ms)
		rc = deadline_passed(t, err);
	/* No answer says no limits: a first request's failure frees the
	 * processes waiting for what it would have said. */
	if (t->o->quota && !t->quota_failed && resp->failure != HTTP_FAIL_CASSETTE)
		learn_limits(t, k, resp);
	if (resp->failure == HTTP_FAIL_CASSETTE) {
		*stop = 1;
		rc = orch_error_set(err, herr->status, "%s", herr->msg);
	}
	free(k->body);
	free(k->url);
	k->body = k->url = NULL;
	return rc;
}

/* What a fault adds to the reason a provider was given up for (new). */
static char *fault_reason(const struct llm_provider *pv, const struct llm_verdict *v)
{
	switch (v->fault) {
	case LLM_FAULT_AUTH:
		return xasprintf("%s (the key was refused: check %s)", v->reason, pv->key_from);
	case LLM_FAULT_BILLING:
		return xasprintf("%s (billing: no credit or quota left)", v->reason);
	default:
		return xstrdup(v->reason);
	}
}

/*
 * Act on V at K. Returns 1 to ask again, 0 with *DOC when done, -1 with
 * ERR and *WHY when the provider is given up.
 */
static int act(struct llm_turn *t, struct talk *k, struct llm_verdict *v, json_t **doc,
	       enum give_up *why, struct orch_error *err)
{
	struct orch_error verr = ORCH_ERROR_INIT;
	char *text, *reason = NULL;
	int64_t wait, asked;
	int rc = -1;

	*why = GIVE_UP_FAILED;
	k->pv->busy = 0;
	k->pv->wait_ms = -1;
	switch (v->next) {
	case LLM_NEXT_REPLY:
		add_usage(t, v->envelope);
		if ((*doc = llm_reply_document(v->envelope, k->budget.max_tokens, &verr))) {
			set_usage(t, k, *doc, v->envelope);
			rc = 0;
			break;
		}
		text = llm_reply_text(v->envelope);
		rc = correct(t, k, text, verr.msg) == 0 ? 1 : -1;
		free(text);
		if (rc < 0) {
			*why = GIVE_UP_INVALID;
			orch_error_set(err, ORCH_EX_DATAERR, "the reply is not a valid actions"
				       " document, even after a retry: %s", verr.msg);
		}
		break;
	case LLM_NEXT_CORRECT:
		rc = correct(t, k, v->generation, v->reason) == 0 ? 1 : -1;
		if (rc < 0) {
			*why = GIVE_UP_INVALID;
			orch_error_set(err, ORCH_EX_DATAERR, "the reply is not a valid actions"
				       " document, even after a retry: %s", v->reason);
		}
		break;
	case LLM_NEXT_ADAPT:
		k->pv->caps |= v->learn;
		k->pv->learned |= v->learn;
		logline(t, LLM_LOG_TRACE, "%s: %s; asking again %s", k->pv->name, v->reason,
			asking_instead(v->learn));
		rc = 1;
		break;
	case LLM_NEXT_SHRINK:
		if (k->shrunk) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s (a smaller request was"
				       " refused too)", v->reason);
		} else if (shrink(t, k, v->limit, v->requested, &reason) != 0) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s; %s", v->reason, reason);
		} else {
			k->shrunk = 1;
			if (v->limit > 0) {
				k->pv->token_limit = v->limit;
				k->pv->limit_learned = 1;
			}
			rc = 1;
		}
		break;
	case LLM_NEXT_RETRY:
		/* Given up below, it is for now: the retry contract's 75. */
		k->pv->busy = 1;
		k->pv->wait_ms = v->wait_ms;
		if (k->attempt >= t->o->retries) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE, "gave up after %d attempt%s: %s",
				       k->attempt + 1, k->attempt ? "s" : "", v->reason);
			break;
		}
		wait = wait_for(t, v->wait_ms, k->attempt, &asked);
		if (orch_mono_ms() + wait >= t->deadline_at) {
			orch_error_set(err, ORCH_EX_UNAVAILABLE,
				       "%s; waiting %lld ms more would pass the deadline",
				       v->reason, (long long)asked);
			break;
		}
		k->attempt++;
		logline(t, LLM_LOG_TRACE, "%s: %s; retry %d of %lld in %lld ms", k->pv->name,
			v->reason, k->attempt, (long long)t->o->retries, (long long)wait);
		t->wake_at = orch_mono_ms() + wait;
		rc = 1;
		break;
	case LLM_NEXT_GIVE_UP:
		reason = fault_reason(k->pv, v);
		orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s", reason);
		break;
	}
	free(reason);
	orch_error_release(&verr);
	return rc;
}

/*
 * Start K from what is known of its provider: the caps say themselves in
 * the request; a token limit already learned lowers the budget now rather
 * than after a refusal.
 */
static void from_known(struct llm_turn *t, struct talk *k)
{
	struct llm_provider *pv = k->pv;
	char *why = NULL;
	size_t i;

	for (i = 0; i < LLM_CAP_COUNT; i++)
		if (pv->caps & (1u << i))
			logline(t, LLM_LOG_TRACE, "%s: known: %s; asking %s", pv->name,
				llm_cap_name(1u << i), asking_instead(1u << i));
	if (pv->token_limit <= 0 ||
	    llm_prompt_tokens(k->budget.prompt_bytes) + k->budget.max_tokens <=
	    pv->token_limit - pv->token_limit / 20)
		return;
	logline(t, LLM_LOG_TRACE, "%s: known: requests may reserve %lld tokens", pv->name,
		(long long)pv->token_limit);
	/* Not the one retry smaller a refusal gets: that is still to come. */
	shrink(t, k, pv->token_limit, 0, &why);
	free(why);
}

/* The count NAME of the usage object U, or -1 when it has none. */
static int64_t usage_count(const json_t *u, const char *name)
{
	const json_t *v = json_object_get(u, name);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

/*
 * Tell the caller about K's last request, answered by RESP and read as V;
 * ROUND and RETRY where it stood when sent, RC what act() made of it.
 */
static void record(struct llm_turn *t, struct talk *k, const struct http_response *resp,
		   const struct llm_verdict *v, int round, int retry, int rc)
{
	static const char *const outcomes[] = {
		[LLM_NEXT_REPLY] = "reply", [LLM_NEXT_RETRY] = "retry",
		[LLM_NEXT_ADAPT] = "adapt", [LLM_NEXT_SHRINK] = "shrink",
		[LLM_NEXT_CORRECT] = "invalid", [LLM_NEXT_GIVE_UP] = "failed",
	};
	struct llm_request_record r;
	json_t *parsed = NULL;
	const json_t *u = NULL, *details;
	const char *model = NULL;

	if (!t->o->on_request || !k->sent)
		return;
	memset(&r, 0, sizeof(r));
	if (v && v->envelope) {
		u = json_object_get(v->envelope, "usage");
		model = json_string_value(json_object_get(v->envelope, "model"));
	} else if (resp->body && resp->len && resp->failure == HTTP_FAIL_NONE &&
		   (parsed = json_loadb(resp->body, resp->len, 0, NULL))) {
		/* An error may say what it cost too. */
		u = json_object_get(parsed, "usage");
	}
	details = json_object_get(u, "prompt_tokens_details");
	r.provider = k->pv->name;
	r.base_url = k->pv->base_url;
	r.model = model && *model ? model : k->pv->model;
	r.http_status = resp->failure == HTTP_FAIL_NONE ? resp->status : 0;
	r.outcome = !v ? "failed" : v->next == LLM_NEXT_REPLY && rc != 0 ? "invalid"
		: v->next == LLM_NEXT_RETRY && rc < 0 ? "failed" : outcomes[v->next];
	r.started_at = k->sent_at;
	r.duration_ms = orch_mono_ms() - k->sent_mono;
	r.seq = t->requests;
	r.round = round;
	r.retry = retry;
	r.prompt_tokens = json_is_object(u) ? usage_count(u, "prompt_tokens") : -1;
	r.completion_tokens = json_is_object(u) ? usage_count(u, "completion_tokens") : -1;
	r.cached_tokens = json_is_object(details) ? usage_count(details, "cached_tokens") : -1;
	t->o->on_request(t->o->request_arg, &r);
	json_decref(parsed);
	k->sent = 0;
}

int64_t llm_providers_wait(const struct llm_providers *p)
{
	int64_t wait = -1;
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (!p->v[i].busy)
			continue;
		if (p->v[i].wait_ms < 0)
			return -1;
		if (wait < 0 || p->v[i].wait_ms < wait)
			wait = p->v[i].wait_ms;
	}
	return wait;
}

/* --- the turn, step by step ------------------------------------------- */

/* The provider T is at has given up: on to the next, unless it said stop. */
static void provider_over(struct llm_turn *t)
{
	struct llm_provider *pv = &t->p->v[t->at];

	json_decref(t->k.messages);
	t->k.messages = NULL;
	http_response_release(&t->resp);
	orch_error_prefix(&t->err, "%s", pv->name);
	t->state = TURN_PROVIDER;
	if (t->why == GIVE_UP_DEADLINE || t->why == GIVE_UP_CASSETTE) {
		t->state = TURN_DONE;
		return;
	}
	if (t->at + 1 < t->p->n)
		logline(t, LLM_LOG_WARN, "%s; trying %s", t->err.msg, t->p->v[t->at + 1].name);
	t->at++;
}

/* Begin at provider T->at, or end when none is left. */
static void provider_begin(struct llm_turn *t)
{
	struct llm_provider *pv;

	if (t->at >= t->p->n) {
		t->state = TURN_DONE;
		return;
	}
	pv = &t->p->v[t->at];
	logline(t, LLM_LOG_TRACE, "provider %zu of %zu: %s, model %s", t->at + 1, t->p->n,
		pv->name, pv->model);
	pv->busy = 0;
	pv->wait_ms = -1;
	if (!pv->key) {
		t->why = GIVE_UP_FAILED;
		orch_error_set(&t->err, ORCH_EX_UNAVAILABLE, "no API key: set %s", pv->key_from);
		orch_error_prefix(&t->err, "%s", pv->name);
		if (t->at + 1 < t->p->n)
			logline(t, LLM_LOG_WARN, "%s; trying %s", t->err.msg,
				t->p->v[t->at + 1].name);
		t->at++;
		return;
	}
	talk_init(t, &t->k, pv);
	from_known(t, &t->k);
	t->wake_at = 0;
	t->state = TURN_ASK;
}

/* The request of T's talk could not be sent, or was cut short. */
static void ask_failed(struct llm_turn *t, int stop)
{
	struct talk *k = &t->k;

	/* Cut short by the deadline: it was sent all the same. A cassette
	 * that stopped the turn sent nothing. */
	if (!stop)
		record(t, k, &t->resp, NULL, k->sent_round, k->sent_retry, -1);
	/* Held back by the quota: the next provider has its own. */
	t->why = stop ? GIVE_UP_CASSETTE : k->held_ms >= 0 ? GIVE_UP_FAILED : GIVE_UP_DEADLINE;
	k->pv->busy = !stop;
	k->pv->wait_ms = k->held_ms;
	provider_over(t);
}

/* What T's answer means, done: the next request, the document, or the
 * next provider. */
static void answered(struct llm_turn *t)
{
	struct orch_error herr = ORCH_ERROR_INIT;
	struct llm_asked q = { 0, t->keys, t->p->n };
	struct talk *k = &t->k;
	struct llm_verdict v;
	int rc, stop = 0;

	if (ask_end(t, k, &herr, &stop, &t->err) != 0) {
		orch_error_release(&herr);
		ask_failed(t, stop);
		return;
	}
	q.caps = k->pv->caps;
	llm_answer_classify(&t->resp, herr.msg, &q, &v);
	rc = act(t, k, &v, &t->doc, &t->why, &t->err);
	record(t, k, &t->resp, &v, k->sent_round, k->sent_retry, rc);
	llm_verdict_release(&v);
	orch_error_release(&herr);
	if (rc == 1) {
		t->state = TURN_ASK;
	} else if (rc == 0) {
		json_decref(k->messages);
		k->messages = NULL;
		t->state = TURN_DONE;
	} else {
		provider_over(t);
	}
}

int llm_turn_step(struct llm_turn *t, int64_t *wake_at)
{
	int rc;

	*wake_at = -1;
	for (;;) {
		switch (t->state) {
		case TURN_PROVIDER:
			provider_begin(t);
			break;
		case TURN_ASK:
			if (t->wake_at > orch_mono_ms()) {
				*wake_at = t->wake_at;
				return 1;
			}
			t->wake_at = 0;
			if ((rc = ask_start(t, &t->k, &t->err)) == 0)
				t->state = TURN_FLIGHT;
			else if (rc < 0)
				ask_failed(t, 0);
			break;
		case TURN_FLIGHT:
			if (!http_post_done(&t->http))
				return 1;
			answered(t);
			break;
		case TURN_DONE:
			return 0;
		}
	}
}

struct llm_turn *llm_turn_new(const struct llm_options *o, struct llm_providers *p,
			      const json_t *ctx, struct http_pool *pool,
			      struct orch_error *err)
{
	struct llm_turn *t = xcalloc(1, sizeof(*t));
	size_t i;

	t->o = o;
	t->p = p;
	t->ctx = ctx;
	t->start = orch_mono_ms();
	t->deadline_at = t->start + o->deadline_ms;
	t->keys = xcalloc(p->n ? p->n : 1, sizeof(*t->keys));
	for (i = 0; i < p->n; i++)
		t->keys[i] = p->v[i].key;
	/* Turns of one process that start in the same millisecond draw
	 * their own jitter all the same. */
	t->rng = ((uint64_t)orch_now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)t->start ^
		 (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ULL;
	if (!t->rng)
		t->rng = 1;
	if (http_client_init(&t->http, pool, o->max_response, err) != 0) {
		free(t->keys);
		free(t);
		return NULL;
	}
	t->http.connect_timeout_ms = o->connect_timeout_ms;
	t->http.ca_file = o->ca_file;
	t->http.cassette = o->cassette;
	t->http.faults = o->faults;
	if (o->log) {
		t->http.trace = on_http_trace;
		t->http.trace_arg = t;
	}
	t->state = TURN_PROVIDER;
	return t;
}

void llm_turn_free(struct llm_turn *t)
{
	if (!t)
		return;
	http_client_release(&t->http);
	http_response_release(&t->resp);
	json_decref(t->k.messages);
	free(t->k.body);
	free(t->k.url);
	json_decref(t->doc);
	orch_error_release(&t->err);
	free(t->keys);
	free(t);
}

json_t *llm_turn_end(struct llm_turn *t, struct orch_error *err)
{
	json_t *doc = t->doc;
	size_t i;
	char *clean;

	t->doc = NULL;
	for (i = 0; i < t->p->n && !t->p->v[i].busy; i++)
		;
	if (!doc && t->err.msg) {
		if (t->why != GIVE_UP_CASSETTE)
			t->err.status = i < t->p->n ? ORCH_EX_TEMPFAIL
				: t->why == GIVE_UP_INVALID ? ORCH_EX_DATAERR : ORCH_EX_UNAVAILABLE;
		clean = redact(t, t->err.msg);
		orch_error_set(err, t->err.status, "%s", clean);
		free(clean);
	} else if (!doc) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "the turn ended without a reply");
	}
	llm_turn_free(t);
	return doc;
}

json_t *llm_run(const struct llm_options *o, struct llm_providers *p,
		const json_t *ctx, struct orch_error *err)
{
	struct llm_turn *t = llm_turn_new(o, p, ctx, NULL, err);
	struct http_pool *pool;
	int64_t wake, now;

	if (!t)
		return NULL;
	pool = t->http.pool;
	while (llm_turn_step(t, &wake)) {
		now = orch_mono_ms();
		if (wake >= 0) {
			if (wake > now)
				sleep_ms(wake - now);
			continue;
		}
		if (http_pool_wait(pool, NULL, 0, -1) != 0 && errno != EINTR) {
			orch_error_set(err, ORCH_EX_SOFTWARE, "waiting for the response: %s",
				       strerror(errno));
			llm_turn_free(t);
			return NULL;
		}
		http_pool_work(pool);
	}
	return llm_turn_end(t, err);
}
