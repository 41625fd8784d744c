#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "actions.h"
#include "llm.h"
#include "llm_reply.h"
#include "orch.h"
#include "redact.h"
#include "strbuf.h"
#include "xalloc.h"
#include "banned.h"

#define MAX_OBJECT_TRIES 8 /* '{' tried in prose before giving up on it */

static void text_add_json(struct strbuf *t, const json_t *v)
{
	if (json_is_string(v))
		strbuf_add(t, json_string_value(v), json_string_length(v));
}

/* --- the envelope ------------------------------------------------------ */

static int is_stream(const char *body, size_t len, const char *content_type)
{
	size_t i = 0;

	if (content_type && strncasecmp(content_type, "text/event-stream", 17) == 0)
		return 1;
	while (i < len && isspace((unsigned char)body[i]))
		i++;
	return (len - i >= 5 && strncmp(body + i, "data:", 5) == 0) ||
	       (len - i >= 6 && strncmp(body + i, "event:", 6) == 0) ||
	       (len - i >= 1 && body[i] == ':');
}

/* What the chunks of a stream add up to. */
struct stream {
	struct strbuf content;   /* delta.content, or message.content, joined */
	struct strbuf reasoning; /* delta.reasoning or reasoning_content */
	struct strbuf refusal;   /* delta.refusal */
	json_t *model;         /* owned: the first chunk's model */
	json_t *usage;         /* owned: the last usage seen */
	json_t *finish;        /* owned: the last finish_reason seen */
	int choices;           /* chunks that carried a choice */
};

/* Add one chunk (a parsed "data:" line) to S; -1 with ERR for an error. */
static int stream_chunk(struct stream *s, const json_t *chunk, struct orch_error *err)
{
	const json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
	const json_t *delta = json_object_get(choice, "delta"), *e;
	const char *msg;

	if ((e = json_object_get(chunk, "error"))) {
		msg = json_string_value(json_object_get(e, "message"));
		if (!msg)
			msg = json_is_string(e) ? json_string_value(e) : "no message";
		return orch_error_set(err, ORCH_EX_DATAERR, "the event stream carries an error: %s",
				      msg);
	}
	if (!s->model && json_is_string(json_object_get(chunk, "model")))
		s->model = json_incref(json_object_get(chunk, "model"));
	if (json_is_object(json_object_get(chunk, "usage"))) {
		json_decref(s->usage);
		s->usage = json_incref(json_object_get(chunk, "usage"));
	}
	if (!json_is_object(choice))
		return 0;
	s->choices++;
	if (!json_is_object(delta))
		delta = json_object_get(choice, "message");
	text_add_json(&s->content, json_object_get(delta, "content"));
	text_add_json(&s->reasoning, json_object_get(delta, "reasoning"));
	text_add_json(&s->reasoning, json_object_get(delta, "reasoning_content"));
	text_add_json(&s->refusal, json_object_get(delta, "refusal"));
	if (json_is_string(json_object_get(choice, "finish_reason"))) {
		json_decref(s->finish);
		s->finish = json_incref(json_object_get(choice, "finish_reason"));
	}
	return 0;
}

/* The envelope the stream S stands for (new). */
static json_t *stream_envelope(struct stream *s)
{
	json_t *msg = xjson(json_pack("{s:s}", "role", "assistant"));
	json_t *env;

	xjson_set(msg, "content", s->content.buf ? xjson(json_stringn(s->content.buf,
		s->content.len)) : json_null());
	if (s->reasoning.buf)
		xjson_set(msg, "reasoning", xjson(json_stringn(s->reasoning.buf,
							       s->reasoning.len)));
	if (s->refusal.buf)
		xjson_set(msg, "refusal", xjson(json_stringn(s->refusal.buf, s->refusal.len)));
	env = xjson(json_pack("{s:O,s:[{s:i,s:o,s:O}]}", "model",
			      s->model ? s->model : json_null(), "choices", "index", 0,
			      "message", msg, "finish_reason",
			      s->finish ? s->finish : json_null()));
	if (s->usage)
		xjson_set(env, "usage", json_incref(s->usage));
	return env;
}

static json_t *read_stream(const char *body, size_t len, struct orch_error *err)
{
	struct stream s;
	const char *line = body, *end = body + len, *nl, *data;
	size_t n;
	json_t *chunk, *env = NULL;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	for (; line < end && rc == 0; line = nl + 1) {
		if (!(nl = memchr(line, '\n', (size_t)(end - line))))
			nl = end;
		n = (size_t)(nl - line);
		if (n && line[n - 1] == '\r')
			n--;
		if (n < 5 || strncmp(line, "data:", 5) != 0)
			continue;
		data = line + 5;
		n -= 5;
		while (n && (*data == ' ' || *data == '\t'))
			data++, n--;
		if (n == 6 && strncmp(data, "[DONE]", 6) == 0)
			break;
		/* A line that is not JSON (a keep-alive, a partial write) is
		 * not a chunk; what the others say is kept. */
		if (!(chunk = json_loadb(data, n, 0, NULL)))
			continue;
		rc = stream_chunk(&s, chunk, err);
		json_decref(chunk);
	}
	if (rc == 0 && !s.choices)
		orch_error_set(err, ORCH_EX_DATAERR, "an event stream with no completion in it");
	else if (rc == 0)
		env = stream_envelope(&s);
	free(s.content.buf);
	free(s.reasoning.buf);
	free(s.refusal.buf);
	json_decref(s.model);
	json_decref(s.usage);
	json_decref(s.finish);
	return env;
}

json_t *llm_reply_envelope(const char *body, size_t len, const char *content_type,
			   int *stream, struct orch_error *err)
{
	json_error_t jerr;
	json_t *env;

	*stream = is_stream(body, len, content_type);
	if (*stream)
		return read_stream(body, len, err);
	if (!(env = json_loadb(body, len, 0, &jerr)))
		orch_error_set(err, ORCH_EX_DATAERR, "the response is not JSON: %s", jerr.text);
	return env;
}

/* --- the message ------------------------------------------------------- */

static const json_t *message_of(const json_t *envelope)
{
	return json_object_get(json_array_get(json_object_get(envelope, "choices"), 0),
			       "message");
}

char *llm_reply_text(const json_t *envelope)
{
	const json_t *content = json_object_get(message_of(envelope), "content"), *part;
	struct strbuf t = STRBUF_INIT;
	size_t i;

	if (json_is_string(content))
		return xstrndup(json_string_value(content), json_string_length(content));
	json_array_foreach(content, i, part) {
		if (json_is_string(part))
			text_add_json(&t, part);
		else
			text_add_json(&t, json_object_get(part, "text"));
	}
	return t.buf;
}

/* Skip white space from *S to END, and back from END. */
static void trim(const char **s, const char **end)
{
	while (*s < *end && isspace((unsigned char)**s))
		(*s)++;
	while (*end > *s && isspace((unsigned char)(*end)[-1]))
		(*end)--;
}

/* The JSON value at S..END (new), or NULL. TRAILING: prose may follow. */
static json_t *load(const char *s, const char *end, int trailing, json_error_t *jerr)
{
	json_error_t ignored;

	return json_loadb(s, (size_t)(end - s), trailing ? JSON_DISABLE_EOF_CHECK : 0,
			  jerr ? jerr : &ignored);
}

/*
 * The JSON object in the text S..END (new), or NULL with *JERR from
 * reading the whole text: the text itself, or inside a Markdown fence, or
 * the first fenced block in prose that holds an object, or an object the
 * prose leads up to.
 */
static json_t *find_object(const char *s, const char *end, json_error_t *jerr)
{
	const char *p, *open, *close, *nl;
	json_t *v;
	int tries = 0;

	trim(&s, &end);
	if (end - s >= 6 && strncmp(s, "```", 3) == 0 && strncmp(end - 3, "```", 3) == 0) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if ((v = load(nl && nl < end - 3 ? nl + 1 : s + 3, end - 3, 0, jerr)))
			return v;
	} else if ((v = load(s, end, 0, jerr))) {
		return v;
	}
	for (p = s; (open = memmem(p, (size_t)(end - p), "```", 3)); p = close + 3) {
		if (!(nl = memchr(open, '\n', (size_t)(end - open))) ||
		    !(close = memmem(nl, (size_t)(end - nl), "```", 3)))
			break;
		if ((v = load(nl + 1, close, 0, NULL)) && json_is_object(v))
			return v;
		json_decref(v);
	}
	for (p = s; tries < MAX_OBJECT_TRIES && (open = memchr(p, '{', (size_t)(end - p)));
	     p = open + 1, tries++) {
		if ((v = load(open, end, 1, NULL)) && json_is_object(v))
			return v;
		json_decref(v);
	}
	return NULL;
}

/* A model's text for an error message: bounded, one line (new). */
static char *shown(const char *s)
{
	return redact_text(s, strlen(s), NULL, 0, LLM_MESSAGE_MAX);
}

/*
 * Split a <think>...</think> (or <thinking>) prefix off TEXT: *S..*END
 * is what follows it, *THINK (new) what it held. 0, or -1 when the tag
 * never closes (the whole reply is reasoning).
 */
static int split_think(const char *text, const char **s, const char **end, char **think)
{
	static const char *const tags[][2] = {
		{ "<think>", "</think>" }, { "<thinking>", "</thinking>" },
	};
	const char *close, *inner, *inner_end;
	size_t i, open_len;

	*think = NULL;
	*s = text;
	*end = text + strlen(text);
	trim(s, end);
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		open_len = strlen(tags[i][0]);
		if ((size_t)(*end - *s) < open_len || strncmp(*s, tags[i][0], open_len) != 0)
			continue;
		if (!(close = memmem(*s, (size_t)(*end - *s), tags[i][1], strlen(tags[i][1]))))
			return -1;
		inner = *s + open_len;
		inner_end = close;
		trim(&inner, &inner_end);
		*think = xstrndup(inner, (size_t)(inner_end - inner));
		*s = close + strlen(tags[i][1]);
		return 0;
	}
	return 0;
}

/* The thinking to keep: the document's, else the model's reasoning (new ref). */
static json_t *thinking_of(const json_t *reply, const json_t *msg, const char *think)
{
	const json_t *t = json_object_get(reply, "thinking");

	if (t && !json_is_null(t))
		return json_incref((json_t *)t);
	if (json_is_string((t = json_object_get(msg, "reasoning"))) ||
	    json_is_string((t = json_object_get(msg, "reasoning_content"))))
		return json_incref((json_t *)t);
	return xjson(json_string(think ? think : ""));
}

json_t *llm_reply_document(const json_t *envelope, int64_t max_tokens,
			   struct orch_error *err)
{
	const json_t *msg = message_of(envelope), *refusal;
	const char *finish = json_string_value(json_object_get(json_array_get(
		json_object_get(envelope, "choices"), 0), "finish_reason"));
	int cut = finish && strcmp(finish, "length") == 0;
	char *text = llm_reply_text(envelope), *think = NULL, *said;
	const char *s, *end;
	json_t *reply = NULL, *doc = NULL;
	json_error_t jerr;

	if (!text) {
		refusal = json_object_get(msg, "refusal");
		if (json_is_string(refusal) && json_string_length(refusal)) {
			said = shown(json_string_value(refusal));
			orch_error_set(err, ORCH_EX_DATAERR, "the model refused: %s", said);
			free(said);
		} else {
			orch_error_set(err, ORCH_EX_DATAERR, "the reply has no content");
		}
		return NULL;
	}
	if (split_think(text, &s, &end, &think) != 0) {
		if (cut)
			orch_error_set(err, ORCH_EX_DATAERR,
				       "the reply was cut off at the limit of %lld tokens while"
				       " still reasoning; keep it shorter", (long long)max_tokens);
		else
			orch_error_set(err, ORCH_EX_DATAERR, "the reply is only reasoning"
				       " (a <think> that never ends), no JSON");
		goto out;
	}
	if (!(reply = find_object(s, end, &jerr))) {
		if (cut)
			orch_error_set(err, ORCH_EX_DATAERR,
				       "the reply was cut off at the limit of %lld tokens;"
				       " keep it shorter", (long long)max_tokens);
		else
			orch_error_set(err, ORCH_EX_DATAERR, "the reply is not JSON: %s", jerr.text);
		goto out;
	}
	if (!json_is_object(reply)) {
		orch_error_set(err, ORCH_EX_DATAERR, "the reply is not a JSON object");
		goto out;
	}
	doc = xjson(json_object());
	xjson_set(doc, "thinking", thinking_of(reply, msg, think));
	if (json_object_get(reply, "actions"))
		xjson_set(doc, "actions", json_incref(json_object_get(reply, "actions")));
	if (actions_validate(doc, err) != 0) {
		json_decref(doc);
		doc = NULL;
	}
out:
	json_decref(reply);
	free(think);
	free(text);
	return doc;
}
